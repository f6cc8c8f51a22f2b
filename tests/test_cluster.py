"""Cluster labels and agreement scores, against scikit-learn's metrics."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from chainnmf import ari, labels, nmi, top_features


@pytest.mark.parametrize("clusters", [(2, 2), (3, 5), (7, 9)])
def test_scores_match_sklearn(rng, clusters):
    """NMI (arithmetic mean) and ARI equal scikit-learn's defaults."""
    a = rng.integers(0, clusters[0], 200)
    b = np.where(rng.random(200) < 0.6, a, rng.integers(0, clusters[1], 200))
    assert nmi(a, b) == pytest.approx(normalized_mutual_info_score(a, b), abs=1e-12)
    assert ari(a, b) == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)


def test_identical_labelings_score_one():
    """A labeling agrees perfectly with a relabeling of itself."""
    a = np.array([0, 0, 1, 1, 2, 2])
    b = np.array([5, 5, 3, 3, 9, 9])
    assert nmi(a, b) == pytest.approx(1.0)
    assert ari(a, b) == pytest.approx(1.0)


def test_single_cluster_edge_case():
    """Both labelings with one cluster: scikit-learn gives 1.0 for both scores."""
    a = np.zeros(5, dtype=int)
    assert nmi(a, a) == normalized_mutual_info_score(a, a)
    assert ari(a, a) == adjusted_rand_score(a, a)


def test_labels_are_row_argmax():
    """Each row's cluster is the column of its largest entry."""
    W = np.array([[0.1, 0.9], [0.7, 0.2], [0.3, 0.4]])
    np.testing.assert_array_equal(labels(W), [1, 0, 1])


def test_top_features_orders_by_weight():
    """The heaviest columns of each row of H come first."""
    H = np.array([[0.1, 0.5, 0.3], [0.9, 0.0, 0.2]])
    assert top_features(H, ["a", "b", "c"], 2) == [["b", "c"], ["a", "c"]]


def test_top_features_checks_names():
    """A names list of the wrong length is rejected with both counts."""
    with pytest.raises(ValueError, match="3 columns but 2 feature names"):
        top_features(np.ones((2, 3)), ["a", "b"])


def test_scores_reject_unequal_lengths():
    """Labelings of different lengths cannot be compared."""
    with pytest.raises(ValueError, match="equal length"):
        nmi([0, 1], [0, 1, 1])
