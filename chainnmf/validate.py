"""Checks of user input at the public entry points, run on the host before tracing.

:class:`~chainnmf.schema.Model`, :meth:`Model.fit <chainnmf.schema.Model.fit>`,
:func:`~chainnmf.fit.fit` and :func:`~chainnmf.fit.fit_restarts` call these
checks before anything is traced or compiled. A failure raises ``ValueError``
(a bad value or shape) or ``TypeError`` (a bad type) with a message that names
the table or factor, what was expected and what was found.

Data tables may be dense (NumPy or JAX arrays, or anything ``numpy.asarray``
accepts), scipy.sparse matrices or ``jax.experimental.sparse.BCOO`` arrays.
Sparse tables are checked through their stored values and indices and are
never densified. No check modifies its input.

What is accepted, and what then happens:

* Integer and boolean tables and factors are converted to the fit's floating
  dtype, with one warning that lists them.
* Float64 input while JAX's x64 mode is off runs in float32, with a warning.
* A table with zero rows or zero columns adds nothing to the loss. The factor
  ``H_t`` of a table with zero rows is set to zero by the first sweep, because
  no data constrain it.
* An all-zero column ``l`` of a table ``t`` makes column ``l`` of ``H_t`` exactly
  zero after the first sweep, because its ``∇⁻`` is zero.
* A row ``i`` that is all zero in every table without a parent makes row ``i``
  of ``W`` exactly zero after the first sweep, for the same reason.
* Rows of a linked table whose path product ``Z_t`` is zero for every ``W``
  (the matching columns of the parent are all zero, or reach only such rows)
  are modeled as zero whatever the factors. Under the Frobenius loss they add
  the constant ``‖V_row‖²``. Under KL their positive entries add the constant
  ``−V log(tiny)`` (see :mod:`chainnmf.numerics`), so they are reported with
  a warning.
* Exact zeros in an initial factor stay zero under multiplicative updates.
  A start whose factor is all zero, or whose component (a column of ``W`` or a
  row of ``H_t``) is all zero while the data are not, is rejected. A start
  with all-zero rows of ``W`` or columns of ``H_t`` gets a warning.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
import operator
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse as jsparse

from chainnmf.numerics import default_dtype
from chainnmf.sparse import SparseMatrix, is_sparse

__all__ = [
    "ArrayInfo",
    "FitOptions",
    "check_array",
    "check_data",
    "check_dtype",
    "check_factors",
    "check_fit_options",
    "check_loss_shapes",
    "check_magnitudes",
    "check_model",
    "check_model_start",
    "check_range",
    "check_rank",
    "check_seed",
    "resolve_dtype",
    "sparse_coordinates",
    "stored_values",
    "warn",
]

logger = logging.getLogger(__name__)

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

# Positions listed in a message before the rest are counted as "and N more".
_LISTED = 5

# Seeds are used as 32-bit keys: with x64 off, jax.random.key keeps only the
# low 32 bits, so larger seeds would silently collide (2**32 gives seed 0).
_SEED_LIMIT = 2**32


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """Issue a warning attributed to the first caller outside chainnmf."""
    frame = sys._getframe(0)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


# -- array access --------------------------------------------------------------


def _plain_bcoo(array: jsparse.BCOO) -> jsparse.BCOO:
    """Return ``array`` with no batch or dense dimensions (indices of shape (nse, ndim))."""
    if array.n_batch == 0 and array.n_dense == 0:
        return array
    return jsparse.bcoo_update_layout(array, n_batch=0, n_dense=0)


def sparse_coordinates(array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(rows, columns, values)`` of the stored entries of a sparse matrix.

    ``array`` is any table that :func:`chainnmf.sparse.is_sparse` accepts.
    Entries are in storage order and may repeat a position (their values add
    up). Padding entries of a BCOO array or a SparseMatrix (value 0) are
    included. The arrays
    are host NumPy arrays that may share memory with ``array``; they are only
    read.
    """
    if isinstance(array, SparseMatrix):
        rows, columns = array.coordinates()
        return np.asarray(rows), np.asarray(columns), np.asarray(array.data)
    if isinstance(array, jsparse.BCSR):
        array = array.to_bcoo()
    if isinstance(array, jsparse.BCOO):
        plain = _plain_bcoo(array)
        indices = np.asarray(plain.indices)
        return indices[:, 0], indices[:, 1], np.asarray(plain.data)
    coo = array.tocoo(copy=False)
    return np.asarray(coo.row), np.asarray(coo.col), np.asarray(coo.data)


