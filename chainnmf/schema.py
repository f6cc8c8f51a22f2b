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

from chainnmf.numerics import data_log_model, default_dtype, xlogx
from chainnmf.terms import Loss, Term

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


def _path_product(W: Array, *links: Array) -> Array:
    """Return ``Z = V_Lᵀ … V_1ᵀ W`` for links ``V_1 … V_L`` (root first)."""
    Z = W
    for link in links:
        Z = link.T @ Z
    return Z


def _frobenius_cross(W, H, *links_and_data):
    """``tr(Hᵀ Zᵀ V)``: one product of the data with a k-column matrix."""
    *links, V = links_and_data
    Z = _path_product(W, *links)
    return jnp.vdot(V.T @ Z, H.T)


def _frobenius_gram(W, H, *links):
    """``tr((ZᵀZ)(H Hᵀ))``: two k x k Gram matrices."""
    Z = _path_product(W, *links)
    return jnp.vdot(Z.T @ Z, H @ H.T)


def _squared_norm(V):
    """``‖V‖²``, constant in the factors."""
    return jnp.vdot(V, V)


def _kl_model_sum(W, H, *links):
    """``Σ Z H = (1ᵀ Z)(H 1)``."""
    Z = _path_product(W, *links)
    return jnp.dot(jnp.sum(Z, axis=0), jnp.sum(H, axis=1))


def _kl_data_log_model(W, H, *links_and_data):
    """``Σ V log(Z H)`` over the positive entries of ``V``."""
    *links, V = links_and_data
    Z = _path_product(W, *links)
    return data_log_model(V, Z @ H)


def _kl_constant(V):
    """``Σ V log V − Σ V``, constant in the factors."""
    return xlogx(V) - jnp.sum(V)


