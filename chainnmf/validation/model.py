"""Checks of the tables of a :class:`~chainnmf.schema.Model` and how they link."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np

from chainnmf.sparse import is_sparse
from chainnmf.validation.arrays import (
    _positive_along,
    _warn_converted,
    check_array,
    sparse_coordinates,
    stored_values,
)
from chainnmf.validation.options import check_rank
from chainnmf.validation.reporting import _format_list, warn

__all__ = ["check_model"]

logger = logging.getLogger(__name__)


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
