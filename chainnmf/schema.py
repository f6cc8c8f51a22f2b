"""Linked tables as a tree rooted at the insertion point, and the loss they define.

A database is described as a tree of tables. The insertion point is the entity
type whose clusters are sought: the rows of the shared factor ``W`` (m x k). A
table without a parent has rows of that type (a multi-view table); a table
whose parent is ``P`` has the columns of ``P`` as its rows (a link). Each
table ``t`` has a path product

.. math::

    Z_t = W \\ \\text{(no parent)}, \\qquad Z_t = V_P^T Z_P \\ \\text{(parent } P)

of shape (rows of ``t``) x k, and is modeled as ``V_t ≈ Z_t H_t``. The joint
loss is ``Σ_t λ_t D_t(V_t ‖ Z_t H_t)``, with ``D_t`` the squared Frobenius
distance or the generalized KL divergence. A chain ``A → B → C`` gives the
loss ``‖V_A − W H_A‖² + ‖V_B − V_Aᵀ W H_B‖² + ‖V_C − V_Bᵀ V_Aᵀ W H_C‖²``; a
second child of the same parent is a branch.

The terms are built so that each iteration costs O(nnz · k): every data table
is multiplied only by thin k-column matrices, and no product of two data
tables is formed.

* Frobenius: ``‖V − Z H‖² = ‖V‖² − 2 tr(Hᵀ Zᵀ V) + tr((ZᵀZ)(H Hᵀ))``.
* Generalized KL: ``Σ V log V − Σ V − Σ V log(Z H) + (1ᵀ Z)(H 1)``; the
  logarithm is taken only where ``V > 0``.

Factors are named ``"W"`` and ``"H_<table name>"``; data tables by their names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from chainnmf import validation as validate
from chainnmf.numerics import data_log_model, default_dtype, xlogx
from chainnmf.sparse import SparseMatrix, as_operand, sampled_product
from chainnmf.terms import Loss, Term, product

__all__ = ["Model", "Table", "chain", "factor_name", "multiview", "vanilla"]

LOSSES = ("frobenius", "kl")
INSERTION_POINT = "W"


def factor_name(table: str) -> str:
    """Return the name of the factor ``H`` of ``table``: ``"H_<table>"``."""
    return f"H_{table}"


@dataclasses.dataclass(frozen=True)
class Table:
    """One data table of the tree.

    Attributes:
        name: a unique name; the table's factor is ``H_<name>``.
        data: the nonnegative table ``V`` (m x n), a NumPy or JAX array.
        parent: the table whose columns are this table's rows, or None when
            the rows are those of the insertion point ``W``.
        loss: ``"frobenius"`` or ``"kl"`` (generalized Kullback-Leibler).
        weight: the weight ``λ ≥ 0`` of this table's term.
    """

    name: str
    data: object
    parent: str | None = None
    loss: str = "frobenius"
    weight: float = 1.0


def _values(V):
    """Return the entries that carry ``V``'s value: the stored ones when sparse."""
    return V.data if isinstance(V, SparseMatrix) else V


def _path_product(W: Array, *links) -> Array:
    """Return ``Z = V_Lᵀ … V_1ᵀ W`` for links ``V_1 … V_L`` (root first).

    Each step is computed as ``(Zᵀ V)ᵀ``: XLA's CPU matmul produces the k x n
    result ``Zᵀ V`` about 2.5 times faster than the n x k result ``Vᵀ Z``
    (measured for a dense 4000 x 2000 table and k = 20, float32).
    """
    Z = W
    for link in links:
        Z = product(Z, as_operand(link), transpose_left=True).T
    return Z


def _frobenius_cross(W, H, *links_and_data):
    """``tr(Hᵀ Zᵀ V) = ⟨Zᵀ V, H⟩``: one product of the data with a k-column matrix."""
    *links, V = links_and_data
    Z = _path_product(W, *links)
    return jnp.vdot(product(Z, as_operand(V), transpose_left=True), H)


@jax.custom_jvp
def _gram(A: Array) -> Array:
    """Return ``A Aᵀ``, with a gradient ``(C + Cᵀ) A`` of one product, not two."""
    return A @ A.T


