"""Cluster labels from factors, top features per cluster, and agreement scores.

The agreement scores are computed from the contingency table in NumPy:

* normalized mutual information with the arithmetic-mean normalization,
  ``NMI = I(a; b) / ((H(a) + H(b)) / 2)``, and 1 when both labelings have a
  single cluster;
* the adjusted Rand index of Hubert and Arabie,
  ``ARI = (Σ C(n_ij, 2) − E) / (½ (Σ C(a_i, 2) + Σ C(b_j, 2)) − E)`` with
  ``E = Σ C(a_i, 2) Σ C(b_j, 2) / C(n, 2)``.

Both match ``sklearn.metrics`` (their defaults), which the tests check.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["ari", "contingency", "labels", "nmi", "top_features"]


def labels(W) -> np.ndarray:
    """Return the cluster of each row: the index of its largest entry in ``W`` (m x k)."""
    return np.asarray(np.argmax(np.asarray(W), axis=1))


def top_features(H, names: Sequence[str], count: int = 10) -> list[list[str]]:
    """Return, for each component (row of ``H``, k x n), its ``count`` heaviest features."""
    H = np.asarray(H)
    if H.shape[1] != len(names):
        raise ValueError(
            f"H has {H.shape[1]} columns but {len(names)} feature names were given"
        )
    order = np.argsort(-H, axis=1, kind="stable")[:, :count]
    return [[names[j] for j in row] for row in order]


def contingency(a, b) -> np.ndarray:
    """Return the table of counts ``n_ij`` of items in cluster i of ``a`` and j of ``b``."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"labelings must be 1-D and of equal length, got shapes {a.shape} "
            f"and {b.shape}"
        )
    _, a_index = np.unique(a, return_inverse=True)
    _, b_index = np.unique(b, return_inverse=True)
    table = np.zeros((a_index.max() + 1, b_index.max() + 1), dtype=np.int64)
    np.add.at(table, (a_index, b_index), 1)
    return table


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-np.sum(p * np.log(p)))


def nmi(a, b) -> float:
    """Return the normalized mutual information of two labelings (arithmetic mean)."""
    table = contingency(a, b)
    n = table.sum()
    row, column = table.sum(axis=1), table.sum(axis=0)
    if len(row) == 1 and len(column) == 1:
        return 1.0
    nonzero = table > 0
    outer = np.outer(row, column)[nonzero]
    joint = table[nonzero]
    mutual = float(np.sum(joint / n * (np.log(joint * n) - np.log(outer))))
    normalizer = (_entropy(row) + _entropy(column)) / 2
    return 0.0 if normalizer == 0 else max(mutual, 0.0) / normalizer


def _pairs(counts) -> float:
    counts = np.asarray(counts, dtype=np.float64)
    return float(np.sum(counts * (counts - 1) / 2))


def ari(a, b) -> float:
    """Return the adjusted Rand index of two labelings."""
    table = contingency(a, b)
    n = table.sum()
    index = _pairs(table)
    row_pairs, column_pairs = _pairs(table.sum(axis=1)), _pairs(table.sum(axis=0))
    expected = row_pairs * column_pairs / _pairs([n]) if n > 1 else 0.0
    maximum = (row_pairs + column_pairs) / 2
    if maximum == expected:
        return 1.0
    return (index - expected) / (maximum - expected)
