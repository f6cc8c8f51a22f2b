"""Property-based tests of the public API on random, degenerate and corrupted input.

Hypothesis draws a tree of tables, their sizes, the rank, the loss and the
dtype. It also draws the magnitude of the data (up to 1e±30), which entries,
rows and columns are zero, whether the data arrive as integers, and their
storage (NumPy, JAX, scipy CSR or BCOO). A fit must then either return
factors and losses that are finite and nonnegative, with a loss that does not
rise beyond round-off, or raise one of the documented errors. Corrupted input
must raise a ValueError or TypeError that names the table or factor.

Sizes come from a small set so that JAX compiles few distinct shapes.
"""

import importlib
import warnings
from unittest import mock

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax.experimental import sparse as jsparse

from chainnmf import ConvergenceWarning, Model, Status, Table

# Parents of each table (None: rows of W).
STRUCTURES = {
    "vanilla": {"A": None},
    "multiview": {"A": None, "B": None},
    "chain": {"A": None, "B": "A"},
}
SIZES = (2, 3)

# How the data reach the model: every storage the validation accepts.
STORAGES = {
    "numpy": np.asarray,
    "jax": jnp.asarray,
    "csr": sp.csr_matrix,
    "bcoo": lambda V: jsparse.BCOO.fromdense(jnp.asarray(V)),
}
SWEEPS = 8

# Messages of the errors a valid-looking input may still meet: the data do not
# fit in the requested dtype, or Model.init cannot draw a start for all-zero
# tables without parent (pinned by the xfail tests in test_validation.py).
DOCUMENTED = ("exceeds the largest", "drew an invalid start")

# Round-off allowance for the loss history, in units of ε of the dtype times the
# initial loss: each evaluation sums a few dozen products of entries.
ROUNDOFF_ULPS = 256


@st.composite
def problems(draw):
    """Draw ``(tables, rank, seed, dtype)`` for a Model and its fit."""
    parents = STRUCTURES[draw(st.sampled_from(sorted(STRUCTURES)))]
    loss = draw(st.sampled_from(["frobenius", "kl"]))
    rank = draw(st.sampled_from([1, 2]))
    dtype = draw(st.sampled_from([jnp.float32, jnp.float64]))
    seed = draw(st.integers(0, 2**32 - 1))
    exponent = draw(st.sampled_from([-30, -3, 0, 3, 30]))
    zero_fraction = draw(st.sampled_from([0.0, 0.5, 1.0]))
    as_integers = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    rows = {None: draw(st.sampled_from(SIZES))}
    tables = []
    for name, parent in parents.items():
        shape = (rows[parent], draw(st.sampled_from(SIZES)))
        rows[name] = shape[1]
        V = rng.random(shape) * 10.0 ** (exponent + rng.integers(-2, 3, shape))
        V[rng.random(shape) < zero_fraction] = 0.0
        if draw(st.booleans()):
            V[rng.integers(shape[0])] = 0.0
        if draw(st.booleans()):
            V[:, rng.integers(shape[1])] = 0.0
        if as_integers and exponent <= 3:
            V = np.round(V).astype(np.int64)
        tables.append(
            Table(
                name,
                STORAGES[draw(st.sampled_from(sorted(STORAGES)))](V),
                parent=parent,
                loss=loss,
            )
        )
    return tables, rank, seed, dtype


def _check_invariants(result, dtype):
    assert result.status in (Status.CONVERGED, Status.MAX_ITER), result.message
    for name, factor in result.factors.items():
        assert np.all(np.isfinite(factor)), name
        assert np.all(factor >= 0), name
    history = result.loss_history.astype(np.float64)
    assert np.all(np.isfinite(history))
    assert np.all(history >= 0)
    allowance = ROUNDOFF_ULPS * np.finfo(dtype).eps * history[0]
    rises = np.diff(history)
    assert np.all(rises <= allowance), (history, allowance)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(problems())
def test_random_models_meet_invariants(problem):
    """A fit returns finite, nonnegative factors and a non-increasing loss, or a
    documented error; it never reports NaN, and never changes its inputs."""
    tables, rank, seed, dtype = problem
    copies = [_dense_copy(table.data) for table in tables]
    with warnings.catch_warnings():
        # Integer tables and unreachable KL rows warn; both are tested elsewhere.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = Model(tables, rank)
        try:
            result = model.fit(
                seed, max_iter=SWEEPS, eval_every=1, tol=0.0, dtype=dtype
            )
        except ValueError as error:
            assert any(text in str(error) for text in DOCUMENTED), str(error)
            return
    _check_invariants(result, dtype)
    for table, copy in zip(tables, copies):
        np.testing.assert_array_equal(_dense_copy(table.data), copy)


def _dense_copy(table) -> np.ndarray:
    """Return a dense NumPy copy of a small test table of any storage."""
    if sp.issparse(table):
        return table.toarray()
    if isinstance(table, jsparse.BCOO):
        return np.array(table.todense())
    return np.array(table)


CORRUPTIONS = (
    "negative",
    "nan",
    "inf",
    "complex",
    "start_negative",
    "start_nan",
    "start_shape",
    "start_zero_component",
)


@settings(max_examples=40, deadline=None)
@given(
    structure=st.sampled_from(sorted(STRUCTURES)),
    corruption=st.sampled_from(CORRUPTIONS),
    victim=st.integers(0, 1),
    position=st.integers(0, 100),
)
def test_corrupted_input_named(structure, corruption, victim, position):
    """Each corruption raises before compiling, naming the table or factor hit."""
    fit_module = importlib.import_module("chainnmf.fit")
    with mock.patch.object(fit_module, "_compiled", _fail_if_compiled):
        _corrupt_and_check(structure, corruption, victim, position)


def _corrupt_and_check(structure, corruption, victim, position):
    parents = STRUCTURES[structure]
    names = list(parents)
    target = names[victim % len(names)]
    shapes = {"A": (3, 2), "B": (2, 3) if parents.get("B") == "A" else (3, 3)}
    data = {name: np.full(shapes[name], 1.5) for name in names}
    if corruption in ("negative", "nan", "inf", "complex"):
        flat = data[target].reshape(-1)
        if corruption == "complex":
            data[target] = data[target].astype(complex)
        else:
            flat[position % flat.size] = {
                "negative": -1.0,
                "nan": np.nan,
                "inf": np.inf,
            }[corruption]
        with pytest.raises((ValueError, TypeError), match=f"table '{target}'"):
            Model([Table(n, data[n], parent=parents[n]) for n in names], 2)
        return

    model = Model([Table(n, data[n], parent=parents[n]) for n in names], 2)
    factor = "W" if victim == 0 else f"H_{target}"
    start = {name: np.array(value) for name, value in model.init(0).items()}
    flat = start[factor].reshape(-1)
    if corruption == "start_negative":
        flat[position % flat.size] = -0.25
    elif corruption == "start_nan":
        flat[position % flat.size] = np.nan
    elif corruption == "start_shape":
        start[factor] = np.ones((start[factor].shape[0] + 1, start[factor].shape[1]))
    else:
        component = position % 2
        if factor == "W":
            start[factor][:, component] = 0.0
        else:
            start[factor][component] = 0.0
    with pytest.raises(ValueError, match=f"initial factor '{factor}'"):
        model.fit(init=start)


def _fail_if_compiled(*args, **kwargs):
    raise AssertionError("invalid input reached the compiled loop")
