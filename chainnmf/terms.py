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

import contextlib
import contextvars
import dataclasses
import inspect
import string
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
from jax import Array
from jax.experimental import sparse as jsparse

from chainnmf.sparse import SparseMatrix, as_operand, diagonal_sum, inner, is_sparse

__all__ = ["Loss", "Term", "product", "shared_products", "total", "trace"]

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


# Products of the same two operands, while a group of terms is evaluated.
_SHARED_PRODUCTS: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "chainnmf_shared_products", default=None
)


@contextlib.contextmanager
def shared_products():
    """Let the terms evaluated inside share their products of equal operands.

    Inside the block, :func:`product` returns the same traced array for the
    same operands, so reverse-mode autodiff adds up the cotangents of all its
    uses before one transposed product. For a chain, ``‖X − W H‖²`` and
    ``‖Y − Xᵀ W H2‖²`` both use ``Wᵀ X``, and the gradient with respect to
    ``W`` then costs one product with ``X`` instead of one per term.
    :func:`chainnmf.mu.split_gradient` evaluates each sign group inside it.
    """
    token = _SHARED_PRODUCTS.set({})
    try:
        yield
    finally:
        _SHARED_PRODUCTS.reset(token)


def product(left, right, *, transpose_left: bool = False) -> Array:
    """Return ``op(left) @ right``, with ``op`` a transpose when ``transpose_left``.

    Inside :func:`shared_products` the result is reused for the same two
    operand objects (compared by identity, so only within one trace).
    """
    cache = _SHARED_PRODUCTS.get()
    key = (id(left), id(right), transpose_left)
    if cache is not None and key in cache:
        return cache[key][0]
    result = (left.T if transpose_left else left) @ right
    if cache is not None:
        # Keeping the operands alive keeps their ids from being reused.
        cache[key] = (result, left, right)
    return result


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


def _operand(matrix):
    """Return ``matrix`` as a JAX array, a BCOO array or a SparseMatrix."""
    if isinstance(matrix, SparseMatrix | jsparse.BCOO):
        return matrix
    if isinstance(matrix, jsparse.BCSR):
        return matrix.to_bcoo()
    if is_sparse(matrix):
        return as_operand(matrix)
    return jnp.asarray(matrix)


def _sum_axis(array, axis: int):
    """Sum a matrix over one axis; sparse matrices through a product with ones."""
    if not is_sparse(array):
        return jnp.sum(array, axis=axis)
    ones = jnp.ones(array.shape[axis], array.dtype)
    return ones @ array if axis == 0 else array @ ones


def _sum_out(array, labels: str, drop: str):
    """Sum ``array`` over the axes whose labels are in ``drop``."""
    if not drop:
        return array, labels
    if len(drop) == len(labels):
        if is_sparse(array):
            return jnp.sum(array.data), ""
        return jnp.sum(array), ""
    axis = labels.index(drop)
    return _sum_axis(array, axis), labels.replace(drop, "")


def _reduce_single(array, labels: str, keep: str):
    """Contract a lone operand: a diagonal (``"aa"``) or a sum over free axes."""
    if len(labels) == 2 and labels[0] == labels[1]:
        if labels[0] in keep:
            raise NotImplementedError("a diagonal kept for later is not supported")
        if is_sparse(array):
            return diagonal_sum(array), ""
        return jnp.trace(array), ""
    drop = "".join(label for label in labels if label not in keep)
    return _sum_out(array, labels, drop)


