"""Numerical safeguards shared by every update and loss: ε, floors, safe ratios.

All of chainnmf's guards against division by zero and ``log(0)`` live here, so
that one rule holds everywhere:

* ``ε`` is the machine epsilon of the array's dtype (``1.19e-7`` in float32,
  ``2.22e-16`` in float64).
* A multiplicative update divides by the positive part of the gradient
  ``∇⁺``. Entries of ``∇⁺`` below ``δ = ε · max(∇⁺) + tiny`` are raised to
  ``δ`` (``tiny`` is the smallest positive normal number of the dtype). The
  rule is relative, so rescaling the data rescales nothing but the factors,
  and every entry of ``∇⁺`` that is not tiny is divided by exactly. An empty
  ``∇⁺`` (a table with no rows or columns) counts as ``max(∇⁺) = 0``.
* A factor entry that is exactly zero stays zero: multiplicative updates
  cannot move it, and keeping it zero explicitly avoids ``0 · ∞``. A dead
  component (a column of ``W`` or a row of ``H`` that is exactly zero) has
  ``∇⁻ = 0`` in the other factor's matching entries, so they become
  ``0 / δ = 0``. It adds nothing to ``max(∇⁺)``, so the other components are
  updated as if it were absent.
* An optional floor raises every updated entry to at least ``floor`` (default
  0, no floor). A positive floor lets dead entries recover at the cost of
  exact zeros.
* In the generalized KL divergence, a zero in the data contributes zero, and
  the model value is raised to ``tiny`` wherever the data are positive, so a
  zero in the model gives a large but finite loss instead of ``-log(0)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

__all__ = [
    "data_log_model",
    "default_dtype",
    "eps",
    "multiplicative_update",
    "safe_ratio",
    "tiny",
    "xlogx",
]


def default_dtype():
    """Return float64 when JAX's x64 mode is on, float32 otherwise."""
    return jnp.dtype(jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)


def eps(dtype) -> float:
    """Return the machine epsilon of a floating dtype."""
    return float(jnp.finfo(dtype).eps)


def tiny(dtype) -> float:
    """Return the smallest positive normal number of a floating dtype."""
    return float(jnp.finfo(dtype).tiny)


def safe_ratio(numerator: Array, denominator: Array) -> Array:
    """Divide ``numerator`` by ``denominator`` with denominators raised to ``δ``.

    ``δ = ε · max(denominator) + tiny`` for the dtype of ``denominator``, with
    ``max`` of an empty array taken as 0. Both arrays are nonnegative and have
    the same shape.
    """
    dtype = denominator.dtype
    floor = eps(dtype) * jnp.max(denominator, initial=0.0) + tiny(dtype)
    return numerator / jnp.maximum(denominator, floor)


def multiplicative_update(
    factor: Array, grad_minus: Array, grad_plus: Array, floor: float = 0.0
) -> Array:
    """Apply ``θ ← max(θ ⊙ ∇⁻ / ∇⁺, floor)``, keeping exact zeros at zero.

    Args:
        factor: the current factor ``θ``, nonnegative, any shape.
        grad_minus: ``∇⁻``, the negative part of the loss gradient at ``θ``.
        grad_plus: ``∇⁺``, the positive part of the loss gradient at ``θ``.
        floor: the least value an updated entry may take (0 for none).

    Returns:
        The updated factor, with the shape and dtype of ``factor``.
    """
    updated = factor * safe_ratio(grad_minus, grad_plus)
    updated = jnp.where(factor > 0, updated, jnp.zeros_like(updated))
    if floor > 0:
        updated = jnp.maximum(updated, jnp.asarray(floor, updated.dtype))
    return updated


def data_log_model(data: Array, model: Array) -> Array:
    """Return ``Σ V log(model)`` over the entries where the data ``V`` are positive.

    ``data`` and ``model`` have the same shape (or are the same-length vectors
    of the stored entries of a sparse table). Entries with ``V = 0`` contribute
    zero. Where ``V > 0`` and the model is below ``tiny``, the model is taken as
    ``tiny``, a constant, so the gradient there is exactly zero instead of
    ``V / tiny`` (which overflows) times zero.
    """
    positive = data > 0
    clamped = model < tiny(model.dtype)
    safe_model = jnp.where(positive & ~clamped, model, 1.0)
    log_model = jnp.where(clamped, jnp.log(tiny(model.dtype)), jnp.log(safe_model))
    return jnp.sum(jnp.where(positive, data * log_model, 0.0))


def xlogx(data: Array) -> Array:
    """Return ``Σ V log V`` with ``0 log 0 = 0``."""
    positive = data > 0
    safe = jnp.where(positive, data, 1.0)
    return jnp.sum(jnp.where(positive, data * jnp.log(safe), 0.0))
