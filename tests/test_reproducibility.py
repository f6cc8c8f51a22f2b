"""Results depend only on the seed and the inputs, and record the dtype they used."""

import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainnmf import chain, vanilla

# Short fits stop at max_iter on purpose, and test_fit.py tests that warning.
pytestmark = pytest.mark.filterwarnings("ignore::chainnmf.ConvergenceWarning")


@pytest.fixture
def model(rng):
    return chain([rng.random((7, 5)), rng.random((5, 4))], 2, loss="kl")


def _assert_identical(first, second):
    np.testing.assert_array_equal(first.loss_history, second.loss_history)
    for name in first.factors:
        np.testing.assert_array_equal(first.factors[name], second.factors[name])


def test_global_random_state_ignored(model):
    """Reseeding or drawing from Python, NumPy and JAX between fits changes nothing."""
    first = model.fit(5, max_iter=20)
    random.seed(1)
    np.random.seed(1)
    np.random.random(100)
    jax.random.uniform(jax.random.key(99), (10,))
    second = model.fit(5, max_iter=20)
    _assert_identical(first, second)


def test_restarts_identical_run_to_run(model):
    """Two batched fits of the same seeds agree to the bit, start by start."""
    first = model.fit_restarts([0, 1, 2], max_iter=15)
    second = model.fit_restarts([0, 1, 2], max_iter=15)
    for batch_one, batch_two in zip(first, second):
        _assert_identical(batch_one, batch_two)


def test_high_seed_bits_used(model):
    """Seeds 0 and 2**32 - 1 draw different starts (no bits are dropped)."""
    low = model.init(0)["W"]
    high = model.init(2**32 - 1)["W"]
    assert not np.array_equal(low, high)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_result_records_dtype(rng, dtype):
    """The result names the dtype it ran in, and its factors and losses use it."""
    result = vanilla(rng.random((4, 3)), 2).fit(0, max_iter=5, dtype=dtype)
    assert result.dtype == np.dtype(dtype).name
    assert result.loss_history.dtype == dtype
    for factor in result.factors.values():
        assert factor.dtype == dtype


def test_start_ignores_default_prng_impl(model):
    """The start of a seed is the same under another default PRNG implementation."""
    expected = np.asarray(model.init(0)["W"])
    with jax.default_prng_impl("rbg"):
        found = np.asarray(model.init(0)["W"])
    np.testing.assert_array_equal(found, expected)
