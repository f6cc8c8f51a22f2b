"""Signed loss terms, and trace and sum helpers that contract in the cheapest order.

A joint loss is written as a list of terms

.. math::

    J(θ) = Σ_i s_i λ_i f_i(θ, V)

where each ``f_i`` is a plain Python function whose parameter names are the
names of factors (``W``, ``H_A`` …) or data tables (``V_A`` …), ``s_i = ±1`` is
its sign and ``λ_i ≥ 0`` its weight. When every ``f_i`` is nondecreasing in
each factor on the nonnegative orthant (a trace or sum of products of
nonnegative matrices, or ``Σ V log(model)``), its gradient is nonnegative, and
the positive and negative parts of ``∇J`` are the gradients of the two sign
groups. A term whose gradient has no definite sign (such as ``Σ V log(V/WH)``
written as one function) is marked ``split="elementwise"``: its gradient is
split entry by entry instead.

Example, the Frobenius loss ``‖V − WH‖²`` written out::

    loss = Loss(
        [
            Term(lambda V: trace(V.T, V)),                  # constant
            Term(lambda V, W, H: trace(V.T, W, H), sign=-1, weight=2.0),
            Term(lambda W, H: trace(H.T, W.T, W, H)),
        ],
        factors=("W", "H"),
    )
"""

from __future__ import annotations

import dataclasses
import inspect
import string
from collections.abc import Callable, Mapping, Sequence

import jax.numpy as jnp
from jax import Array

__all__ = ["Loss", "Term", "total", "trace"]

_SPLITS = ("sign", "elementwise")


@dataclasses.dataclass(frozen=True)
class Term:
    """One signed, weighted term ``s λ f(args)`` of a joint loss.

    Attributes:
        fn: the function ``f``; it returns a scalar and takes one positional
            argument per name in ``args``.
        sign: ``+1`` or ``-1``; with ``split="sign"``, the term's gradient goes
            to ``∇⁺`` when the sign is ``+1`` and to ``∇⁻`` when it is ``-1``.
        weight: the nonnegative weight ``λ``.
        args: the factor and table names passed to ``fn``, in order. By default
            they are the parameter names of ``fn``.
        name: a label used in messages; by default the function's name.
        split: ``"sign"`` when ``f`` is nondecreasing in every factor on the
            nonnegative orthant, or ``"elementwise"`` to split the term's
            gradient entry by entry (one extra gradient per term).
    """

    fn: Callable[..., Array]
    sign: int = 1
    weight: float = 1.0
    args: tuple[str, ...] | None = None
    name: str | None = None
    split: str = "sign"

    def __post_init__(self):
        if not callable(self.fn):
            raise TypeError(f"Term fn must be callable, got {type(self.fn).__name__}")
        if self.sign not in (1, -1):
            raise ValueError(f"Term sign must be +1 or -1, got {self.sign!r}")
        weight = float(self.weight)
        if not (weight >= 0 and weight < float("inf")):
            raise ValueError(
                f"Term weight must be finite and >= 0, got {self.weight!r}"
            )
        if self.split not in _SPLITS:
            raise ValueError(f"Term split must be one of {_SPLITS}, got {self.split!r}")
        args = self.args
        if args is None:
            args = tuple(inspect.signature(self.fn).parameters)
        name = self.name or getattr(self.fn, "__name__", "term")
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "args", tuple(args))
        object.__setattr__(self, "name", name)

    def evaluate(self, values: Mapping[str, Array]) -> Array:
        """Return ``s λ f`` with the arguments looked up by name in ``values``."""
        return self.sign * self.unsigned(values)

    def unsigned(self, values: Mapping[str, Array]) -> Array:
        """Return ``λ f`` with the arguments looked up by name in ``values``."""
        return self.weight * self.fn(*(values[arg] for arg in self.args))


