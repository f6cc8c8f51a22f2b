"""Input checks at the public entry points: each bad input and its message.

Every expected message is written out from the rule in chainnmf.validation: it
names the table or factor, what was expected and what was found.
"""

import importlib
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from jax.experimental import sparse as jsparse

from chainnmf import (
    ConvergenceWarning,
    Loss,
    Model,
    Table,
    Term,
    chain,
    fit,
    fit_restarts,
    trace,
    vanilla,
)
from chainnmf.sparse import sparse_matrix

# Short fits stop at max_iter on purpose, and test_fit.py tests that warning.
pytestmark = pytest.mark.filterwarnings("ignore::chainnmf.ConvergenceWarning")


def _table(rows=4, columns=3):
    return np.arange(1.0, rows * columns + 1).reshape(rows, columns)


# -- data values -------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_value", "message"),
    [
        (
            -0.5,
            (
                "table 'A': expected entries >= 0, found 1 negative entries; "
                "the smallest is -0.5 at row 1, column 2"
            ),
        ),
        (
            np.nan,
            (
                "table 'A': expected finite entries, found 1 NaN entries, "
                "the first at row 1, column 2"
            ),
        ),
        (
            np.inf,
            (
                "table 'A': expected finite entries, found 1 infinite entries, "
                "the first at row 1, column 2"
            ),
        ),
    ],
)
def test_dense_bad_entry_named(bad_value, message):
    """A negative, NaN or infinite entry is reported with its table and position."""
    data = _table()
    data[1, 2] = bad_value
    with pytest.raises(ValueError, match=re.escape(message)):
        vanilla(data, 2, name="A")


@pytest.mark.parametrize(
    "convert",
    [
        sp.csr_matrix,
        sp.csc_matrix,
        sp.coo_matrix,
        lambda dense: jsparse.BCOO.fromdense(jnp.asarray(dense)),
        lambda dense: jsparse.BCSR.fromdense(jnp.asarray(dense)),
        lambda dense: sparse_matrix(sp.csr_matrix(dense)),
    ],
    ids=["csr", "csc", "coo", "bcoo", "bcsr", "SparseMatrix"],
)
def test_sparse_negative_entry_position(convert):
    """A negative stored value of any sparse kind is located by row and column."""
    dense = _table()
    dense[1, 1] = -2.0
    with pytest.raises(
        ValueError,
        match=re.escape("the smallest is -2.0 at row 1, column 1"),
    ):
        vanilla(convert(dense), 2)


def test_bcoo_nan_entry_position():
    """A NaN among the stored values of a BCOO table is located by its indices."""
    dense = _table()
    dense[2, 0] = np.nan
    data = jsparse.BCOO.fromdense(jnp.asarray(dense))
    with pytest.raises(ValueError, match=re.escape("NaN entries, the first at row 2")):
        vanilla(data, 2)


def test_sparse_tables_never_densified(monkeypatch):
    """Model checks of scipy and BCOO tables never call their densifying methods."""

    def fail_if_called(*args, **kwargs):
        raise AssertionError("a sparse table was densified")

    for method in ("toarray", "todense", "__array__"):
        monkeypatch.setattr(sp.csr_matrix, method, fail_if_called, raising=False)
    monkeypatch.setattr(jsparse.BCOO, "todense", fail_if_called)
    dense = _table(4, 3)
    dense[0, 1] = 0.0
    Model(
        [
            Table("A", sp.csr_matrix(dense)),
            Table("B", jsparse.BCOO.fromdense(jnp.asarray(_table(3, 5))), parent="A"),
        ],
        2,
    )


