"""The gradient split and the multiplicative update, against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainnmf import Loss, Term, make_step, mu_step, split_gradient, trace, vanilla


def _frobenius_loss(split="sign"):
    """‖V − WH‖² as three terms, with the minus sign outside or inside."""
    if split == "sign":
        cross = Term(lambda V, W, H: trace(V.T, W, H), sign=-1, weight=2.0)
    else:
        cross = Term(lambda V, W, H: -2.0 * trace(V.T, W, H), split="elementwise")
    return Loss(
        [
            Term(lambda V: trace(V.T, V)),
            cross,
            Term(lambda W, H: trace(H.T, W.T, W, H)),
        ],
        factors=("W", "H"),
    )


def _problem(rng, m=8, n=6, k=3):
    data = {"V": jnp.asarray(rng.random((m, n)))}
    factors = {
        "W": jnp.asarray(rng.random((m, k))),
        "H": jnp.asarray(rng.random((k, n))),
    }
    return factors, data


@pytest.mark.parametrize("split", ["sign", "elementwise"])
def test_split_difference_is_gradient(rng, split):
    """∇⁺ − ∇⁻ equals jax.grad of the whole loss (the definition of the split)."""
    factors, data = _problem(rng)
    loss = _frobenius_loss(split)
    for block in ("W", "H"):
        plus, minus = split_gradient(loss, block, factors, data)
        grad = jax.grad(lambda x, block=block: loss.value({**factors, block: x}, data))(
            factors[block]
        )
        np.testing.assert_allclose(plus - minus, grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("split", ["sign", "elementwise"])
def test_split_parts_are_lee_seung_terms(rng, split):
    """For ‖V − WH‖², ∇⁻_W = 2 V Hᵀ and ∇⁺_W = 2 W H Hᵀ (Lee and Seung, 2001)."""
    factors, data = _problem(rng)
    W, H, V = factors["W"], factors["H"], data["V"]
    plus, minus = split_gradient(_frobenius_loss(split), "W", factors, data)
    np.testing.assert_allclose(minus, 2 * V @ H.T, rtol=1e-12)
    np.testing.assert_allclose(plus, 2 * W @ H @ H.T, rtol=1e-12)


def test_mu_step_matches_numpy_sweep(rng):
    """One sweep is W ← W ⊙ VHᵀ/(WHHᵀ), then H ← H ⊙ WᵀV/(WᵀWH) with the new W."""
    factors, data = _problem(rng)
    W, H, V = (np.asarray(a) for a in (factors["W"], factors["H"], data["V"]))
    W = W * (V @ H.T) / (W @ H @ H.T)
    H = H * (W.T @ V) / (W.T @ W @ H)
    updated = mu_step(_frobenius_loss(), factors, data)
    np.testing.assert_allclose(updated["W"], W, rtol=1e-12)
    np.testing.assert_allclose(updated["H"], H, rtol=1e-12)


def test_mu_step_leaves_inputs_unchanged(rng):
    """The caller's dict and arrays are not modified by a sweep."""
    factors, data = _problem(rng)
    before = {name: np.array(value) for name, value in factors.items()}
    mu_step(_frobenius_loss(), factors, data)
    assert set(factors) == {"W", "H"}
    for name, value in before.items():
        np.testing.assert_array_equal(factors[name], value)


def test_zero_entries_stay_zero(rng):
    """An exact zero in a factor never moves under a multiplicative update."""
    factors, data = _problem(rng)
    factors["W"] = factors["W"].at[2, 1].set(0.0)
    updated = mu_step(_frobenius_loss(), factors, data)
    assert updated["W"][2, 1] == 0.0
    assert np.all(np.asarray(updated["W"])[np.asarray(factors["W"]) > 0] > 0)


def test_floor_raises_small_entries(rng):
    """With floor > 0 every updated entry is at least the floor, zeros excepted."""
    factors, data = _problem(rng)
    factors["H"] = factors["H"].at[0, 0].set(1e-30)
    updated = mu_step(_frobenius_loss(), factors, data, floor=1e-6)
    assert float(jnp.min(updated["H"])) >= 1e-6


def test_make_step_compiles_once(rng):
    """A jitted step traces the loss once and reuses it for the same shapes."""
    traces = []

    def gram(W, H):
        traces.append(1)
        return trace(H.T, W.T, W, H)

    loss = Loss(
        [
            Term(lambda V, W, H: trace(V.T, W, H), sign=-1, weight=2.0),
            Term(gram),
        ],
        factors=("W", "H"),
    )
    step = make_step(loss)
    factors, data = _problem(rng)
    factors = step(factors, data)
    count = len(traces)
    factors = step(factors, data)
    assert count > 0
    assert len(traces) == count


def test_jitted_and_eager_steps_agree(rng):
    """make_step (jit) and mu_step (eager) give the same sweep."""
    model = vanilla(rng.random((9, 7)), 3, loss="kl")
    factors = model.init(0)
    data = {"V": jnp.asarray(model.data["V"])}
    eager = mu_step(model.loss, factors, data)
    jitted = make_step(model.loss)(factors, data)
    for name in eager:
        np.testing.assert_allclose(jitted[name], eager[name], rtol=1e-12)
