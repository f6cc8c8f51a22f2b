"""Checks of dense and sparse arrays, and host access to their stored values.

Data tables and initial factors both pass :func:`check_array`. Sparse tables
are read through their stored values and indices and are never densified.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse as jsparse

from chainnmf.sparse import SparseMatrix, is_sparse
from chainnmf.validation.reporting import warn

__all__ = [
    "ArrayInfo",
    "check_array",
    "check_data",
    "sparse_coordinates",
    "stored_values",
]


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


def _positive_along(table, axis: int) -> np.ndarray:
    """Return, per row (``axis=1``) or column (``axis=0``), whether it has a positive entry."""
    if not is_sparse(table):
        return np.any(stored_values(table) > 0, axis=axis)
    rows, columns, values = sparse_coordinates(table)
    found = np.zeros(table.shape[1 - axis], bool)
    found[(rows if axis == 1 else columns)[values > 0]] = True
    return found


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
            f"integer or boolean entries in {', '.join(labels)}; they are "
            "converted to the fit's floating dtype"
        )


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