def _contract_pair(left, right, keep: str):
    """Contract two labelled operands with ``@``, keeping the labels in ``keep``.

    Labels found in one operand only, and not kept, are summed out first
    (a product with a vector of ones), so each product has one shared label.
    Two shared labels make an elementwise inner product.
    """
    (x, x_labels), (y, y_labels) = left, right
    x, x_labels = _sum_out(
        x, x_labels, "".join(a for a in x_labels if a not in y_labels + keep)
    )
    y, y_labels = _sum_out(
        y, y_labels, "".join(a for a in y_labels if a not in x_labels + keep)
    )
    shared = [label for label in x_labels if label in y_labels]

    if len(shared) == 2:
        if y_labels != x_labels:
            y = y.T
        if is_sparse(x) or is_sparse(y):
            return inner(x, y), ""
        return jnp.vdot(x, y), ""

    if len(shared) == 1:
        (label,) = shared
        if len(x_labels) == 2 and x_labels[0] == label:
            x, x_labels = x.T, x_labels[::-1]
        if len(y_labels) == 2 and y_labels[1] == label:
            y, y_labels = y.T, y_labels[::-1]
        labels = x_labels.replace(label, "") + y_labels.replace(label, "")
        if (
            len(labels) == 2
            and not (is_sparse(x) or is_sparse(y))
            and x.shape[0] > y.shape[1]
        ):
            # Compute a tall product as the transpose of a wide one. XLA's CPU
            # matmul is faster with the long side last, and tr(Xᵀ W H) and
            # tr(Hᵀ Wᵀ X) then share one product Wᵀ X that XLA computes once.
            return (y.T @ x.T).T, labels
        return x @ y, labels

    if is_sparse(x) or is_sparse(y):
        raise NotImplementedError(
            "an outer product with a sparse operand is not supported; write the "
            "product in an order where each step shares an index"
        )
    return jnp.tensordot(x, y, axes=0), x_labels + y_labels


def _contract(subscripts: str, matrices) -> Array:
    """Evaluate a scalar einsum pairwise, in the order ``jnp.einsum_path`` picks.

    Each step is a matrix product written with ``@``, so BCOO arrays and
    :class:`~chainnmf.sparse.SparseMatrix` operands work wherever a dense
    array does. The order is chosen from the shapes alone (opt_einsum's
    ``"optimal"`` search), as ``jnp.einsum`` would choose it.
    """
    operands = [_operand(matrix) for matrix in matrices]
    shapes = [jax.ShapeDtypeStruct(jnp.shape(x), jnp.float32) for x in operands]
    path, _ = jnp.einsum_path(subscripts, *shapes, optimize="optimal")
    labelled = list(zip(operands, subscripts.split("->")[0].split(",")))
    for positions in path:
        picked = [labelled[position] for position in positions]
        for position in sorted(positions, reverse=True):
            del labelled[position]
        keep = "".join(labels for _, labels in labelled)
        if len(picked) == 1:
            labelled.append(_reduce_single(*picked[0], keep))
        else:
            labelled.append(_contract_pair(picked[0], picked[1], keep))
    ((value, _),) = labelled
    return value


def trace(*matrices: Array) -> Array:
    """Return ``tr(M_1 M_2 … M_p)``, contracted in the cheapest order.

    The pairwise contraction order is the one ``jnp.einsum_path`` picks from
    the operand shapes with ``optimize="optimal"``, so ``trace(H.T, W.T, X,
    X.T, W, H)`` never forms the large ``X Xᵀ``. The same order serves the
    gradient. Each pairwise step is a product written with ``@``, so an
    operand may be a dense array, a scipy.sparse matrix (converted on the
    host, outside jit only), a ``jax.experimental.sparse`` BCOO array or a
    :class:`~chainnmf.sparse.SparseMatrix`. A sparse operand is only ever
    multiplied by dense vectors and matrices (or, for ``tr(AᵀB)`` of two
    operands, read at its stored entries).

    Args:
        matrices: ``M_i`` of shape ``(a_i, a_{i+1})`` with ``a_{p+1} = a_1``.
    """
    _check_matrices(matrices, "trace")
    first, last = jnp.shape(matrices[0]), jnp.shape(matrices[-1])
    if last[1] != first[0]:
        raise ValueError(
            f"trace: the product is not square: first operand {first}, last {last}"
        )
    return _contract(_cyclic_subscripts(len(matrices), True), matrices)


def total(*matrices: Array) -> Array:
    """Return ``1ᵀ M_1 M_2 … M_p 1``, the sum of all entries of the product.

    Contracted in the cheapest order, like :func:`trace`, and with the same
    operand types; for example ``total(W, H)`` costs ``(m + n) k`` instead of
    ``m n k``.

    Args:
        matrices: ``M_i`` of shape ``(a_i, a_{i+1})``.
    """
    _check_matrices(matrices, "total")
    return _contract(_cyclic_subscripts(len(matrices), False), matrices)
