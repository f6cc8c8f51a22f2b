"""Checks of scalar settings: the fit options, the rank and the seed."""

from __future__ import annotations

import dataclasses
import math
import numbers
import operator
import os
from collections.abc import Callable

import numpy as np

from chainnmf.validation.dtypes import _floating_dtype

__all__ = ["FitOptions", "check_fit_options", "check_rank", "check_seed"]

# Seeds are used as 32-bit keys: with x64 off, jax.random.key keeps only the
# low 32 bits, so larger seeds would silently collide (2**32 gives seed 0).
_SEED_LIMIT = 2**32


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

    ``dtype`` is only checked to be a floating dtype here;
    :func:`~chainnmf.validation.dtypes.check_dtype` resolves it against JAX's
    x64 mode.
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
