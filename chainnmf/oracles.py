"""Analytic multiplicative update rules of chained NMF, as dense NumPy references.

The rules are those of "Optimizing NMF Clustering Loss Functions Using
Relational Table Flow of Information for Hidden Knowledge Discovery"
(anonymous authors, under double-blind review). Equation numbers below are
that paper's. Each function returns ``{factor name: (numerator, denominator)}``
for the update ``θ ← θ ⊙ numerator / denominator``, with the factor names of
:mod:`chainnmf.schema`: ``"W"`` and ``"H_<table name>"``.

Relation to the engine: for a Frobenius table, :func:`chainnmf.split_gradient`
returns ``∇⁻ = 2 · numerator`` and ``∇⁺ = 2 · denominator``, because the
gradient of ``‖V − Z H‖²`` carries a factor 2 that cancels from the ratio. For
a KL table, ``∇⁻ = numerator`` and ``∇⁺ = denominator``.

These functions are oracles for tests, not a fast path. They form the dense
products of data tables exactly as the equations print them (``V_A V_B``,
``V_A V_Aᵀ`` and, in general, the m x m matrix ``M_t M_tᵀ``), so their memory
grows with the square of the table sizes. :class:`chainnmf.Model` builds terms
that never form these products. Every input is converted to a float64 NumPy
array (a SciPy sparse matrix is densified first), and every output is a
float64 NumPy array.

The paper prints some rules wrongly. :func:`tree_rules` and the literal
functions implement the corrected rules:

* Eqs 6-7 (vanilla KL) omit the ratio ``V / (W H)`` from the numerators.
* Eq 26 uses ``H_C`` in the term of ``V_D``, where the loss needs ``H_D``.
* Eq 27 omits ``W`` from the denominator terms of ``V_C`` and ``V_D`` (see
  :func:`chain_frobenius_eq27_as_printed`).
* The appendix code of the one-link Frobenius chain swaps the chained parts of
  the ``W`` numerator and denominator (see
  :func:`chain_frobenius_appendix_as_printed`). Eq 20 itself is right.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from chainnmf.schema import factor_name

__all__ = [
    "chain_frobenius_appendix_as_printed",
    "chain_frobenius_eq27_as_printed",
    "chain_frobenius_one_link",
    "chain_kl_one_link",
    "model_rules",
    "multiview_frobenius",
    "tree_rules",
    "vanilla_frobenius",
    "vanilla_kl",
]

LOSSES = ("frobenius", "kl")

Rules = dict[str, tuple[np.ndarray, np.ndarray]]


# -- input conversion and checks ------------------------------------------------


def _as_matrix(value, label: str) -> np.ndarray:
    """Convert ``value`` to a 2-D float64 NumPy array, densifying sparse input."""
    if hasattr(value, "toarray"):
        value = value.toarray()
    matrix = np.asarray(value, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"{label} must be a 2-D matrix, got shape {matrix.shape}")
    return matrix


def _expect_shape(label: str, matrix: np.ndarray, shape: tuple[int, int]) -> None:
    if matrix.shape != shape:
        raise ValueError(f"{label} must have shape {shape}, got {matrix.shape}")


def _kl_ratio(V: np.ndarray, model: np.ndarray) -> np.ndarray:
    """Return ``V / model``, with 0 wherever ``V`` is 0 (not ``0 / 0``).

    NOTE: where ``V > 0`` and the model is exactly 0, the ratio is infinite as
    in the rule, and a product with a zero coefficient then gives NaN. The
    engine instead raises such model entries to ``tiny`` (see
    :mod:`chainnmf.numerics`), so the two are not comparable there.
    """
    ratio = np.zeros_like(V)
    np.divide(V, model, out=ratio, where=V > 0)
    return ratio


def _check_one_link(V_A, V_B, W, H_A, H_B):
    """Convert the arguments of a one-link chain and check that their shapes chain."""
    V_A, V_B = _as_matrix(V_A, "V_A"), _as_matrix(V_B, "V_B")
    W, H_A, H_B = _as_matrix(W, "W"), _as_matrix(H_A, "H_A"), _as_matrix(H_B, "H_B")
    m, n_A = V_A.shape
    k = W.shape[1]
    _expect_shape("W", W, (m, k))
    _expect_shape("H_A", H_A, (k, n_A))
    _expect_shape("V_B (its rows are the columns of V_A)", V_B, (n_A, V_B.shape[1]))
    _expect_shape("H_B", H_B, (k, V_B.shape[1]))
    return V_A, V_B, W, H_A, H_B


# -- vanilla and multi-view ----------------------------------------------------


def vanilla_frobenius(V, W, H, *, name: str = "V") -> Rules:
    """Compute eqs 2-3, the rules of ``‖V − W H‖²``.

    .. math::

        W ← W ⊙ (V Hᵀ) / (W H Hᵀ), \\qquad H ← H ⊙ (Wᵀ V) / (Wᵀ W H)

    Args:
        V: the data, m x n.
        W: m x k.
        H: k x n.
        name: the table name, which gives the key ``"H_<name>"`` of ``H``'s rule.

    Returns:
        ``{"W": (V Hᵀ, W H Hᵀ), "H_<name>": (Wᵀ V, Wᵀ W H)}``, of shapes m x k
        and k x n.
    """
    V, W, H = _as_matrix(V, "V"), _as_matrix(W, "W"), _as_matrix(H, "H")
    m, n = V.shape
    k = W.shape[1]
    _expect_shape("W", W, (m, k))
    _expect_shape("H", H, (k, n))
    return {
        "W": (V @ H.T, W @ H @ H.T),
        factor_name(name): (W.T @ V, W.T @ W @ H),
    }


def vanilla_kl(V, W, H, *, name: str = "V") -> Rules:
    """Compute the corrected eqs 6-7, the rules of ``D(V ‖ W H)``.

    With ``D(V ‖ X) = Σ V log(V / X) − V + X`` (generalized KL), ``R = V / (W H)``
    (0 where ``V`` is 0) and ``1`` the all-ones m x n matrix:

    .. math::

        W ← W ⊙ (R Hᵀ) / (1 Hᵀ), \\qquad H ← H ⊙ (Wᵀ R) / (Wᵀ 1)

    Eqs 6-7 as printed read ``W ← W ⊙ V Hᵀ / (1 Hᵀ)`` and
    ``H ← H ⊙ Wᵀ V / (Wᵀ 1)``: they omit the ratio, using ``V`` where ``R``
    belongs.

    Args:
        V: the data, m x n, nonnegative.
        W: m x k.
        H: k x n.
        name: the table name, which gives the key ``"H_<name>"`` of ``H``'s rule.

    Returns:
        ``{"W": (R Hᵀ, 1 Hᵀ), "H_<name>": (Wᵀ R, Wᵀ 1)}``, of shapes m x k and
        k x n.
    """
    V, W, H = _as_matrix(V, "V"), _as_matrix(W, "W"), _as_matrix(H, "H")
    m, n = V.shape
    k = W.shape[1]
    _expect_shape("W", W, (m, k))
    _expect_shape("H", H, (k, n))
    R = _kl_ratio(V, W @ H)
    ones = np.ones_like(V)
    return {
        "W": (R @ H.T, ones @ H.T),
        factor_name(name): (W.T @ R, W.T @ ones),
    }


def multiview_frobenius(
    tables: Mapping[str, object], W, H: Mapping[str, object]
) -> Rules:
    """Compute eqs 13-17 (eqs 9-11 for two views), the rules of ``Σ_t ‖V_t − W H_t‖²``.

    .. math::

        W ← W ⊙ (Σ_t V_t H_tᵀ) / (Σ_t W H_t H_tᵀ), \\qquad
        H_t ← H_t ⊙ (Wᵀ V_t) / (Wᵀ W H_t)

    Args:
        tables: ``V_t`` (m x n_t) by table name.
        W: m x k.
        H: ``H_t`` (k x n_t) by table name, for every table.

    Returns:
        ``{"W": (…, …), "H_<t>": (Wᵀ V_t, Wᵀ W H_t), …}``. The ``W`` pair is
        m x k and each ``H_t`` pair is k x n_t.
    """
    if not tables:
        raise ValueError("multiview_frobenius needs at least one table, got none")
    W = _as_matrix(W, "W")
    m, k = W.shape
    numerator_W = np.zeros((m, k))
    denominator_W = np.zeros((m, k))
    rules = {}
    for name, V in tables.items():
        V = _as_matrix(V, f"table {name!r}")
        if name not in H:
            raise ValueError(
                f"H has no factor for table {name!r}. H must be keyed by table "
                f"name, got keys {list(H)}"
            )
        H_t = _as_matrix(H[name], f"H of table {name!r}")
        _expect_shape(f"table {name!r}", V, (m, V.shape[1]))
        _expect_shape(f"H of table {name!r}", H_t, (k, V.shape[1]))
        numerator_W += V @ H_t.T
        denominator_W += W @ H_t @ H_t.T
        rules[factor_name(name)] = (W.T @ V, W.T @ W @ H_t)
    return {"W": (numerator_W, denominator_W), **rules}


# -- one link, literally -------------------------------------------------------


def chain_frobenius_one_link(
    V_A, V_B, W, H_A, H_B, *, names: tuple[str, str] = ("A", "B")
) -> Rules:
    """Compute eqs 20-22, the rules of eq 19: ``‖V_A − W H_A‖² + ‖V_B − V_Aᵀ W H_B‖²``.

    .. math::

        W ← W ⊙ (V_A V_B H_Bᵀ + V_A H_Aᵀ) / (V_A V_Aᵀ W H_B H_Bᵀ + W H_A H_Aᵀ)

        H_A ← H_A ⊙ (Wᵀ V_A) / (Wᵀ W H_A)

        H_B ← H_B ⊙ (Wᵀ V_A V_B) / (Wᵀ V_A V_Aᵀ W H_B)

    Args:
        V_A: the root table, m x n_A.
        V_B: the linked table, n_A x n_B (its rows are the columns of ``V_A``).
        W: m x k.
        H_A: k x n_A.
        H_B: k x n_B.
        names: the names of the two tables, for the keys ``"H_<name>"``.

    Returns:
        The rules of ``W`` (m x k), ``H_A`` (k x n_A) and ``H_B`` (k x n_B).
    """
    V_A, V_B, W, H_A, H_B = _check_one_link(V_A, V_B, W, H_A, H_B)
    numerator_W = V_A @ V_B @ H_B.T + V_A @ H_A.T
    denominator_W = V_A @ V_A.T @ W @ H_B @ H_B.T + W @ H_A @ H_A.T
    return {
        "W": (numerator_W, denominator_W),
        factor_name(names[0]): (W.T @ V_A, W.T @ W @ H_A),
        factor_name(names[1]): (W.T @ V_A @ V_B, W.T @ V_A @ V_A.T @ W @ H_B),
    }


def chain_kl_one_link(
    V_A, V_B, W, H_A, H_B, *, names: tuple[str, str] = ("A", "B")
) -> Rules:
    """Compute eqs 23-25, the rules of ``D(V_A ‖ W H_A) + D(V_B ‖ V_Aᵀ W H_B)``.

    With ``R_A = V_A / (W H_A)`` and ``R_B = V_B / (V_Aᵀ W H_B)`` (0 where the
    data are 0), ``1_A`` the all-ones m x n_A matrix and ``1_B`` the all-ones
    n_A x n_B matrix:

    .. math::

        W ← W ⊙ (V_A R_B H_Bᵀ + R_A H_Aᵀ) / (1_A H_Aᵀ + V_A 1_B H_Bᵀ)

        H_A ← H_A ⊙ (Wᵀ R_A) / (Wᵀ 1_A)

        H_B ← H_B ⊙ (Wᵀ V_A R_B) / (Wᵀ V_A 1_B)

    Args:
        V_A: the root table, m x n_A, nonnegative.
        V_B: the linked table, n_A x n_B, nonnegative.
        W: m x k.
        H_A: k x n_A.
        H_B: k x n_B.
        names: the names of the two tables, for the keys ``"H_<name>"``.

    Returns:
        The rules of ``W`` (m x k), ``H_A`` (k x n_A) and ``H_B`` (k x n_B).
    """
    V_A, V_B, W, H_A, H_B = _check_one_link(V_A, V_B, W, H_A, H_B)
    R_A = _kl_ratio(V_A, W @ H_A)
    R_B = _kl_ratio(V_B, V_A.T @ W @ H_B)
    ones_A = np.ones_like(V_A)
    ones_B = np.ones_like(V_B)
    numerator_W = V_A @ R_B @ H_B.T + R_A @ H_A.T
    denominator_W = ones_A @ H_A.T + V_A @ ones_B @ H_B.T
    return {
        "W": (numerator_W, denominator_W),
        factor_name(names[0]): (W.T @ R_A, W.T @ ones_A),
        factor_name(names[1]): (W.T @ V_A @ R_B, W.T @ V_A @ ones_B),
    }


# -- any tree ------------------------------------------------------------------


def _per_table(value, tables: Mapping[str, np.ndarray], label: str) -> dict:
    """Expand a single setting, or check a mapping, into one entry per table."""
    if isinstance(value, Mapping):
        missing = [name for name in tables if name not in value]
        if missing:
            raise ValueError(f"{label} has no entry for table(s) {missing}")
        return {name: value[name] for name in tables}
    return {name: value for name in tables}


def _link_products(
    tables: Mapping[str, np.ndarray], parents: Mapping[str, str | None], m: int
) -> dict[str, np.ndarray]:
    """Return ``M_t = V_{a_1} V_{a_2} … V_{parent of t}`` for each table ``t``.

    ``a_1`` is the root of the path from the root to ``t``. ``M_t`` has shape
    m x (rows of ``V_t``), and ``M_root`` is the m x m identity. The parents
    must form a tree (see :func:`_check_tree`).
    """
    products: dict[str, np.ndarray] = {}

    def product_of(name: str) -> np.ndarray:
        if name not in products:
            parent = parents.get(name)
            if parent is None:
                products[name] = np.eye(m)
            else:
                products[name] = product_of(parent) @ tables[parent]
        return products[name]

    for name in tables:
        product_of(name)
    return products


def _check_tree(tables, parents, W, H) -> None:
    """Check that ``parents`` form a tree of known tables and that every shape chains."""
    m, k = W.shape
    unknown = [name for name in parents if name not in tables]
    if unknown:
        raise ValueError(f"parents has entries for unknown table(s) {unknown}")
    for name in tables:
        path = [name]
        while parents.get(path[-1]) is not None:
            parent = parents[path[-1]]
            if parent not in tables:
                raise ValueError(
                    f"table {path[-1]!r}: parent {parent!r} is not a table, "
                    f"tables: {list(tables)}"
                )
            if parent in path:
                cycle = " -> ".join([*path, parent])
                raise ValueError(f"parents form a cycle: {cycle}")
            path.append(parent)
    for name, V in tables.items():
        parent = parents.get(name)
        if parent is None:
            rows, source = m, "the rows of W"
        else:
            rows, source = tables[parent].shape[1], f"the columns of {parent!r}"
        if V.shape[0] != rows:
            raise ValueError(
                f"table {name!r} must have {rows} rows ({source}), got shape {V.shape}"
            )
        _expect_shape(f"H of table {name!r}", H[name], (k, V.shape[1]))


def tree_rules(
    tables: Mapping[str, object],
    parents: Mapping[str, str | None],
    W,
    H: Mapping[str, object],
    losses: str | Mapping[str, str] = "frobenius",
    weights: Mapping[str, float] | None = None,
    *,
    frobenius_scale: float = 1.0,
) -> Rules:
    """Compute the rules of a tree of linked tables (eqs 27-31 and 32, corrected).

    The loss is ``Σ_t λ_t D_t(V_t ‖ M_tᵀ W H_t)``, where ``M_t`` is the product
    of the tables on the path from the root to the parent of ``t``
    (``M_A = I``, ``M_B = V_A``, ``M_C = V_A V_B`` in the chain A → B → C, and
    ``M_E = V_A V_B`` for a branch E off B, eq 32). ``D_t`` is the squared
    Frobenius distance or the generalized KL divergence. With
    ``R_t = V_t / (M_tᵀ W H_t)`` (0 where ``V_t`` is 0) and ``1_t`` the
    all-ones matrix of ``V_t``'s shape, the table ``t`` contributes

    ========  ==========================  ===============================
    factor    Frobenius (× c λ_t)          KL (× λ_t)
    ========  ==========================  ===============================
    W num     ``M_t V_t H_tᵀ``             ``M_t R_t H_tᵀ``
    W den     ``M_t M_tᵀ W H_t H_tᵀ``      ``M_t 1_t H_tᵀ``
    H_t num   ``Wᵀ M_t V_t``               ``Wᵀ M_t R_t``
    H_t den   ``Wᵀ M_t M_tᵀ W H_t``        ``Wᵀ M_t 1_t``
    ========  ==========================  ===============================

    and the ``W`` rule sums the contributions of every table. ``c`` is
    ``frobenius_scale``. This corrects eq 27, which omits ``W`` from the
    denominator terms of ``V_C`` and ``V_D``, and eq 26, whose last term uses
    ``H_C`` for ``H_D``.

    With ``c = 1`` (the default) and every table Frobenius, these are the
    paper's rules, and the engine's ``(∇⁻, ∇⁺)`` are twice them. The factor 2
    of the Frobenius gradient cancels from the ratio only when every table is
    Frobenius. When a tree mixes Frobenius and KL tables, ``c = 1`` gives the
    update of a loss whose Frobenius terms are halved, and ``c = 2`` gives the
    update of ``Σ_t λ_t D_t``, with ``(numerator, denominator)`` equal to the
    engine's ``(∇⁻, ∇⁺)``.

    Args:
        tables: ``V_t`` by table name. A root table is m x n_t, and a child's
            rows are its parent's columns.
        parents: the parent of each table by name. A table that is missing or
            maps to None is a root: its rows are the rows of ``W``.
        W: m x k.
        H: ``H_t`` (k x n_t) by table name, for every table.
        losses: ``"frobenius"`` or ``"kl"`` for every table, or a mapping that
            gives one of them for each table.
        weights: ``λ_t ≥ 0`` by table name. A missing table has weight 1.
        frobenius_scale: ``c`` above.

    Returns:
        ``{"W": (numerator, denominator), "H_<t>": (…, …), …}`` with ``W``
        first and then the tables in the order of ``tables``. The ``W`` pair
        is m x k and each ``H_t`` pair is k x n_t.

    Raises:
        ValueError: on an unknown parent or loss, a cycle of parents, a
            negative or non-finite weight, a missing ``H_t``, or shapes that
            do not chain.
    """
    if not tables:
        raise ValueError("tree_rules needs at least one table, got none")
    tables = {name: _as_matrix(V, f"table {name!r}") for name, V in tables.items()}
    W = _as_matrix(W, "W")
    missing = [name for name in tables if name not in H]
    if missing:
        raise ValueError(
            f"H has no factor for table(s) {missing}. H must be keyed by table "
            f"name, got keys {list(H)}"
        )
    H = {name: _as_matrix(H[name], f"H of table {name!r}") for name in tables}
    losses = _per_table(losses, tables, "losses")
    weights = {name: (weights or {}).get(name, 1.0) for name in tables}
    for name in tables:
        if losses[name] not in LOSSES:
            raise ValueError(
                f"table {name!r}: loss must be one of {LOSSES}, got {losses[name]!r}"
            )
        if not (np.isfinite(weights[name]) and weights[name] >= 0):
            raise ValueError(
                f"table {name!r}: weight must be finite and >= 0, got {weights[name]!r}"
            )
    _check_tree(tables, parents, W, H)
    links = _link_products(tables, parents, W.shape[0])

    numerator_W = np.zeros_like(W)
    denominator_W = np.zeros_like(W)
    rules = {}
    for name, V in tables.items():
        M, H_t = links[name], H[name]
        if losses[name] == "frobenius":
            scale = frobenius_scale * weights[name]
            gram = M @ M.T  # m x m, the dense product that the engine avoids
            contribution_W = (M @ V @ H_t.T, gram @ W @ H_t @ H_t.T)
            contribution_H = (W.T @ M @ V, W.T @ gram @ W @ H_t)
        else:
            scale = weights[name]
            R = _kl_ratio(V, M.T @ W @ H_t)
            ones = np.ones_like(V)
            contribution_W = (M @ R @ H_t.T, M @ ones @ H_t.T)
            contribution_H = (W.T @ M @ R, W.T @ M @ ones)
        numerator_W += scale * contribution_W[0]
        denominator_W += scale * contribution_W[1]
        rules[factor_name(name)] = (
            scale * contribution_H[0],
            scale * contribution_H[1],
        )
    return {"W": (numerator_W, denominator_W), **rules}


def model_rules(
    model, factors: Mapping[str, object], *, frobenius_scale: float = 1.0
) -> Rules:
    """Compute :func:`tree_rules` for the tables, losses and weights of ``model``.

    Args:
        model: a :class:`chainnmf.Model`.
        factors: ``"W"`` and every ``"H_<table>"`` of the model, as returned
            by :meth:`chainnmf.Model.init`.
        frobenius_scale: as in :func:`tree_rules`.
    """
    return tree_rules(
        {table.name: table.data for table in model.tables},
        {table.name: table.parent for table in model.tables},
        factors["W"],
        {table.name: factors[factor_name(table.name)] for table in model.tables},
        {table.name: table.loss for table in model.tables},
        {table.name: float(table.weight) for table in model.tables},
        frobenius_scale=frobenius_scale,
    )


# -- rules as printed, kept to show their errors ------------------------------


def chain_frobenius_eq27_as_printed(
    tables: Sequence[object],
    W,
    H: Sequence[object],
    *,
    names: Sequence[str] | None = None,
) -> Rules:
    """Compute eq 27 as printed, with eqs 28-31, for the Frobenius chain A → B → ….

    Eq 27 prints the ``W`` rule of the chain as

    .. math::

        W ← W ⊙ \\frac{… + V_A V_B V_C H_Cᵀ + V_A V_B H_Bᵀ + V_A H_Aᵀ}
                     {… + V_A V_B V_Bᵀ V_Aᵀ H_C H_Cᵀ + V_A V_Aᵀ W H_B H_Bᵀ
                      + W H_A H_Aᵀ}

    The denominator terms of ``V_C`` and deeper tables lack the ``W`` that
    the gradient puts between ``M_tᵀ`` and ``H_t``. Without it ``M_t M_tᵀ``
    (m x m) multiplies ``H_t H_tᵀ`` (k x k), which is defined only when
    m = k. The numerator and the ``H_t`` rules (eqs 28-31) are correct and
    equal those of :func:`tree_rules`. For a chain of one or two tables the
    printed rule is also correct.

    Args:
        tables: ``V_A`` (m x n_A), ``V_B`` (n_A x n_B), … in chain order.
        W: m x k.
        H: ``H_A`` (k x n_A), ``H_B`` (k x n_B), … in chain order.
        names: the table names, by default ``"A"``, ``"B"``, ….

    Raises:
        ValueError: when shapes do not chain, or when the chain has three or
            more tables and m ≠ k, so the printed product is undefined.
    """
    if names is None:
        names = [chr(ord("A") + i) for i in range(len(tables))]
    if not (len(tables) == len(H) == len(names)) or not tables:
        raise ValueError(
            f"got {len(tables)} tables, {len(H)} H factors and {len(names)} "
            "names, but they must match and be at least one"
        )
    parents = {names[i]: names[i - 1] if i else None for i in range(len(names))}
    table_map = dict(zip(names, tables))
    factor_map = dict(zip(names, H))
    rules = tree_rules(table_map, parents, W, factor_map, "frobenius")

    W = _as_matrix(W, "W")
    m, k = W.shape
    if len(tables) >= 3 and m != k:
        raise ValueError(
            f"eq 27 as printed multiplies the {m} x {m} matrix M_C M_Cᵀ by the "
            f"{k} x {k} matrix H_C H_Cᵀ, which is defined only when m = k, but "
            f"W has shape {W.shape}. Use a root table with k rows to evaluate it."
        )
    links = _link_products(
        {name: _as_matrix(V, f"table {name!r}") for name, V in table_map.items()},
        parents,
        m,
    )
    denominator_W = np.zeros_like(W)
    for depth, name in enumerate(names):
        M = links[name]
        H_t = _as_matrix(factor_map[name], f"H of table {name!r}")
        if depth < 2:
            denominator_W += M @ M.T @ W @ H_t @ H_t.T
        else:
            denominator_W += M @ M.T @ H_t @ H_t.T  # W omitted, as printed
    rules["W"] = (rules["W"][0], denominator_W)
    return rules


def chain_frobenius_appendix_as_printed(
    V_A, V_B, W, H_A, H_B, *, names: tuple[str, str] = ("A", "B")
) -> Rules:
    """Compute the one-link Frobenius rules as the paper's appendix code has them.

    The code swaps the chained parts of the ``W`` numerator and denominator:

    .. math::

        W ← W ⊙ (V_A H_Aᵀ + V_A V_Aᵀ W H_B H_Bᵀ) / (W H_A H_Aᵀ + V_A V_B H_Bᵀ)

    where eq 20 (see :func:`chain_frobenius_one_link`) has ``V_A V_B H_Bᵀ`` in
    the numerator and ``V_A V_Aᵀ W H_B H_Bᵀ`` in the denominator. The rules of
    ``H_A`` and ``H_B`` in the code are correct and equal eqs 21-22.

    Args:
        V_A: the root table, m x n_A.
        V_B: the linked table, n_A x n_B.
        W: m x k.
        H_A: k x n_A.
        H_B: k x n_B.
        names: the names of the two tables, for the keys ``"H_<name>"``.
    """
    rules = chain_frobenius_one_link(V_A, V_B, W, H_A, H_B, names=names)
    V_A, V_B, W, H_A, H_B = _check_one_link(V_A, V_B, W, H_A, H_B)
    numerator_W = V_A @ H_A.T + V_A @ V_A.T @ W @ H_B @ H_B.T
    denominator_W = W @ H_A @ H_A.T + V_A @ V_B @ H_B.T
    rules["W"] = (numerator_W, denominator_W)
    return rules