def stored_values(array) -> np.ndarray:
    """Return the stored values of a sparse matrix, or every entry of a dense array.

    The values are in the order of :func:`sparse_coordinates`, as a host NumPy
    array that may share memory with ``array`` and is only read. Sparse
    matrices are not densified.
    """
    if is_sparse(array):
        return sparse_coordinates(array)[2]
    return np.asarray(array)


def _position(array, flat: int) -> str:
    """Describe where the ``flat``-th checked value of ``array`` sits."""
    if is_sparse(array):
        rows, columns, _ = sparse_coordinates(array)
        return f"row {rows[flat]}, column {columns[flat]}"
    index = np.unravel_index(flat, np.shape(array))
    if len(index) == 2:
        return f"row {index[0]}, column {index[1]}"
    if len(index) == 3:
        return f"start {index[0]}, row {index[1]}, column {index[2]}"
    return f"index {tuple(int(i) for i in index)}"


def _format_list(items) -> str:
    items = [int(item) for item in items]
    listed = ", ".join(str(item) for item in items[:_LISTED])
    if len(items) > _LISTED:
        listed += f" and {len(items) - _LISTED} more"
    return f"[{listed}]"


# -- arrays ------------------------------------------------------------------


class ArrayInfo(NamedTuple):
    """Properties of a table or factor, as found by :func:`check_array`.

    Attributes:
        shape: the array's shape.
        dtype: its dtype before conversion.
        converted: whether it is integer or boolean and will become floating.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    converted: bool


def check_array(label: str, array, *, ndim: int | None = 2, dense: bool = False):
    """Check that ``array`` is a real, finite, nonnegative array.

    Args:
        label: how messages name the array, such as ``"table 'A'"``.
        array: a dense or sparse array.
        ndim: the required number of dimensions, or None for any.
        dense: whether sparse arrays are rejected (initial factors are dense).

    Returns:
        An :class:`ArrayInfo`.

    Raises:
        TypeError: when ``array`` is not an array of real numbers, or is
            sparse where ``dense`` is set.
        ValueError: on the wrong number of dimensions, or on NaN, infinite or
            negative entries; the message gives their count and the first one.
    """
    if dense and is_sparse(array):
        raise TypeError(
            f"{label}: expected a dense array, found {type(array).__name__}; "
            "convert it with .toarray() or .todense()"
        )
    if is_sparse(array) and len(array.shape) != 2:
        raise ValueError(
            f"{label}: expected a 2-D sparse matrix, found shape {tuple(array.shape)}"
        )
    try:
        values = stored_values(array)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{label}: expected an array of real numbers, found "
            f"{type(array).__name__} that NumPy cannot convert ({error})"
        ) from error
    shape = tuple(
        int(size) for size in (array.shape if is_sparse(array) else values.shape)
    )
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{label}: expected a {ndim}-D array, found shape {shape}")
    dtype = values.dtype
    converted = dtype == np.bool_ or jnp.issubdtype(dtype, jnp.integer)
    if not (converted or jnp.issubdtype(dtype, jnp.floating)):
        raise TypeError(f"{label}: expected real numbers, found dtype {dtype}")
    if not converted:
        _check_finite(label, array, values)
    negative = np.flatnonzero(values < 0)
    if negative.size:
        smallest = negative[np.argmin(values.flat[negative])]
        raise ValueError(
            f"{label}: expected entries >= 0, found {negative.size} negative "
            f"entries; the smallest is {values.flat[smallest].item()!r} at "
            f"{_position(array, smallest)}"
        )
    return ArrayInfo(shape, np.dtype(dtype), bool(converted))


def _check_finite(label: str, array, values: np.ndarray) -> None:
    for name, bad in (("NaN", np.isnan(values)), ("infinite", np.isinf(values))):
        found = np.flatnonzero(bad)
        if found.size:
            raise ValueError(
                f"{label}: expected finite entries, found {found.size} {name} "
                f"entries, the first at {_position(array, found[0])}"
            )


def _warn_converted(labels: list[str]) -> None:
    if labels:
        warn(
            f"{', '.join(labels)} have integer or boolean entries; they are "
            "converted to the fit's floating dtype"
        )


# -- scalars -----------------------------------------------------------------


def _whole_number(name: str, value, low: int, high: int | None = None) -> int:
    """Return ``value`` as an int in ``[low, high)``, or raise naming ``name``."""
    expected = f">= {low}" if high is None else f"in [{low}, {high})"
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a whole number {expected}, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be a whole number {expected}, got {value!r}"
        ) from None
    if number < low or (high is not None and number >= high):
        raise ValueError(f"{name} must be a whole number {expected}, got {number}")
    return number


def _finite_number(name: str, value) -> float:
    """Return ``value`` as a float, or raise unless it is a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite number >= 0, got {value!r}")
    if not (0 <= float(value) < math.inf):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_rank(rank) -> int:
    """Return ``rank`` as an int, or raise unless it is a whole number >= 1."""
    return _whole_number("rank", rank, 1)