@dataclasses.dataclass(frozen=True)
class Loss:
    """A joint loss: signed terms and the factors they are minimized over.

    Attributes:
        terms: the terms; their sum is the loss.
        factors: factor names in the order a sweep updates them (``W`` first,
            then each ``H``). Every other name in the terms' ``args`` is data.
        objective: an optional function ``(factors, data) -> scalar`` reported
            in place of the sum of terms, for models that evaluate the loss in
            a safer form (for example clamped at zero against round-off).
    """

    terms: tuple[Term, ...]
    factors: tuple[str, ...]
    objective: Callable[[Mapping[str, Array], Mapping[str, Array]], Array] | None = None

    def __post_init__(self):
        terms = tuple(self.terms)
        factors = tuple(self.factors)
        if not terms:
            raise ValueError("Loss needs at least one term, got none")
        for term in terms:
            if not isinstance(term, Term):
                raise TypeError(
                    f"Loss terms must be Term instances, got {type(term).__name__}"
                )
        if len(set(factors)) != len(factors):
            raise ValueError(f"Loss factors must be distinct, got {factors}")
        used = {arg for term in terms for arg in term.args}
        unused = [name for name in factors if name not in used]
        if unused:
            raise ValueError(
                f"factor(s) {unused} appear in no term; every factor must be an "
                "argument of at least one term"
            )
        object.__setattr__(self, "terms", terms)
        object.__setattr__(self, "factors", factors)

    @property
    def data_names(self) -> tuple[str, ...]:
        """Names of the data arguments: every term argument that is not a factor."""
        names = []
        for term in self.terms:
            for arg in term.args:
                if arg not in self.factors and arg not in names:
                    names.append(arg)
        return tuple(names)

    def terms_of(self, factor: str) -> tuple[Term, ...]:
        """Return the terms that take ``factor`` as an argument."""
        return tuple(term for term in self.terms if factor in term.args)

    def value(self, factors: Mapping[str, Array], data: Mapping[str, Array]) -> Array:
        """Evaluate the loss (or its ``objective``) at ``factors`` on ``data``."""
        if self.objective is not None:
            return self.objective(factors, data)
        values = {**data, **factors}
        return sum(term.evaluate(values) for term in self.terms)


def _cyclic_subscripts(count: int, closed: bool) -> str:
    """Build einsum subscripts for a product of ``count`` matrices.

    With ``closed`` the last index wraps to the first (a trace); otherwise the
    two open ends are summed as well (a total).
    """
    letters = string.ascii_letters
    if count + 1 > len(letters):
        raise ValueError(f"at most {len(letters) - 1} matrices, got {count}")
    indices = [letters[i] for i in range(count + 1)]
    if closed:
        indices[count] = indices[0]
    operands = [indices[i] + indices[i + 1] for i in range(count)]
    return ",".join(operands) + "->"


def _check_matrices(matrices: Sequence[Array], what: str) -> None:
    if not matrices:
        raise ValueError(f"{what} needs at least one matrix, got none")
    for position, matrix in enumerate(matrices):
        if jnp.ndim(matrix) != 2:
            raise ValueError(
                f"{what}: operand {position} must be a matrix, got shape "
                f"{jnp.shape(matrix)}"
            )
    for position in range(len(matrices) - 1):
        left, right = jnp.shape(matrices[position]), jnp.shape(matrices[position + 1])
        if left[1] != right[0]:
            raise ValueError(
                f"{what}: operands {position} and {position + 1} do not chain: "
                f"shapes {left} and {right}"
            )


def trace(*matrices: Array) -> Array:
    """Return ``tr(M_1 M_2 … M_p)``, contracted in the cheapest order.

    The cyclic product is handed to ``jnp.einsum`` with ``optimize="optimal"``,
    which picks the pairwise contraction order from the operand shapes, so
    ``trace(H.T, W.T, X, X.T, W, H)`` never forms the large ``X Xᵀ``. The same
    order serves the gradient.

    Args:
        matrices: ``M_i`` of shape ``(a_i, a_{i+1})`` with ``a_{p+1} = a_1``.
    """
    _check_matrices(matrices, "trace")
    first, last = jnp.shape(matrices[0]), jnp.shape(matrices[-1])
    if last[1] != first[0]:
        raise ValueError(
            f"trace: the product is not square: first operand {first}, last {last}"
        )
    return jnp.einsum(
        _cyclic_subscripts(len(matrices), True), *matrices, optimize="optimal"
    )


def total(*matrices: Array) -> Array:
    """Return ``1ᵀ M_1 M_2 … M_p 1``, the sum of all entries of the product.

    Contracted in the cheapest order, like :func:`trace`; for example
    ``total(W, H)`` costs ``(m + n) k`` instead of ``m n k``.

    Args:
        matrices: ``M_i`` of shape ``(a_i, a_{i+1})``.
    """
    _check_matrices(matrices, "total")
    return jnp.einsum(
        _cyclic_subscripts(len(matrices), False), *matrices, optimize="optimal"
    )