def test_integer_tables_warn_once():
    """Integer and boolean tables give one warning that lists both."""
    with pytest.warns(UserWarning) as record:
        model = chain([np.ones((3, 4), int), np.ones((4, 2), bool)], 2)
    messages = [str(w.message) for w in record if "integer" in str(w.message)]
    expected = (
        "integer or boolean entries in table 'A', table 'B'; they are "
        "converted to the fit's floating dtype"
    )
    assert messages == [expected]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = model.fit(0, max_iter=3)
    assert result.factors["W"].dtype == np.float64


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (
            np.ones((3, 3), complex),
            TypeError,
            "expected real numbers, found dtype complex128",
        ),
        (np.array([["a", "b"]]), TypeError, "expected real numbers, found dtype <U1"),
        (np.ones(4), ValueError, "table 'V': expected a 2-D table, found shape (4,)"),
    ],
)
def test_table_type_and_rank_errors(data, error, message):
    """Non-real data and tables that are not 2-D are rejected by name."""
    with pytest.raises(error, match=re.escape(message)):
        vanilla(data, 2)


# -- structure and rank ------------------------------------------------------


def test_unchained_shapes_named():
    """A link whose rows differ from its parent's columns names both counts."""
    with pytest.raises(
        ValueError,
        match=re.escape(
            "table 'B' links to 'A', so its rows must match the 3 columns of "
            "'A', got 5 rows"
        ),
    ):
        chain([_table(4, 3), _table(5, 2)], 2)


@pytest.mark.parametrize(
    ("rank", "error"),
    [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)],
)
def test_rank_must_be_whole_and_positive(rank, error):
    """A rank below 1, a fraction or a bool is rejected; 2.5 is not truncated."""
    with pytest.raises(error, match="rank must be a whole number >= 1"):
        vanilla(_table(), rank)


def test_start_shape_names_rank():
    """An initial W with the wrong rank names the shape the model expected."""
    model = vanilla(_table(4, 3), 2, name="A")
    start = model.init(0)
    start["W"] = np.ones((4, 3))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "initial factor 'W': expected shape (4, 2) (the 4 rows of the tables "
            "without parent by rank 2), found (4, 3)"
        ),
    ):
        model.fit(init=start)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"W": -1.0}, ValueError, "initial factor 'W': expected entries >= 0"),
        ({"H_A": np.nan}, ValueError, "initial factor 'H_A': expected finite"),
        ({"W": "sparse"}, TypeError, "initial factor 'W': expected a dense array"),
        ({"H_X": 1.0}, ValueError, "unknown initial factor(s) ['H_X']"),
    ],
)
def test_bad_start_named(change, error, message):
    """Negative, NaN, sparse or unknown initial factors are rejected by name."""
    model = vanilla(_table(4, 3), 2, name="A")
    start = {name: np.array(value) for name, value in model.init(0).items()}
    for name, value in change.items():
        if value == "sparse":
            start[name] = sp.csr_matrix(start[name])
        elif name in start:
            start[name][0, 0] = value
        else:
            start[name] = np.ones((2, 3))
    with pytest.raises(error, match=re.escape(message)):
        model.fit(init=start)


def test_zero_component_rejected():
    """A start whose column 1 of W is all zero is rejected: it would never move."""
    model = vanilla(_table(4, 3), 2, name="A")
    start = {name: np.array(value) for name, value in model.init(0).items()}
    start["W"][:, 1] = 0.0
    with pytest.raises(
        ValueError,
        match=re.escape(
            "initial factor 'W': column 1 (component 1) is all zero while the "
            "data are not"
        ),
    ):
        model.fit(init=start)


def test_zero_start_row_warns():
    """A start with an all-zero row of W warns that the row stays zero."""
    model = vanilla(_table(4, 3), 2, name="A")
    start = {name: np.array(value) for name, value in model.init(0).items()}
    start["W"][2] = 0.0
    with pytest.warns(UserWarning, match=re.escape("'W' has all-zero rows [2]")):
        result = model.fit(init=start, max_iter=5)
    assert np.all(result.factors["W"][2] == 0.0)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "0"])
def test_seed_must_be_32_bit(seed):
    """Seeds outside [0, 2**32) are rejected: above it JAX would drop the high bits."""
    with pytest.raises(
        (TypeError, ValueError),
        match=re.escape("seed must be a whole number in [0, 4294967296)"),
    ):
        vanilla(_table(), 2).fit(seed)


def test_seed_and_init_conflict():
    """A seed next to an explicit start would be ignored, so both are rejected."""
    model = vanilla(_table(), 2)
    with pytest.raises(ValueError, match="either seed or init, not both"):
        model.fit(3, init=model.init(3))