def check_seed(seed) -> int:
    """Return ``seed`` as an int, or raise unless it is a whole number in [0, 2**32)."""
    return _whole_number("seed", seed, 0, _SEED_LIMIT)


# -- fit options -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """Validated options of a fit (see :func:`chainnmf.fit.fit` for each)."""

    max_iter: int
    tol: float
    eval_every: int
    floor: float
    dtype: np.dtype | None
    callback: Callable | None
    chunk: int | None
    on_nonfinite: str
    checkpoint: str | None
    checkpoint_every: int | None
    resume: str | None


def _path_or_none(name: str, value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike):
        raise TypeError(f"{name} must be a file path, got {type(value).__name__}")
    return os.fspath(value)


def check_fit_options(
    *,
    max_iter,
    tol,
    eval_every,
    floor,
    dtype,
    on_nonfinite,
    callback=None,
    chunk=None,
    checkpoint=None,
    checkpoint_every=None,
    resume=None,
) -> FitOptions:
    """Check the options of a fit and return them normalized.

    ``dtype`` is only checked to be a floating dtype here; :func:`check_dtype`
    resolves it against JAX's x64 mode.
    """
    if on_nonfinite not in ("warn", "raise"):
        raise ValueError(
            f"on_nonfinite must be 'warn' or 'raise', got {on_nonfinite!r}"
        )
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    checkpoint = _path_or_none("checkpoint", checkpoint)
    if checkpoint is not None and checkpoint_every is None:
        raise ValueError(
            "checkpoint_every is required with checkpoint: pass the number of "
            "sweeps between two writes"
        )
    if checkpoint is None and checkpoint_every is not None:
        raise ValueError("checkpoint_every was given without checkpoint, a file path")
    return FitOptions(
        max_iter=_whole_number("max_iter", max_iter, 1),
        tol=_finite_number("tol", tol),
        eval_every=_whole_number("eval_every", eval_every, 1),
        floor=_finite_number("floor", floor),
        dtype=None if dtype is None else _floating_dtype(dtype),
        callback=callback,
        chunk=None if chunk is None else _whole_number("chunk", chunk, 1),
        on_nonfinite=on_nonfinite,
        checkpoint=checkpoint,
        checkpoint_every=(
            None
            if checkpoint_every is None
            else _whole_number("checkpoint_every", checkpoint_every, 1)
        ),
        resume=_path_or_none("resume", resume),
    )


def _floating_dtype(dtype) -> np.dtype:
    try:
        resolved = jnp.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or not jnp.issubdtype(resolved, jnp.floating):
        raise TypeError(
            f"dtype must be a floating dtype such as 'float32', got {dtype!r}"
        )
    if resolved == np.float64 and not jax.config.jax_enable_x64:
        raise ValueError(
            "dtype float64 was requested, but JAX's x64 mode is off, so JAX would "
            "compute in float32; call jax.config.update('jax_enable_x64', True) "
            "at startup, or pass dtype='float32'"
        )
    return resolved


def check_dtype(dtype, arrays: Mapping[str, object]) -> np.dtype:
    """Resolve the fit's dtype and check that ``arrays`` fit in it.

    Args:
        dtype: the requested floating dtype, or None for float64 under JAX's
            x64 mode and float32 otherwise.
        arrays: the tables and initial factors, keyed by their message label.

    Returns:
        The dtype the fit runs in.

    Raises:
        ValueError: when an entry exceeds the largest finite value of the dtype.

    Warns:
        UserWarning: when ``dtype`` is None, x64 mode is off and some arrays
        are float64, since they will be rounded to float32.
    """
    resolved = resolve_dtype(dtype)
    if dtype is None and not jax.config.jax_enable_x64:
        wide = [
            label for label, array in arrays.items() if _dtype_of(array) == np.float64
        ]
        if wide:
            warn(
                f"{', '.join(wide)} are float64, but JAX's x64 mode is off, so the "
                "fit runs in float32; call jax.config.update('jax_enable_x64', "
                "True) at startup to run in float64"
            )
    check_range(resolved, arrays)
    return resolved


