"""The fit loop: statuses, history, dtypes, determinism and restarts."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

from chainnmf import (
    CollapseWarning,
    ConvergenceWarning,
    Loss,
    NonFiniteError,
    Status,
    Term,
    chain,
    fit,
    trace,
    vanilla,
)
from chainnmf.fit import fit_restarts


@pytest.fixture
def model(rng):
    return vanilla(rng.random((12, 10)), 3)


def test_fit_converges_with_loose_tolerance(model):
    """A tolerance of 1e-2 is met well before 500 sweeps on a 12 x 10 table."""
    result = model.fit(0, max_iter=500, tol=1e-2)
    assert result.status == Status.CONVERGED
    assert result.converged
    assert result.iterations < 500


def test_fit_history_never_rises(model):
    """Multiplicative updates do not increase the Frobenius loss (Lee-Seung)."""
    with pytest.warns(ConvergenceWarning):
        result = model.fit(0, max_iter=60, tol=0.0, eval_every=1)
    history = result.loss_history
    assert len(history) == 61
    assert np.all(np.diff(history) <= 1e-12 * history[:-1])
    np.testing.assert_array_equal(result.history_iterations, np.arange(61))


def test_fit_history_points_follow_eval_every(model):
    """Losses are recorded at sweep 0, every eval_every sweeps and the last one."""
    with pytest.warns(ConvergenceWarning):
        result = model.fit(0, max_iter=25, tol=0.0, eval_every=10)
    np.testing.assert_array_equal(result.history_iterations, [0, 10, 20, 25])


def test_fit_warns_at_iteration_limit(model):
    """Reaching max_iter raises a ConvergenceWarning that names what to change."""
    with pytest.warns(ConvergenceWarning, match="raise max_iter or tol"):
        result = model.fit(0, max_iter=3, tol=0.0)
    assert result.status == Status.MAX_ITER
    assert result.iterations == 3


def test_fit_final_loss_matches_numpy(model):
    """The reported loss is ‖V − WH‖² of the returned factors, by NumPy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = model.fit(0, max_iter=7, tol=0.0)
    W, H = result.factors["W"], result.factors["H_V"]
    expected = np.sum((model.data["V"] - W @ H) ** 2)
    np.testing.assert_allclose(result.loss, expected, rtol=1e-10)


def test_same_seed_same_result(model):
    """Two fits from the same seed are identical to the bit."""
    first = model.fit(3, max_iter=50, tol=1e-3)
    second = model.fit(3, max_iter=50, tol=1e-3)
    for name in first.factors:
        np.testing.assert_array_equal(first.factors[name], second.factors[name])


def test_other_seed_other_start(model):
    """Different seeds give different initial factors."""
    assert not np.allclose(model.init(0)["W"], model.init(1)["W"])


def test_fit_runs_in_requested_float32(model):
    """dtype=float32 runs and reports in float32 even under x64 mode."""
    result = model.fit(0, max_iter=20, tol=1e-3, dtype=jnp.float32)
    assert result.dtype == "float32"
    assert result.factors["W"].dtype == np.float32


def test_default_dtype_is_float64_under_x64(model):
    """With JAX's x64 mode on (see conftest) the default dtype is float64."""
    result = model.fit(0, max_iter=20, tol=1e-3)
    assert result.dtype == "float64"


def _nan_after(sweeps):
    """A loss whose value turns NaN once ``W`` has grown past 2**sweeps."""

    def doubling(W):
        return jnp.sum(W)

    def shrinking(W):
        return 2.0 * jnp.sum(W)

    def blow_up(W):
        return jnp.where(jnp.max(W) > 2.0**sweeps, jnp.nan, 0.0)

    return Loss(
        [Term(doubling), Term(shrinking, sign=-1), Term(blow_up, sign=-1)],
        factors=("W",),
    )


def test_nonfinite_status_keeps_last_finite_factors():
    """W doubles each sweep; the sweep that makes the loss NaN is reported.

    With ∇⁺ = 1 and ∇⁻ = 2 every entry doubles, so from W = 1 the maximum
    passes 2**3 at sweep 4, and the kept factors are those of sweep 3.
    """
    with pytest.warns(RuntimeWarning, match="non-finite value at sweep 4"):
        result = fit(
            _nan_after(3), {"W": jnp.ones((2, 2))}, {}, max_iter=10, eval_every=1
        )
    assert result.status == Status.NON_FINITE
    assert result.nonfinite_at == 4
    assert result.iterations == 3
    np.testing.assert_array_equal(result.factors["W"], np.full((2, 2), 8.0))