@_gram.defjvp
def _gram_tangent(primals, tangents):
    # Written as P + Pᵀ with P = dA Aᵀ, the tangent transposes to (C + Cᵀ) A.
    (A,), (tangent,) = primals, tangents
    half = tangent @ A.T
    return A @ A.T, half + half.T


def _frobenius_gram(W, H, *links):
    """``tr((ZᵀZ)(H Hᵀ))``: two k x k Gram matrices."""
    Z = _path_product(W, *links)
    return jnp.vdot(_gram(Z.T), _gram(H))


def _squared_norm(V):
    """``‖V‖²`` from the stored values, constant in the factors."""
    values = _values(as_operand(V))
    return jnp.vdot(values, values)


def _kl_model_sum(W, H, *links):
    """``Σ Z H = (1ᵀ Z)(H 1)``."""
    Z = _path_product(W, *links)
    return jnp.dot(jnp.sum(Z, axis=0), jnp.sum(H, axis=1))


def _kl_data_log_model(W, H, *links_and_data):
    """``Σ V log(Z H)`` over the positive entries of ``V``.

    For a sparse ``V`` the model is evaluated at the stored entries only, in
    O(nnz · k) (:func:`chainnmf.sparse.sampled_product`).
    """
    *links, V = links_and_data
    V = as_operand(V)
    Z = _path_product(W, *links)
    if isinstance(V, SparseMatrix):
        return data_log_model(V.data, sampled_product(V, Z, H))
    return data_log_model(V, Z @ H)


def _kl_constant(V):
    """``Σ V log V − Σ V`` from the stored values, constant in the factors."""
    values = _values(as_operand(V))
    return xlogx(values) - jnp.sum(values)


def _mean(V) -> Array:
    """Return the mean of every entry of ``V`` (stored or not)."""
    rows, columns = V.shape
    return jnp.sum(_values(V)) / max(rows * columns, 1)


def _draw_random_start(key, data, *, plan, roots, rank, rows, dtype):
    """Draw the start that :meth:`Model.init` documents, in one compiled call.

    Args:
        key: a ``jax.random`` key.
        data: the converted tables by name.
        plan: ``(name, ancestors, columns)`` of every table, in model order.
        roots: the names of the tables without a parent.
        rank: ``k``.
        rows: the rows of ``W``.
        dtype: the floating dtype of the factors.
    """
    # The mean over every table without a parent, so one all-zero view does
    # not zero W.
    root_mean = sum(_mean(data[name]) for name in roots) / len(roots)
    scale_w = jnp.sqrt(root_mean / rank)
    W = jax.random.uniform(jax.random.fold_in(key, 0), (rows, rank), dtype)
    factors = {INSERTION_POINT: W * scale_w}
    for index, (name, ancestors, columns) in enumerate(plan, start=1):
        Z = _path_product(factors[INSERTION_POINT], *(data[a] for a in ancestors))
        mean_z = jnp.sum(Z) / max(Z.size, 1)
        mean_v = _mean(data[name])
        # Where Z is all zero (an empty or all-zero parent) H_t cannot reach
        # the data, so it gets the scale of a table without a parent.
        scale_h = jnp.where(
            mean_z > 0,
            2 * mean_v / (rank * jnp.where(mean_z > 0, mean_z, 1)),
            jnp.sqrt(mean_v / rank),
        )
        draw = jax.random.uniform(
            jax.random.fold_in(key, index), (rank, columns), dtype
        )
        factors[factor_name(name)] = draw * scale_h
    return factors


# Compiled once per model structure: drawing op by op compiled each random
# draw and product separately, which took seconds for a small tree.
_random_start = jax.jit(
    _draw_random_start, static_argnames=("plan", "roots", "rank", "rows", "dtype")
)