def resolve_dtype(dtype) -> np.dtype:
    """Return the fit's dtype: ``dtype``, or the default of JAX's x64 mode for None.

    Raises:
        TypeError: when ``dtype`` is not a floating dtype.
        ValueError: when float64 is requested while x64 mode is off.
    """
    return default_dtype() if dtype is None else _floating_dtype(dtype)


def check_range(dtype, arrays: Mapping[str, object]) -> None:
    """Check that no entry of ``arrays`` exceeds the largest value of ``dtype``.

    ``arrays`` are keyed by their message label.
    """
    largest_allowed = float(jnp.finfo(dtype).max)
    for label, array in arrays.items():
        values = stored_values(array)
        if values.size and float(np.max(values)) > largest_allowed:
            raise ValueError(
                f"{label}: its largest entry, {float(np.max(values)):.3g}, exceeds "
                f"the largest {np.dtype(dtype)} value, {largest_allowed:.3g}; "
                "rescale it (for example divide it by its largest entry) or run "
                "in float64"
            )


def _dtype_of(array) -> np.dtype:
    return np.dtype(getattr(array, "dtype", None) or np.asarray(array).dtype)


# -- generic fits ------------------------------------------------------------


def check_data(loss, data: Mapping[str, object] | None) -> None:
    """Check that ``data`` contains every table of ``loss`` with valid entries.

    Tables of any number of dimensions are accepted, since a user's loss may
    take vectors or scalars.
    """
    data = {} if data is None else data
    absent = [name for name in loss.data_names if name not in data]
    if absent:
        raise ValueError(
            f"missing data table(s) {absent} used by the loss terms; got tables "
            f"{sorted(data)}"
        )
    converted = []
    for name in loss.data_names:
        label = f"table {name!r}"
        if check_array(label, data[name], ndim=None).converted:
            converted.append(label)
    _warn_converted(converted)


def _factor_names(expected: tuple[str, ...], factors: Mapping[str, object]) -> None:
    missing = [name for name in expected if name not in factors]
    if missing:
        raise ValueError(
            f"missing initial value for factor(s) {missing}; got factors "
            f"{sorted(factors)}"
        )
    unknown = [name for name in factors if name not in expected]
    if unknown:
        raise ValueError(
            f"unknown initial factor(s) {unknown}; expected the factors "
            f"{list(expected)}"
        )


def _starts(array: np.ndarray, batched: bool):
    """Yield ``(suffix, start)`` for each start of a possibly stacked factor."""
    if not batched:
        yield "", array
        return
    for index in range(array.shape[0]):
        yield f" (start {index})", array[index]


def _check_start_counts(shapes: Mapping[str, tuple[int, ...]]) -> None:
    counts = {name: shape[0] if shape else None for name, shape in shapes.items()}
    if len(set(counts.values())) != 1 or None in counts.values():
        raise ValueError(
            f"every factor needs the same number of starts on axis 0, got {counts}"
        )


def check_factors(loss, factors: Mapping[str, object], *, batched: bool) -> None:
    """Check the initial factors of a fit of ``loss``.

    Each factor must be a dense, finite, nonnegative array that is not all
    zero (an all-zero factor never changes under multiplicative updates). With
    ``batched``, every factor stacks its starts along a new first axis, and
    each start is checked on its own.
    """
    _factor_names(loss.factors, factors)
    converted = []
    shapes = {}
    for name in loss.factors:
        label = f"initial factor {name!r}"
        info = check_array(label, factors[name], ndim=None, dense=True)
        shapes[name] = info.shape
        if info.converted:
            converted.append(label)
        for suffix, start in _starts(np.asarray(factors[name]), batched):
            if start.size and not np.any(start):
                raise ValueError(
                    f"{label}{suffix}: expected some positive entries, found all "
                    "zeros; multiplicative updates keep zeros at zero, so this "
                    "factor would never change"
                )
    if batched:
        _check_start_counts(shapes)
    _warn_converted(converted)


