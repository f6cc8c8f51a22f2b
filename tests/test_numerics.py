"""The ε and floor rule under degenerate data: zeros, subnormals, dead components.

Expected values come from the rule in chainnmf.numerics (δ = ε · max(∇⁺) +
tiny, exact zeros stay zero, KL contributes zero where V = 0) and from NumPy
references written out in each test.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from chainnmf import (
    Loss,
    Status,
    Term,
    fit,
    make_step,
    split_gradient,
    vanilla,
)
from chainnmf.numerics import multiplicative_update, safe_ratio

# Short fits stop at max_iter on purpose, and test_fit.py tests that warning.
pytestmark = pytest.mark.filterwarnings("ignore::chainnmf.ConvergenceWarning")


def test_kl_zero_data_ratio_zero():
    """Where V = 0 and WH = 0, KL contributes 0 to ∇⁻, never 0/0.

    W = [[1, 0], [1, 1]] and H = [[0, 1], [1, 1]] give (WH)[0, 0] = 0, with
    V[0, 0] = 0. NumPy reference: ∇⁻_W = (V / WH) Hᵀ with 0 / 0 taken as 0.
    """
    V = np.array([[0.0, 2.0], [1.0, 3.0]])
    W = np.array([[1.0, 0.0], [1.0, 1.0]])
    H = np.array([[0.0, 1.0], [1.0, 1.0]])
    model = vanilla(V, 2, loss="kl", name="A")
    factors = {"W": jnp.asarray(W), "H_A": jnp.asarray(H)}
    _, grad_minus = split_gradient(model.loss, "W", factors, {"A": jnp.asarray(V)})
    product = W @ H
    ratio = np.divide(V, product, out=np.zeros_like(V), where=V > 0)
    np.testing.assert_allclose(grad_minus, ratio @ H.T, rtol=1e-12)
    assert np.all(np.isfinite(grad_minus))


@pytest.mark.parametrize("loss", ["frobenius", "kl"])
def test_subnormal_data_finite_loss(loss):
    """Subnormal float64 entries (5e-324, 1e-310) give finite, nonnegative losses."""
    V = np.full((4, 3), 1e-310)
    V[0, 0] = 5e-324
    V[3, 2] = 1.0
    result = vanilla(V, 2, loss=loss).fit(0, max_iter=10, eval_every=1, tol=0.0)
    assert result.status in (Status.CONVERGED, Status.MAX_ITER)
    assert np.all(np.isfinite(result.loss_history))
    assert np.all(result.loss_history >= 0)
    for factor in result.factors.values():
        assert np.all(np.isfinite(factor))


@pytest.mark.parametrize("loss", ["frobenius", "kl"])
def test_exact_fit_loss_never_negative(loss):
    """An exactly factorable V drives the loss to round-off, reported as >= 0.

    V = W₀ H₀ with rank 2; the Gram form of Frobenius and the log form of KL
    can round below zero there, and each table loss is clamped at zero.
    """
    rng = np.random.default_rng(7)
    V = rng.random((6, 2)) @ rng.random((2, 5))
    result = vanilla(V, 2, loss=loss).fit(0, max_iter=300, eval_every=1, tol=0.0)
    assert np.all(result.loss_history >= 0)
    assert not np.any(np.isnan(result.loss_history))
    assert result.loss < 1e-3 * result.loss_history[0]


def _sweeps(loss, W, H, V, count):
    step = make_step(loss)
    factors = {"W": jnp.asarray(W), "H_A": jnp.asarray(H)}
    for _ in range(count):
        factors = step(factors, {"A": jnp.asarray(V)})
    return {name: np.asarray(value) for name, value in factors.items()}


@pytest.mark.parametrize("loss", ["frobenius", "kl"])
def test_dead_component_stays_zero_alone(loss):
    """A zero column of W stays zero, zeroes its row of H and leaves the rest alone.

    Reference: the same sweeps at rank 2 with that component removed. By the
    numerics rule the dead row of H gets ∇⁻ = ∇⁺ = 0 and so 0 / δ = 0, and it
    adds nothing to max(∇⁺), so the other components follow the rank-2 path.
    """
    rng = np.random.default_rng(3)
    V = rng.random((6, 5))
    W = rng.random((6, 3)) + 0.1
    H = rng.random((3, 5)) + 0.1
    W[:, 1] = 0.0
    full = _sweeps(vanilla(V, 3, loss=loss, name="A").loss, W, H, V, 6)
    alive = [0, 2]
    reduced = _sweeps(
        vanilla(V, 2, loss=loss, name="A").loss, W[:, alive], H[alive], V, 6
    )
    np.testing.assert_array_equal(full["W"][:, 1], np.zeros(6))
    np.testing.assert_array_equal(full["H_A"][1], np.zeros(5))
    np.testing.assert_allclose(full["W"][:, alive], reduced["W"], rtol=1e-12)
    np.testing.assert_allclose(full["H_A"][alive], reduced["H_A"], rtol=1e-12)


def test_zero_over_zero_update_is_zero():
    """An entry with ∇⁻ = ∇⁺ = 0 becomes θ · 0 / δ = 0, not NaN."""
    factor = jnp.array([1.0, 2.0])
    updated = multiplicative_update(
        factor, jnp.array([0.0, 3.0]), jnp.array([0.0, 1.0])
    )
    np.testing.assert_array_equal(updated, [0.0, 6.0])


def test_safe_ratio_of_empty_arrays():
    """An empty ∇⁺ (a table with no rows) divides to an empty array."""
    empty = jnp.zeros((0, 3))
    assert safe_ratio(empty, empty).shape == (0, 3)


def test_safe_ratio_floor_is_relative():
    """Denominators below δ = ε · max + tiny are raised to δ; the rest are exact."""
    denominator = jnp.array([0.0, 1e-20, 4.0])
    delta = np.finfo(np.float64).eps * 4.0 + np.finfo(np.float64).tiny
    np.testing.assert_array_equal(
        safe_ratio(jnp.ones(3), denominator), [1 / delta, 1 / delta, 0.25]
    )


def test_nonfinite_start_at_sweep_zero():
    """A loss that is infinite at the start stops at sweep 0 with advice.

    The term Σ W · ∞ is infinite for any positive W, so the status is
    NON_FINITE, the failing sweep 0, and the start is returned unchanged.
    """
    loss = Loss(
        [Term(lambda W: jnp.sum(W) * jnp.inf), Term(lambda W: jnp.sum(W), sign=-1)],
        factors=("W",),
    )
    with pytest.warns(RuntimeWarning) as record:
        result = fit(loss, {"W": np.ones((2, 2))}, {}, max_iter=5)
    message = str(record[0].message)
    assert message.startswith(
        "non-finite value at sweep 0: the loss of the initial factors is NaN or "
        "infinite, so no sweep ran."
    )
    assert "Rescale the data" in message
    assert "jax_enable_x64" in message
    assert result.status == Status.NON_FINITE
    assert result.nonfinite_at == 0
    assert result.iterations == 0
    np.testing.assert_array_equal(result.factors["W"], np.ones((2, 2)))


def test_all_zero_data_fit_is_exact_zero():
    """All-zero data with an all-zero start: the loss is 0 and the fit is exact."""
    model = vanilla(np.zeros((3, 4)), 2)
    result = model.fit(0, max_iter=20)
    assert result.status == Status.CONVERGED
    np.testing.assert_array_equal(result.loss_history, np.zeros(2))