def test_nonfinite_can_raise():
    """on_nonfinite='raise' turns the status into a NonFiniteError."""
    with pytest.raises(NonFiniteError, match="sweep 4"):
        fit(
            _nan_after(3),
            {"W": jnp.ones((2, 2))},
            {},
            max_iter=10,
            eval_every=1,
            on_nonfinite="raise",
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_iter": 0}, "max_iter"),
        ({"tol": -1.0}, "tol"),
        ({"eval_every": 0}, "eval_every"),
        ({"floor": -1.0}, "floor"),
        ({"on_nonfinite": "ignore"}, "on_nonfinite"),
    ],
)
def test_fit_rejects_bad_settings(model, options, message):
    """Each invalid setting raises a ValueError that names it."""
    with pytest.raises(ValueError, match=message):
        model.fit(0, **options)


def test_fit_names_missing_factor(model):
    """A factor without an initial value is named in the error."""
    with pytest.raises(ValueError, match="H_V"):
        fit(model.loss, {"W": model.init(0)["W"]}, model.data)


def test_callback_sees_progress(model):
    """With chunk=5 the callback runs after sweeps 5, 10, 15 and 20."""
    seen = []
    with pytest.warns(ConvergenceWarning):
        model.fit(
            0,
            max_iter=20,
            tol=0.0,
            chunk=5,
            callback=lambda s: seen.append(int(s.iteration)),
        )
    assert seen == [5, 10, 15, 20]


def test_chunked_fit_equals_single_call(model):
    """Running in chunks of 7 sweeps gives the factors of one uninterrupted call."""
    whole = model.fit(0, max_iter=30, tol=1e-6)
    chunked = model.fit(0, max_iter=30, tol=1e-6, chunk=7, callback=lambda s: None)
    for name in whole.factors:
        np.testing.assert_allclose(
            chunked.factors[name], whole.factors[name], rtol=1e-12
        )


def test_restarts_equal_separate_fits(rng):
    """fit_restarts (vmap over starts) matches one fit per seed."""
    model = chain([rng.random((10, 8)), rng.random((8, 6))], 2, loss="kl")
    batch = model.fit_restarts([0, 1, 2], max_iter=40, tol=1e-5)
    for seed, restart in enumerate(batch):
        single = model.fit(seed, max_iter=40, tol=1e-5)
        assert restart.iterations == single.iterations
        np.testing.assert_allclose(restart.loss, single.loss, rtol=1e-10)
        np.testing.assert_allclose(restart.factors["W"], single.factors["W"], rtol=1e-9)


def test_restarts_need_equal_counts(model):
    """Stacks with different numbers of starts are rejected with the counts."""
    factors = model.init_restarts([0, 1])
    factors["W"] = factors["W"][:1]
    with pytest.raises(ValueError, match="same number of starts"):
        fit_restarts(model.loss, factors, model.data)


def _wrongly_signed_loss():
    """‖X − WH‖² without ‖X‖², with the cross term's minus inside a '+' term."""
    return Loss(
        [
            Term(lambda X, W, H: -2.0 * trace(X.T, W, H), sign=1),
            Term(lambda W, H: trace(H.T, W.T, W, H)),
        ],
        factors=("W", "H"),
    )


def test_rising_loss_warns(rng):
    """A loss that starts negative and rises to 0 is reported as rising.

    The wrongly signed term's gradient is clipped from the split, so only the
    Gram term acts and drives W and H to zero: the loss rises from -2 tr(XᵀWH)
    + ‖WH‖² < 0 to 0, which multiplicative updates never do.
    """
    X = rng.random((10, 8))
    start = {"W": 3.0 * rng.random((10, 3)), "H": 0.1 * rng.random((3, 8))}
    with pytest.warns(RuntimeWarning, match="the loss rose from"):
        fit(_wrongly_signed_loss(), start, {"X": X}, max_iter=50)


def test_vanished_factor_warns(rng):
    """Factors that end entirely at zero are reported by name."""
    X = rng.random((10, 8))
    start = {"W": rng.random((10, 3)), "H": rng.random((3, 8))}
    with pytest.warns(CollapseWarning, match=r"factor\(s\) \['H', 'W'\] are all zero"):
        fit(_wrongly_signed_loss(), start, {"X": X}, max_iter=50)
