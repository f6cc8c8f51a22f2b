"""Multiplicative updates from the gradient split of a signed loss.

For a loss ``J = Σ_i s_i λ_i f_i`` (see :mod:`chainnmf.terms`), the update of
one factor block ``θ`` is

.. math::

    ∇⁺ = Σ_{s_i = +1} λ_i ∇_θ f_i, \\qquad
    ∇⁻ = Σ_{s_i = -1} λ_i ∇_θ f_i, \\qquad
    θ ← θ ⊙ ∇⁻ / ∇⁺

with one ``jax.grad`` per sign group. Terms marked ``split="elementwise"``
contribute ``max(g, 0)`` to ``∇⁺`` and ``max(-g, 0)`` to ``∇⁻``, where
``g = s λ ∇_θ f`` is the term's own gradient. The division follows the rule
of :mod:`chainnmf.numerics`.

A sweep updates the blocks one after another in ``Loss.factors`` order, each
from a fresh gradient at the factors updated so far. For Frobenius and
generalized-KL terms whose model is linear in the block with nonnegative
coefficients, each block update cannot increase the loss (the Lee-Seung
auxiliary-function argument).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import jax
import jax.numpy as jnp
from jax import Array

from chainnmf.numerics import multiplicative_update
from chainnmf.terms import Loss, Term, shared_products

__all__ = ["make_step", "mu_step", "split_gradient", "update_block"]


def _group_value(
    terms: tuple[Term, ...],
    block: str,
    theta: Array,
    factors: Mapping[str, Array],
    data: Mapping[str, Array],
) -> Array:
    """Sum ``λ f`` over ``terms`` with the factor ``block`` set to ``theta``.

    The terms share their products of equal operands (see
    :func:`chainnmf.terms.shared_products`), so their gradients do too.
    """
    values = {**data, **factors, block: theta}
    with shared_products():
        return sum(term.unsigned(values) for term in terms)


def split_gradient(
    loss: Loss,
    block: str,
    factors: Mapping[str, Array],
    data: Mapping[str, Array],
) -> tuple[Array, Array]:
    """Return ``(∇⁺, ∇⁻)``, the positive and negative parts of ``∇_θ J``.

    Args:
        loss: the joint loss.
        block: the name of the factor ``θ`` to differentiate with respect to.
        factors: every factor of ``loss`` by name.
        data: every data table of ``loss`` by name.

    Returns:
        Two nonnegative arrays of the shape of ``factors[block]``. Their
        difference is the gradient of the loss with respect to ``block``.
        A ``split="sign"`` group whose gradient has negative entries (a term
        declared with the wrong sign) is clipped at zero; use
        :func:`chainnmf.check.check_term_signs` to find such terms.
    """
    theta = factors[block]
    terms = loss.terms_of(block)
    grad_plus = jnp.zeros_like(theta)
    grad_minus = jnp.zeros_like(theta)

    # One gradient per sign group.
    for sign in (1, -1):
        group = tuple(t for t in terms if t.split == "sign" and t.sign == sign)
        if not group:
            continue
        value = functools.partial(
            _group_value, group, block, factors=factors, data=data
        )
        grad = jnp.maximum(jax.grad(value)(theta), 0)
        if sign == 1:
            grad_plus = grad_plus + grad
        else:
            grad_minus = grad_minus + grad

    # One gradient per elementwise term, split entry by entry.
    for term in terms:
        if term.split != "elementwise":
            continue
        value = functools.partial(
            _group_value, (term,), block, factors=factors, data=data
        )
        grad = term.sign * jax.grad(value)(theta)
        grad_plus = grad_plus + jnp.maximum(grad, 0)
        grad_minus = grad_minus + jnp.maximum(-grad, 0)

    return grad_plus, grad_minus


def update_block(
    loss: Loss,
    block: str,
    factors: Mapping[str, Array],
    data: Mapping[str, Array],
    *,
    floor: float = 0.0,
) -> dict[str, Array]:
    """Return ``factors`` with the block ``block`` replaced by its update.

    ``θ ← θ ⊙ ∇⁻ / ∇⁺`` (see :func:`chainnmf.numerics.multiplicative_update`
    for ``floor`` and the guard against small denominators).
    """
    grad_plus, grad_minus = split_gradient(loss, block, factors, data)
    updated = multiplicative_update(factors[block], grad_minus, grad_plus, floor)
    return {**factors, block: updated}


def mu_step(
    loss: Loss,
    factors: Mapping[str, Array],
    data: Mapping[str, Array],
    *,
    floor: float = 0.0,
) -> dict[str, Array]:
    """Run one sweep: update every block of ``loss.factors`` in order.

    Args:
        loss: the joint loss.
        factors: the current factors by name; not modified.
        data: the data tables by name.
        floor: the least value an updated entry may take (0 for none).

    Returns:
        A new dict of factors.
    """
    current = dict(factors)
    for block in loss.factors:
        current = update_block(loss, block, current, data, floor=floor)
    return current


def make_step(loss: Loss, *, floor: float = 0.0):
    """Return ``step(factors, data) -> factors``, one jitted sweep of ``loss``.

    The loss and ``floor`` are fixed when the step is built; the returned
    function compiles once per set of input shapes and dtypes.
    """
    return jax.jit(functools.partial(mu_step, loss, floor=floor))