@dataclasses.dataclass(frozen=True)
class _ClampedObjective:
    """``Σ_t λ_t max(D_t, 0)``: each table's terms summed, clamped, weighted.

    It keeps terms and weights but no data, and compares by value, so models
    of the same structure share one compiled fit and a cached fit does not
    keep a model's tables alive.

    Attributes:
        tables: ``(name, λ_t, terms of D_t at unit weight)`` per table.
    """

    tables: tuple[tuple[str, float, tuple[Term, ...]], ...]

    def divergences(self, factors, data) -> dict[str, Array]:
        """Return ``max(D_t, 0)`` per table name."""
        values = {**data, **factors}
        return {
            name: jnp.maximum(sum(term.evaluate(values) for term in terms), 0)
            for name, _, terms in self.tables
        }

    def __call__(self, factors, data) -> Array:
        divergences = self.divergences(factors, data)
        return sum(weight * divergences[name] for name, weight, _ in self.tables)


class Model:
    """A tree of linked tables factored with one shared ``W`` of rank ``k``.

    Args:
        tables: the tables; a parent must come before its children. Data may
            be dense arrays, scipy.sparse matrices or BCOO arrays, and are
            checked (not copied, not modified) by :mod:`chainnmf.validation`.
        rank: the number of components ``k``.

    Raises:
        TypeError: on an entry that is not a :class:`Table`, a rank that is
            not a whole number, or data that are not real numbers.
        ValueError: on a repeated or reserved name, an unknown parent, a
            table listed before its parent, an unknown loss, a negative or
            non-finite weight, a rank below 1, data with NaN, infinite or
            negative entries, or shapes that do not chain (the message names
            the table, the expected and the found shape).

    Warns:
        UserWarning: for integer or boolean tables, which are converted to
        floating, and for KL tables with positive entries in rows that no
        choice of factors can model. :mod:`chainnmf.validation` says what
        happens to empty tables and to all-zero rows and columns.
    """

    def __init__(self, tables: Sequence[Table], rank: int):
        self.tables = tuple(tables)
        self.rank = validate.check_rank(rank)
        self._validate()
        self.loss = Loss(
            tuple(
                term
                for table in self.tables
                for term in self._terms(table, float(table.weight))
            ),
            factors=(INSERTION_POINT, *(factor_name(t.name) for t in self.tables)),
            objective=_ClampedObjective(
                tuple(
                    (table.name, float(table.weight), self._terms(table, 1.0))
                    for table in self.tables
                )
            ),
        )

    # -- structure -----------------------------------------------------------

    def _validate(self) -> None:
        validate.check_model(self.tables, self.rank)

    def table(self, name: str) -> Table:
        """Return the table called ``name``."""
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(f"no table {name!r}; tables: {[t.name for t in self.tables]}")

    def path(self, name: str) -> tuple[str, ...]:
        """Return the ancestors of table ``name``, root side first."""
        ancestors = []
        parent = self.table(name).parent
        while parent is not None:
            ancestors.append(parent)
            parent = self.table(parent).parent
        return tuple(reversed(ancestors))

    @property
    def n_rows(self) -> int:
        """m, the number of rows of ``W``."""
        return next(np.shape(t.data)[0] for t in self.tables if t.parent is None)

    @property
    def data(self) -> dict[str, object]:
        """The data tables by name."""
        return {table.name: table.data for table in self.tables}

    # -- loss ----------------------------------------------------------------

    def _terms(self, table: Table, weight: float) -> tuple[Term, ...]:
        """Build the signed terms of one table, with weight ``weight``."""
        H = factor_name(table.name)
        links = self.path(table.name)
        label = table.name
        if table.loss == "frobenius":
            return (
                Term(_squared_norm, 1, weight, (label,), f"{label}: ‖V‖²"),
                Term(
                    _frobenius_cross,
                    -1,
                    2 * weight,
                    (INSERTION_POINT, H, *links, label),
                    f"{label}: tr(Hᵀ Zᵀ V)",
                ),
                Term(
                    _frobenius_gram,
                    1,
                    weight,
                    (INSERTION_POINT, H, *links),
                    f"{label}: tr(ZᵀZ H Hᵀ)",
                ),
            )
        return (
            Term(_kl_constant, 1, weight, (label,), f"{label}: Σ V log V − Σ V"),
            Term(
                _kl_data_log_model,
                -1,
                weight,
                (INSERTION_POINT, H, *links, label),
                f"{label}: Σ V log(Z H)",
            ),
            Term(
                _kl_model_sum,
                1,
                weight,
                (INSERTION_POINT, H, *links),
                f"{label}: Σ Z H",
            ),
        )

    def table_losses(
        self, factors: Mapping[str, Array], data: Mapping[str, Array] | None = None
    ) -> dict[str, Array]:
        """Return each table's unweighted divergence ``D_t(V_t ‖ Z_t H_t)``.

        Each value is clamped at zero, since round-off in the Gram form can
        push an exact fit slightly below it.
        """
        return self.loss.objective.divergences(
            factors, self.data if data is None else data
        )

    def objective(self, factors: Mapping[str, Array], data: Mapping[str, Array]):
        """Return ``Σ_t λ_t D_t``, each divergence clamped at zero."""
        return self.loss.objective(factors, data)

    # -- starts --------------------------------------------------------------

    def init(self, seed: int = 0, *, dtype=None) -> dict[str, Array]:
        """Return random nonnegative initial factors scaled to the data.

        ``W`` has entries ``U(0, 1) · sqrt(mean(V_r) / k)`` for the first table
        ``r`` without a parent. Each ``H_t`` has entries ``U(0, 1) · s_t`` with
        ``s_t = 2 mean(V_t) / (k · mean(Z_t))``, so the model ``Z_t H_t``
        starts at the mean of ``V_t``. The same seed gives the same factors.
        Means count every entry of a table, stored or not, and sparse tables
        are converted once (:func:`chainnmf.sparse.as_operand`), never
        densified.

        Args:
            seed: the seed of ``jax.random.key``.
            dtype: the floating dtype; float64 under JAX's x64 mode, else
                float32, by default.
        """
        dtype = default_dtype() if dtype is None else jnp.dtype(dtype)
        return self._draw_start(self._init_tables(dtype), seed, dtype)

    def init_restarts(self, seeds: Sequence[int], *, dtype=None) -> dict[str, Array]:
        """Stack :meth:`init` for each seed along a new first axis."""
        dtype = default_dtype() if dtype is None else jnp.dtype(dtype)
        data = self._init_tables(dtype)
        starts = [self._draw_start(data, seed, dtype) for seed in seeds]
        return {name: jnp.stack([s[name] for s in starts]) for name in starts[0]}

    def _init_tables(self, dtype) -> dict[str, object]:
        """Convert every table once, for :meth:`init` and :meth:`init_restarts`."""
        return {t.name: as_operand(t.data, dtype) for t in self.tables}

    def _draw_start(self, data, seed: int, dtype) -> dict[str, Array]:
        """Draw the start of :meth:`init` for one seed from converted tables."""
        plan = tuple(
            (table.name, self.path(table.name), np.shape(table.data)[1])
            for table in self.tables
        )
        roots = tuple(t.name for t in self.tables if t.parent is None)
        return _random_start(
            # The implementation is named so a global default cannot change it.
            jax.random.key(seed, impl="threefry2x32"),
            data,
            plan=plan,
            roots=roots,
            rank=self.rank,
            rows=self.n_rows,
            dtype=jnp.dtype(dtype),
        )

    def fit(self, seed: int | None = None, *, init=None, **options):
        """Fit the model from :meth:`init` (or from ``init``, a factor dict).

        Args:
            seed: the seed of :meth:`init`, a whole number in ``[0, 2**32)``;
                0 by default. Not allowed together with ``init``.
            init: initial factors by name, in place of :meth:`init`.
            options: those of :func:`chainnmf.fit.fit`. With ``resume=path``
                the fit continues from a checkpoint, and neither ``seed`` nor
                ``init`` may be given.
        """
        from chainnmf.fit import fit

        if options.get("resume") is not None:
            if seed is not None or init is not None:
                raise ValueError(
                    "pass resume without seed or init: a resumed fit starts from "
                    "the factors stored in the checkpoint"
                )
            return fit(self, None, **options)
        if init is not None:
            if seed is not None:
                raise ValueError(
                    "pass either seed or init, not both: the seed only draws the "
                    "start that init replaces"
                )
            return fit(self, init, **options)
        seed = validate.check_seed(0 if seed is None else seed)
        dtype = self._start_dtype(options.get("dtype"))
        factors = self.init(seed, dtype=dtype)
        self._check_drawn_start(factors, dtype, f"Model.init(seed={seed})", False)
        return fit(self, factors, **options)

    def fit_restarts(self, seeds: Sequence[int], **options):
        """Fit one start per seed at once (see :func:`chainnmf.fit.fit_restarts`)."""
        from chainnmf.fit import fit_restarts

        if isinstance(seeds, str) or not isinstance(seeds, Sequence) or not seeds:
            raise TypeError(
                f"seeds must be a non-empty sequence of seeds, such as [0, 1, 2], "
                f"got {seeds!r}"
            )
        seeds = [validate.check_seed(seed) for seed in seeds]
        dtype = self._start_dtype(options.get("dtype"))
        factors = self.init_restarts(seeds, dtype=dtype)
        self._check_drawn_start(factors, dtype, "Model.init_restarts", True)
        return fit_restarts(self, factors, **options)

    def _start_dtype(self, dtype):
        """Resolve the dtype of :meth:`init` and check that the tables fit in it."""
        dtype = validate.resolve_dtype(dtype)
        validate.check_range(dtype, {f"table {t.name!r}": t.data for t in self.tables})
        validate.check_magnitudes(self, dtype)
        return dtype

    def _check_drawn_start(self, factors, dtype, origin: str, batched: bool) -> None:
        """Check a start drawn by ``origin``, saying in the error where it came from."""
        try:
            validate.check_model_start(self, factors, batched=batched)
            validate.check_magnitudes(self, dtype, factors, batched=batched)
        except ValueError as error:
            raise ValueError(
                f"{origin} drew an invalid start for these tables, so pass a start "
                f"of your own as init: {error}"
            ) from error

    def resume(self, path, **options):
        """Continue a fit from the checkpoint file ``path``, and keep checkpointing.

        The settings, dtype and ``checkpoint_every`` stored in the file are
        used. ``options`` (those of :func:`chainnmf.fit.fit`) may change
        ``checkpoint``, ``checkpoint_every``, ``callback`` and ``chunk``; a
        different ``max_iter``, ``tol``, ``eval_every``, ``floor`` or dtype is
        rejected, so the resumed fit equals the uninterrupted one. The file
        must match this model and its data.
        """
        from chainnmf.checkpoint import read_record

        record = read_record(path)
        stored = {**record["settings"], "dtype": record["dtype"]}
        if record.get("checkpoint_every") is not None:
            stored["checkpoint"] = path
            stored["checkpoint_every"] = record["checkpoint_every"]
        return self.fit(resume=path, **{**stored, **options})