class Model:
    """A tree of linked tables factored with one shared ``W`` of rank ``k``.

    Args:
        tables: the tables; a parent must come before its children.
        rank: the number of components ``k``.

    Raises:
        ValueError: on a repeated or reserved name, an unknown parent, a
            table listed before its parent, an unknown loss, a negative or
            non-finite weight, a rank below 1, or shapes that do not chain
            (the message names the table, the expected and the found shape).
    """

    def __init__(self, tables: Sequence[Table], rank: int):
        self.tables = tuple(tables)
        self.rank = int(rank)
        self._validate()
        self.loss = Loss(
            tuple(
                term
                for table in self.tables
                for term in self._terms(table, float(table.weight))
            ),
            factors=(INSERTION_POINT, *(factor_name(t.name) for t in self.tables)),
            objective=self.objective,
        )

    # -- structure -----------------------------------------------------------

    def _validate(self) -> None:
        if isinstance(self.rank, bool) or self.rank < 1:
            raise ValueError(f"rank must be a whole number >= 1, got {self.rank!r}")
        if not self.tables:
            raise ValueError("a model needs at least one table, got none")
        seen: dict[str, Table] = {}
        root_rows = None
        for table in self.tables:
            if not isinstance(table, Table):
                raise TypeError(
                    f"tables must be Table instances, got {type(table).__name__}"
                )
            if table.name in seen:
                raise ValueError(f"table name {table.name!r} is used twice")
            if table.name == INSERTION_POINT or table.name.startswith("H_"):
                raise ValueError(
                    f"table name {table.name!r} is reserved for factors; choose "
                    "a name that is not 'W' and does not start with 'H_'"
                )
            if table.loss not in LOSSES:
                raise ValueError(
                    f"table {table.name!r}: loss must be one of {LOSSES}, got "
                    f"{table.loss!r}"
                )
            if not (float(table.weight) >= 0 and np.isfinite(table.weight)):
                raise ValueError(
                    f"table {table.name!r}: weight must be finite and >= 0, got "
                    f"{table.weight!r}"
                )
            shape = np.shape(table.data)
            if len(shape) != 2:
                raise ValueError(
                    f"table {table.name!r}: expected a 2-D table, got shape {shape}"
                )
            if table.parent is None:
                if root_rows is not None and shape[0] != root_rows[1]:
                    raise ValueError(
                        f"table {table.name!r} has no parent, so its rows must be "
                        f"those of W ({root_rows[1]}, from table {root_rows[0]!r}), "
                        f"got {shape[0]} rows"
                    )
                root_rows = root_rows or (table.name, shape[0])
            else:
                if table.parent not in seen:
                    raise ValueError(
                        f"table {table.name!r}: parent {table.parent!r} must be "
                        f"listed before it; tables so far: {list(seen)}"
                    )
                parent_columns = np.shape(seen[table.parent].data)[1]
                if shape[0] != parent_columns:
                    raise ValueError(
                        f"table {table.name!r} links to {table.parent!r}, so its "
                        f"rows must match the {parent_columns} columns of "
                        f"{table.parent!r}, got {shape[0]} rows"
                    )
            seen[table.name] = table
        if root_rows is None:
            raise ValueError(
                "at least one table must have parent=None: its rows are the rows of W"
            )

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
        data = self.data if data is None else data
        values = {**data, **factors}
        losses = {}
        for table in self.tables:
            terms = self._terms(table, 1.0)
            total = sum(term.evaluate(values) for term in terms)
            losses[table.name] = jnp.maximum(total, 0)
        return losses

    def objective(self, factors: Mapping[str, Array], data: Mapping[str, Array]):
        """Return ``Σ_t λ_t D_t``, each divergence clamped at zero."""
        losses = self.table_losses(factors, data)
        return sum(float(t.weight) * losses[t.name] for t in self.tables)

    # -- starts --------------------------------------------------------------

    def init(self, seed: int = 0, *, dtype=None) -> dict[str, Array]:
        """Return random nonnegative initial factors scaled to the data.

        ``W`` has entries ``U(0, 1) · sqrt(mean(V_r) / k)`` for the first table
        ``r`` without a parent. Each ``H_t`` has entries ``U(0, 1) · s_t`` with
        ``s_t = 2 mean(V_t) / (k · mean(Z_t))``, so the model ``Z_t H_t``
        starts at the mean of ``V_t``. The same seed gives the same factors.

        Args:
            seed: the seed of ``jax.random.key``.
            dtype: the floating dtype; float64 under JAX's x64 mode, else
                float32, by default.
        """
        dtype = default_dtype() if dtype is None else jnp.dtype(dtype)
        key = jax.random.key(seed)
        k = self.rank
        root = next(t for t in self.tables if t.parent is None)
        data = {t.name: jnp.asarray(t.data, dtype) for t in self.tables}
        scale_w = jnp.sqrt(jnp.mean(data[root.name]) / k)
        factors = {
            INSERTION_POINT: jax.random.uniform(
                jax.random.fold_in(key, 0), (self.n_rows, k), dtype
            )
            * scale_w
        }
        for index, table in enumerate(self.tables, start=1):
            links = [data[name] for name in self.path(table.name)]
            Z = _path_product(factors[INSERTION_POINT], *links)
            mean_z = jnp.maximum(jnp.mean(Z), jnp.finfo(dtype).tiny)
            scale_h = 2 * jnp.mean(data[table.name]) / (k * mean_z)
            shape = (k, np.shape(table.data)[1])
            draw = jax.random.uniform(jax.random.fold_in(key, index), shape, dtype)
            factors[factor_name(table.name)] = draw * scale_h
        return factors

    def init_restarts(self, seeds: Sequence[int], *, dtype=None) -> dict[str, Array]:
        """Stack :meth:`init` for each seed along a new first axis."""
        starts = [self.init(seed, dtype=dtype) for seed in seeds]
        return {name: jnp.stack([s[name] for s in starts]) for name in starts[0]}

    def fit(self, seed: int = 0, *, init=None, **options):
        """Fit the model from :meth:`init` (or from ``init``, a factor dict).

        ``options`` are those of :func:`chainnmf.fit.fit`.
        """
        from chainnmf.fit import fit

        factors = self.init(seed, dtype=options.get("dtype")) if init is None else init
        return fit(self.loss, factors, self.data, **options)

    def fit_restarts(self, seeds: Sequence[int], **options):
        """Fit one start per seed at once (see :func:`chainnmf.fit.fit_restarts`)."""
        from chainnmf.fit import fit_restarts

        factors = self.init_restarts(seeds, dtype=options.get("dtype"))
        return fit_restarts(self.loss, factors, self.data, **options)


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