# -- models ------------------------------------------------------------------


def _check_table_fields(table, seen: Mapping[str, object]) -> None:
    from chainnmf.schema import INSERTION_POINT, LOSSES

    if not isinstance(table.name, str) or not table.name:
        raise TypeError(f"table names must be non-empty strings, got {table.name!r}")
    if table.name in seen:
        raise ValueError(f"table name {table.name!r} is used twice")
    if table.name == INSERTION_POINT or table.name.startswith("H_"):
        raise ValueError(
            f"table name {table.name!r} is reserved for factors; choose a name "
            "that is not 'W' and does not start with 'H_'"
        )
    if table.loss not in LOSSES:
        raise ValueError(
            f"table {table.name!r}: loss must be one of {LOSSES}, got {table.loss!r}"
        )
    try:
        weight = float(table.weight)
    except (TypeError, ValueError):
        weight = math.nan
    if not (0 <= weight < math.inf):
        raise ValueError(
            f"table {table.name!r}: weight must be finite and >= 0, got "
            f"{table.weight!r}"
        )


def _check_links(table, shape, seen: Mapping[str, tuple[int, ...]], root) -> None:
    """Check that ``table``'s rows match W (no parent) or its parent's columns."""
    if table.parent is None:
        if root is not None and shape[0] != root[1]:
            raise ValueError(
                f"table {table.name!r} has no parent, so its rows must be those "
                f"of W ({root[1]}, from table {root[0]!r}), got {shape[0]} rows"
            )
        return
    if table.parent not in seen:
        raise ValueError(
            f"table {table.name!r}: parent {table.parent!r} must be listed before "
            f"it; tables so far: {list(seen)}"
        )
    parent_columns = seen[table.parent][1]
    if shape[0] != parent_columns:
        raise ValueError(
            f"table {table.name!r} links to {table.parent!r}, so its rows must "
            f"match the {parent_columns} columns of {table.parent!r}, got "
            f"{shape[0]} rows"
        )


def check_model(tables, rank) -> None:
    """Check the tables and rank of a :class:`~chainnmf.schema.Model`.

    Raises:
        TypeError: on an entry that is not a ``Table``, a name that is not a
            string, or data that are not real numbers.
        ValueError: on a rank below 1, a repeated or reserved name, an
            unknown loss, or a negative or non-finite weight. Also on data
            that are not 2-D or contain NaN, infinite or negative entries, a
            parent listed after its child, or shapes that do not chain.

    Warns:
        UserWarning: for integer or boolean tables (converted to floating),
        and for KL tables with positive entries in rows whose model is zero
        for any factors.
    """
    from chainnmf.schema import Table

    check_rank(rank)
    if not tables:
        raise ValueError("a model needs at least one table, got none")
    seen: dict[str, tuple[int, ...]] = {}
    root = None
    converted = []
    for table in tables:
        if not isinstance(table, Table):
            raise TypeError(
                f"tables must be Table instances, got {type(table).__name__}"
            )
        _check_table_fields(table, seen)
        label = f"table {table.name!r}"
        info = check_array(label, table.data, ndim=None)
        if len(info.shape) != 2:
            raise ValueError(f"{label}: expected a 2-D table, found shape {info.shape}")
        if info.converted:
            converted.append(label)
        _check_links(table, info.shape, seen, root)
        if table.parent is None and root is None:
            root = (table.name, info.shape[0])
        seen[table.name] = info.shape
    if root is None:
        raise ValueError(
            "at least one table must have parent=None: its rows are the rows of W"
        )
    _warn_converted(converted)
    _report_unreachable_rows(tables)


def _positive_along(table, axis: int) -> np.ndarray:
    """Return, per row (``axis=1``) or column (``axis=0``), whether it has a positive entry."""
    if not is_sparse(table):
        return np.any(stored_values(table) > 0, axis=axis)
    rows, columns, values = sparse_coordinates(table)
    found = np.zeros(table.shape[1 - axis], bool)
    found[(rows if axis == 1 else columns)[values > 0]] = True
    return found