def test_restart_seeds_checked():
    """fit_restarts names a bad seed before drawing any start."""
    model = vanilla(_table(), 2)
    with pytest.raises(ValueError, match="seed must be a whole number"):
        model.fit_restarts([0, -5])
    with pytest.raises(TypeError, match="non-empty sequence of seeds"):
        model.fit_restarts(3)


# -- empty tables and zero rows and columns ----------------------------------


def test_empty_table_fits_with_given_start():
    """A child with zero columns and a grandchild with zero rows are allowed.

    The grandchild's H has no data, so its ∇⁻ is zero and the first sweep sets
    it to exactly zero; the other factors stay finite.
    """
    model = chain([_table(4, 3), np.ones((3, 0)), np.ones((0, 2))], 2)
    start = {
        "W": np.full((4, 2), 0.5),
        "H_A": np.full((2, 3), 0.5),
        "H_B": np.ones((2, 0)),
        "H_C": np.full((2, 2), 0.5),
    }
    result = model.fit(init=start, max_iter=5)
    np.testing.assert_array_equal(result.factors["H_C"], np.zeros((2, 2)))
    assert result.factors["H_B"].shape == (2, 0)
    assert np.all(np.isfinite(result.loss_history))


def test_empty_table_fits_from_default_start():
    """The default start of a model with an empty table is finite."""
    model = chain([_table(4, 3), np.ones((3, 0)), np.ones((0, 2))], 2)
    result = model.fit(0, max_iter=5)
    assert np.all(np.isfinite(result.factors["H_C"]))


def test_zero_first_view_default_start():
    """A multi-view model whose first table is all zero still gets a usable start."""
    model = Model([Table("A", np.zeros((4, 3))), Table("B", _table(4, 2))], 2)
    result = model.fit(0, max_iter=5)
    assert np.all(result.factors["W"] > 0)


def test_zero_parent_default_start_finite():
    """A link below an all-zero parent gets a finite start in float32."""
    model = chain([np.zeros((3, 3)), np.full((3, 2), 40.0)], 2)
    result = model.fit(0, max_iter=5, dtype=jnp.float32)
    assert np.all(np.isfinite(result.factors["H_B"]))


def test_drawn_start_error_names_init(monkeypatch):
    """An invalid start drawn by Model.init is named as such, with the way out.

    No valid table makes the documented draw invalid, so the draw is replaced
    by one that returns a NaN entry in H_B.
    """
    from chainnmf import schema

    draw = schema._random_start

    def draw_with_nan(*args, **kwargs):
        factors = draw(*args, **kwargs)
        return {**factors, "H_B": factors["H_B"].at[0, 0].set(jnp.nan)}

    monkeypatch.setattr(schema, "_random_start", draw_with_nan)
    model = chain([np.ones((3, 3)), np.full((3, 2), 40.0)], 2)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Model.init(seed=0) drew an invalid start for these tables, so pass a "
            "start of your own as init: initial factor 'H_B': expected finite "
            "entries"
        ),
    ):
        model.fit(0, max_iter=5, dtype=jnp.float32)


def test_zero_rows_and_columns_zero_factors():
    """An all-zero column of V zeroes that column of H, an all-zero row that row of W.

    Their ∇⁻ is a sum over the zero entries, so the first sweep multiplies
    them by 0 / δ (see chainnmf.numerics).
    """
    data = _table(5, 4)
    data[:, 1] = 0.0
    data[3, :] = 0.0
    for loss in ("frobenius", "kl"):
        result = vanilla(data, 2, loss=loss, name="A").fit(0, max_iter=4)
        np.testing.assert_array_equal(result.factors["H_A"][:, 1], [0.0, 0.0])
        np.testing.assert_array_equal(result.factors["W"][3], [0.0, 0.0])
        assert np.all(result.factors["W"][[0, 1, 2, 4]] > 0)


def test_unreachable_kl_rows_warn():
    """KL rows behind an all-zero parent column are named in a warning."""
    parent = _table(4, 3)
    parent[:, 2] = 0.0
    with pytest.warns(UserWarning, match=re.escape("table 'B' (loss 'kl'): rows [2]")):
        chain([parent, _table(3, 2)], 2, loss="kl")