def vanilla(V, rank: int, *, loss: str = "frobenius", name: str = "V") -> Model:
    """Return the model ``V ≈ W H`` (one table)."""
    return Model([Table(name, V, loss=loss)], rank)


def multiview(
    tables: Mapping[str, object],
    rank: int,
    *,
    loss: str = "frobenius",
    weights: Mapping[str, float] | None = None,
) -> Model:
    """Return ``Σ_t λ_t D(V_t ‖ W H_t)``: tables that share the rows of ``W``."""
    weights = weights or {}
    return Model(
        [
            Table(name, V, loss=loss, weight=weights.get(name, 1.0))
            for name, V in tables.items()
        ],
        rank,
    )


def chain(
    tables: Sequence[object],
    rank: int,
    *,
    loss: str = "frobenius",
    weights: Sequence[float] | None = None,
    names: Sequence[str] | None = None,
) -> Model:
    """Return the chain ``V_1 → V_2 → …``: each table's rows are its parent's columns.

    Tables are named ``"A"``, ``"B"``, … unless ``names`` is given.
    """
    names = (
        list(names)
        if names is not None
        else [chr(ord("A") + i) for i in range(len(tables))]
    )
    weights = list(weights) if weights is not None else [1.0] * len(tables)
    if len(names) != len(tables) or len(weights) != len(tables):
        raise ValueError(
            f"chain: got {len(tables)} tables, {len(names)} names and "
            f"{len(weights)} weights; they must match"
        )
    return Model(
        [
            Table(name, V, parent=names[i - 1] if i else None, loss=loss, weight=w)
            for i, (name, V, w) in enumerate(zip(names, tables, weights))
        ],
        rank,
    )
