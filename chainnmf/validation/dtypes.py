"""Resolution of the fit's floating dtype, and checks that inputs fit in it."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from chainnmf.numerics import default_dtype
from chainnmf.validation.arrays import stored_values
from chainnmf.validation.reporting import warn

__all__ = ["check_dtype", "check_magnitudes", "check_range", "resolve_dtype"]


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
                f"float64 entries in {', '.join(wide)}, but JAX's x64 mode is off, so the "
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
