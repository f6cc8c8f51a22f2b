"""Synthetic tables and starts for the benchmark cases, drawn from fixed seeds.

Every table is float32 with entries uniform in ``[0, 1)``. Sparse tables
place their entries at uniformly random positions (duplicates summed), so
each row has about ``density · n`` entries. Starts follow scikit-learn's
random initialization scale: entries uniform in ``[0, 1)`` times
``sqrt(mean(V) / k)``, and the same start is given to every solver of a case.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

DTYPE = np.float32


@dataclasses.dataclass(frozen=True)
class Vanilla:
    """One table ``V`` (m x n) factored as ``W H`` with rank ``k``."""

    m: int
    n: int
    k: int
    density: float | None = None
    seed: int = 0

    @property
    def nnz(self) -> int:
        """Stored entries: every entry of a dense table, the drawn ones otherwise."""
        if self.density is None:
            return self.m * self.n
        return round(self.m * self.n * self.density)

    def table(self):
        """Return ``V``: a dense array, or a CSR matrix when ``density`` is set."""
        rng = np.random.default_rng(self.seed)
        if self.density is None:
            return rng.random((self.m, self.n), dtype=DTYPE)
        rows = rng.integers(0, self.m, self.nnz)
        columns = rng.integers(0, self.n, self.nnz)
        values = rng.random(self.nnz, dtype=DTYPE) + DTYPE(1e-3)
        table = sp.coo_matrix((values, (rows, columns)), shape=(self.m, self.n))
        return table.tocsr()

    def start(self, table) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(W, H)``, the start shared by every solver."""
        rng = np.random.default_rng(self.seed + 1)
        scale = np.sqrt(table.mean() / self.k)
        W = rng.random((self.m, self.k), dtype=DTYPE) * DTYPE(scale)
        H = rng.random((self.k, self.n), dtype=DTYPE) * DTYPE(scale)
        return W, H


@dataclasses.dataclass(frozen=True)
class Chain:
    """A chain ``X → Y``: ``X`` is m x a, ``Y`` is a x b, both dense.

    The loss is ``‖X − W H‖² + ‖Y − Xᵀ W H2‖²`` with ``W`` (m x k),
    ``H`` (k x a) and ``H2`` (k x b): the two-table chain of appendix A.2 of
    the paper named in :mod:`solvers`.
    """

    m: int
    a: int
    b: int
    k: int
    seed: int = 0

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(X, Y)``."""
        rng = np.random.default_rng(self.seed)
        X = rng.random((self.m, self.a), dtype=DTYPE)
        Y = rng.random((self.a, self.b), dtype=DTYPE)
        return X, Y

    def start(self, X, Y) -> dict[str, np.ndarray]:
        """Return ``{"W", "H", "H2"}``, scaled so each model starts near its table.

        ``W`` and ``H`` get scikit-learn's scale for ``X``; ``H2`` is scaled so
        that the mean of ``Xᵀ W H2`` equals the mean of ``Y``.
        """
        rng = np.random.default_rng(self.seed + 1)
        scale = np.sqrt(X.mean() / self.k)
        W = rng.random((self.m, self.k), dtype=DTYPE) * DTYPE(scale)
        H = rng.random((self.k, self.a), dtype=DTYPE) * DTYPE(scale)
        Z = X.T @ W
        H2 = rng.random((self.k, self.b), dtype=DTYPE)
        H2 *= DTYPE(Y.mean() / max((Z @ H2).mean(), np.finfo(DTYPE).tiny))
        return {"W": W, "H": H, "H2": H2}