def _columns_reached(table, row_reached: np.ndarray) -> np.ndarray:
    """Return which columns of ``table`` have a positive entry in a reached row."""
    if not is_sparse(table):
        values = stored_values(table)
        return np.any((values > 0) & row_reached[:, None], axis=0)
    rows, columns, values = sparse_coordinates(table)
    positive = values > 0
    rows, columns = rows[positive], columns[positive]
    reached = np.zeros(table.shape[1], bool)
    reached[columns[row_reached[rows]]] = True
    return reached


def _report_unreachable_rows(tables) -> None:
    """Report rows of linked tables whose path product is zero for every ``W``.

    ``Z_child = V_parentᵀ Z_parent``, so row ``j`` of ``Z_child`` can be
    nonzero only when column ``j`` of the parent has a positive entry in a
    row that ``Z_parent`` can reach. Rows of tables without a parent are all
    reachable, since ``W`` is free.
    """
    by_name = {table.name: table for table in tables}
    reached: dict[str, np.ndarray] = {}
    for table in tables:
        if table.parent is None:
            reached[table.name] = np.ones(np.shape(table.data)[0], bool)
            continue
        parent = by_name[table.parent]
        reached[table.name] = _columns_reached(parent.data, reached[parent.name])
        lost = np.flatnonzero(~reached[table.name] & _positive_along(table.data, 1))
        if not lost.size:
            continue
        if table.loss == "kl":
            warn(
                f"table {table.name!r} (loss 'kl'): rows {_format_list(lost)} have "
                "positive entries, but their model is zero for any factors, because "
                f"the matching columns of parent {table.parent!r} have no positive "
                "entry in a row its own path product can reach. These entries add "
                "the constant -V log(tiny) to the loss, which makes tol easier to "
                f"meet; remove these rows from {table.name!r} and the matching "
                f"columns from {table.parent!r}, or use loss='frobenius'"
            )
        else:
            logger.info(
                "table %r: rows %s are modeled as zero for any factors and add "
                "the constant ||V_row||^2 to the loss",
                table.name,
                _format_list(lost),
            )


def _expected_factor_shapes(model) -> dict[str, tuple[tuple[int, ...], str]]:
    """Return each factor's shape and a phrase that explains where it comes from."""
    from chainnmf.schema import INSERTION_POINT, factor_name

    k = model.rank
    shapes = {
        INSERTION_POINT: (
            (model.n_rows, k),
            f"the {model.n_rows} rows of the tables without parent by rank {k}",
        )
    }
    for table in model.tables:
        columns = np.shape(table.data)[1]
        shapes[factor_name(table.name)] = (
            (k, columns),
            f"rank {k} by the {columns} columns of table {table.name!r}",
        )
    return shapes


def check_model_start(model, factors: Mapping[str, object], *, batched: bool) -> None:
    """Check initial factors against the tables and rank of ``model``.

    Raises:
        TypeError: on a sparse or non-numeric factor.
        ValueError: on a missing or unknown factor, a wrong shape, NaN,
            infinite or negative entries, or an all-zero component: a column
            of ``W``, or a row of ``H_t`` while table ``t`` has a positive
            entry. With ``batched``, each start is checked on its own.

    Warns:
        UserWarning: for integer or boolean factors, and for all-zero rows of
        ``W`` or columns of ``H_t`` that meet positive data, since they stay
        zero.
    """
    from chainnmf.schema import INSERTION_POINT, factor_name

    _factor_names(model.loss.factors, factors)
    converted = []
    shapes = {}
    for name, (expected, meaning) in _expected_factor_shapes(model).items():
        label = f"initial factor {name!r}"
        info = check_array(label, factors[name], ndim=2 + batched, dense=True)
        found = info.shape[1:] if batched else info.shape
        if found != expected:
            prefix = "(starts, " if batched else "("
            wanted = prefix + ", ".join(str(size) for size in expected) + ")"
            raise ValueError(
                f"{label}: expected shape {wanted} ({meaning}), found {info.shape}"
            )
        shapes[name] = info.shape
        if info.converted:
            converted.append(label)
    if batched:
        _check_start_counts(shapes)
    _warn_converted(converted)

    roots = [table.data for table in model.tables if table.parent is None]
    root_rows = np.any([_positive_along(data, 1) for data in roots], axis=0)
    notes = _check_components(
        INSERTION_POINT, np.asarray(factors[INSERTION_POINT]), 1, root_rows, batched
    )
    for table in model.tables:
        name = factor_name(table.name)
        columns = _positive_along(table.data, 0)
        notes += _check_components(name, np.asarray(factors[name]), 0, columns, batched)
    if notes:
        warn(
            "; ".join(notes) + "; multiplicative updates keep zeros at zero, so "
            "these rows and columns stay zero"
        )


