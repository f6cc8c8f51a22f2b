"""Checks of initial factors, of stacked starts, and of the loss on their shapes."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np

from chainnmf.validation.arrays import _positive_along, _warn_converted, check_array
from chainnmf.validation.reporting import _format_list, warn

__all__ = ["check_factors", "check_loss_shapes", "check_model_start"]


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