# -- dtype and magnitudes ----------------------------------------------------


def test_float64_without_x64_warns():
    """Float64 data with x64 mode off run in float32, and a warning states it."""
    data = _table()
    with jax.enable_x64(False):
        model = vanilla(data, 2, name="A")
        with pytest.warns(
            UserWarning, match="float64 entries in table 'A', but JAX's x64 mode is off"
        ):
            result = fit(
                model.loss,
                {k: np.asarray(v) for k, v in model.init(0).items()},
                model.data,
                max_iter=3,
            )
    assert result.dtype == "float32"


def test_float64_request_without_x64_rejected():
    """Asking for float64 with x64 mode off is an error, not a silent float32 run."""
    with (
        jax.enable_x64(False),
        pytest.raises(
            ValueError, match="dtype float64 was requested, but JAX's x64 mode is off"
        ),
    ):
        vanilla(_table(), 2).fit(0, dtype="float64")


def test_float32_range_checked():
    """Entries above the float32 maximum, or a ‖V‖² above it, are rejected."""
    huge = _table()
    huge[0, 0] = 1e39
    with pytest.raises(
        ValueError,
        match=re.escape(
            "table 'V': its largest entry, 1e+39, exceeds the largest float32 value"
        ),
    ):
        vanilla(huge, 2).fit(0, dtype=jnp.float32)
    large = np.full((4, 3), 1e19)
    with pytest.raises(
        ValueError,
        match=re.escape("table 'V': its squared Frobenius norm, 1.2e+39, exceeds"),
    ):
        vanilla(large, 2).fit(0, dtype=jnp.float32)


# -- generic fits ------------------------------------------------------------


def _frobenius_loss():
    return Loss(
        [
            Term(lambda V: trace(V.T, V)),
            Term(lambda V, W, H: trace(V.T, W, H), sign=-1, weight=2.0),
            Term(lambda W, H: trace(H.T, W.T, W, H)),
        ],
        factors=("W", "H"),
    )


@pytest.mark.parametrize(
    ("start", "data", "message"),
    [
        (
            {"W": np.ones((4, 2)), "H": np.ones((3, 3))},
            {"V": _table()},
            "cannot be evaluated on factors of shapes {'W': (4, 2), 'H': (3, 3)}",
        ),
        (
            {"W": np.ones((4, 2)), "H": np.ones((2, 3))},
            {},
            "missing data table(s) ['V']",
        ),
        (
            {"W": np.ones((4, 2)), "H": np.zeros((2, 3))},
            {"V": _table()},
            "initial factor 'H': expected some positive entries, found all zeros",
        ),
    ],
    ids=["shape mismatch", "missing table", "all-zero factor"],
)
def test_generic_fit_input_errors(start, data, message):
    """A user's loss rejects a mismatched start, a missing table or a zero factor.

    The shape mismatch is found before compiling, with every shape listed.
    An all-zero factor would never move under multiplicative updates.
    """
    with pytest.raises(ValueError, match=re.escape(message)):
        fit(_frobenius_loss(), start, data)


def test_restart_start_named():
    """A bad start inside a stack is named by its index."""
    loss = _frobenius_loss()
    factors = {"W": np.ones((3, 4, 2)), "H": np.ones((3, 2, 3))}
    factors["H"][1] = 0.0
    with pytest.raises(ValueError, match=re.escape("initial factor 'H' (start 1)")):
        fit_restarts(loss, factors, {"V": _table()})


def test_model_with_data_rejected():
    """A Model brings its own tables, so passing data as well is an error."""
    model = vanilla(_table(), 2)
    with pytest.raises(ValueError, match="data must be None when fitting a Model"):
        fit(model, model.init(0), model.data)