def _check_components(
    name: str, factor: np.ndarray, component_axis: int, positive, batched: bool
) -> list[str]:
    """Reject all-zero components of one factor and list its all-zero entities.

    ``component_axis`` is the axis of the rank: 1 for ``W`` and 0 for ``H_t``.
    ``positive`` marks the entities (rows of ``W``, columns of ``H_t``) that
    meet a positive data entry.

    NOTE: single entries are not checked. A start where row ``i`` of ``Z`` and
    column ``l`` of ``H`` are positive only in different components models
    ``V[i, l]`` as zero forever, which under KL adds ``-V log(tiny)``.
    """
    part = ("column", "rows") if component_axis == 1 else ("row", "columns")
    notes = []
    for suffix, start in _starts(factor, batched):
        label = f"initial factor {name!r}{suffix}"
        if np.any(positive):
            zero = np.flatnonzero(~np.any(start > 0, axis=1 - component_axis))
            if zero.size:
                raise ValueError(
                    f"{label}: {part[0]} {zero[0]} (component {zero[0]}) is all "
                    "zero while the data are not, so that component would stay "
                    f"zero; expected a positive entry in every {part[0]}"
                )
        dead = np.flatnonzero(~np.any(start > 0, axis=component_axis) & positive)
        if dead.size:
            notes.append(f"{label} has all-zero {part[1]} {_format_list(dead)}")
    return notes


def _squared_norm(values: np.ndarray, batched: bool = False) -> float:
    """Return ``Σ x²`` in float64 (the largest over starts when ``batched``)."""
    values = values.astype(np.float64)
    with np.errstate(over="ignore"):
        squares = np.square(values)
        if batched and values.ndim:
            return float(np.max(np.sum(squares.reshape(len(values), -1), axis=1)))
        return float(np.sum(squares))


def check_magnitudes(model, dtype, factors=None, *, batched: bool = False) -> None:
    """Check that the Frobenius Gram terms of ``model`` cannot overflow in ``dtype``.

    The squared norm of each Frobenius table, and of each factor in
    ``factors`` when given, must stay below the largest value of ``dtype``:
    ``‖V‖²`` is a term of the loss, and ``‖H‖²`` bounds every entry of the
    Gram matrix ``H Hᵀ``. Sums of squares are taken in float64 on the host.
    """
    largest = float(jnp.finfo(dtype).max)
    norms = {
        f"table {table.name!r}": _squared_norm(stored_values(table.data))
        for table in model.tables
        if table.loss == "frobenius"
    }
    for name, factor in (factors or {}).items():
        norms[f"initial factor {name!r}"] = _squared_norm(np.asarray(factor), batched)
    for label, squared_norm in norms.items():
        if squared_norm > largest:
            raise ValueError(
                f"{label}: its squared Frobenius norm, {squared_norm:.3g}, exceeds "
                f"the largest {np.dtype(dtype)} value, {largest:.3g}, so the loss "
                "would overflow; rescale it (for example divide a table by its "
                "largest entry) or run in float64"
            )


def check_loss_shapes(loss, factors, data, *, batched: bool) -> None:
    """Check that ``loss`` evaluates to a scalar on factors and data of these shapes.

    The loss is traced abstractly with ``jax.eval_shape`` (no computation), so
    a shape mismatch between a user's terms and the arrays fails here with the
    shapes listed, not inside the compiled loop. With ``batched``, the leading
    axis of each factor (the starts) is dropped first.
    """
    if batched:
        factors = {
            name: jax.ShapeDtypeStruct(value.shape[1:], value.dtype)
            for name, value in factors.items()
        }
    factor_shapes = {name: tuple(value.shape) for name, value in factors.items()}
    table_shapes = {name: tuple(np.shape(value)) for name, value in data.items()}
    try:
        value = jax.eval_shape(loss.value, factors, data)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"the loss terms cannot be evaluated on factors of shapes "
            f"{factor_shapes} and tables of shapes {table_shapes}: {error}"
        ) from error
    if tuple(value.shape) != ():
        raise ValueError(
            f"the loss must evaluate to a scalar, found shape {tuple(value.shape)} "
            f"for factors of shapes {factor_shapes}"
        )