def test_errors_raised_before_compiling(monkeypatch):
    """Bad input fails before the loop is built or traced."""

    def fail_if_called(*args, **kwargs):
        raise AssertionError("the loop was compiled")

    monkeypatch.setattr(
        importlib.import_module("chainnmf.fit"), "_compiled", fail_if_called
    )
    data = _table()
    data[0, 0] = -1.0
    with pytest.raises(ValueError, match="negative"):
        fit(
            _frobenius_loss(), {"W": np.ones((4, 2)), "H": np.ones((2, 3))}, {"V": data}
        )
    model = vanilla(_table(), 2)
    with pytest.raises(ValueError, match="max_iter"):
        model.fit(0, max_iter=0)


# -- inputs are not modified -------------------------------------------------


def _snapshot(array):
    """Copy every buffer that describes ``array``, to compare after a call."""
    if sp.issparse(array):
        coo = array.tocoo(copy=True)
        return (array.format, coo.row, coo.col, coo.data, array.nnz)
    if isinstance(array, jsparse.BCOO):
        return (np.array(array.indices), np.array(array.data))
    return (np.array(array), getattr(array, "flags", None) and array.flags.writeable)


def _assert_unchanged(before, after):
    assert len(before) == len(after)
    for old, new in zip(before, after):
        if isinstance(old, np.ndarray):
            np.testing.assert_array_equal(old, new)
        else:
            assert old == new


def test_dense_inputs_unchanged_by_fit():
    """A fit leaves NumPy and JAX data and initial factors as they were."""
    data = _table(5, 4)
    data[2] = 0.0
    model = chain([data, jnp.asarray(_table(4, 3))], 2, loss="kl")
    start = {name: np.array(value) for name, value in model.init(0).items()}
    start["H_B"] = jnp.asarray(start["H_B"])
    tables = {name: _snapshot(value) for name, value in model.data.items()}
    factors = {name: _snapshot(value) for name, value in start.items()}
    model.fit(init=start, max_iter=5)
    for name, value in model.data.items():
        _assert_unchanged(tables[name], _snapshot(value))
    for name, value in start.items():
        _assert_unchanged(factors[name], _snapshot(value))


def test_sparse_inputs_unchanged_by_checks():
    """Model checks and checksums leave scipy and BCOO tables as they were.

    The COO table has a repeated position and an explicit zero, which the
    checks must neither sum nor drop in the caller's object.
    """
    from chainnmf.checkpoint import table_checksum

    coo = sp.coo_matrix(
        ([1.0, 2.0, 0.0, 4.0], ([0, 0, 1, 2], [1, 1, 0, 2])), shape=(3, 3)
    )
    csr = sp.csr_matrix(_table(3, 2))
    bcoo = jsparse.BCOO.fromdense(jnp.asarray(_table(2, 4)))
    before = [_snapshot(table) for table in (coo, csr, bcoo)]
    model = Model(
        [Table("A", coo), Table("B", csr, parent="A"), Table("C", bcoo, parent="B")],
        2,
    )
    for table in model.data.values():
        table_checksum(table)
    for old, table in zip(before, (coo, csr, bcoo)):
        _assert_unchanged(old, _snapshot(table))
    assert not coo.has_canonical_format


def test_sparse_inputs_unchanged_by_fit():
    """A fit from sparse tables leaves the caller's matrices as they were."""
    coo = sp.coo_matrix(
        ([1.0, 2.0, 0.0, 4.0, 5.0], ([0, 0, 1, 2, 3], [1, 1, 0, 2, 0])), shape=(4, 3)
    )
    bcoo = jsparse.BCOO.fromdense(jnp.asarray(_table(3, 4)))
    before = [_snapshot(table) for table in (coo, bcoo)]
    model = Model([Table("A", coo, loss="kl"), Table("B", bcoo, parent="A")], 2)
    result = model.fit(0, max_iter=5)
    assert np.all(np.isfinite(result.loss_history))
    for old, table in zip(before, (coo, bcoo)):
        _assert_unchanged(old, _snapshot(table))
    assert not coo.has_canonical_format


def test_warnings_point_at_caller():
    """Warnings from deep inside chainnmf are attributed to the calling file."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        vanilla(np.ones((3, 2), int), 1).fit(0, max_iter=2, tol=0.0)
    files = {warning.filename for warning in record}
    assert files == {__file__}
    assert len(record) == 2
