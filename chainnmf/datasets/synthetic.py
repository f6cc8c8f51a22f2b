"""Planted-partition chain of three linked tables with known groups.

The layout follows the synthetic experiment (section 4.1) of "Optimizing NMF
Clustering Loss Functions Using Relational Table Flow of Information for Hidden
Knowledge Discovery" (anonymous authors, under double-blind review): hashtags x
locations (630 x 350), locations x words (350 x 1000) and words x word-vector features
(1000 x 20), with 7 planted groups shared by every entity type. The two binary
tables carry weak block structure, so a factorization of either one alone recovers
the groups poorly. Table 1 of that paper reports a mean NMI of 0.11 and 0.26 for
them. The word-vector table carries strong structure (NMI 0.90 there), so linking
it into the chain can help the other tables. That paper does not give its block
density or blob spread, so the defaults here come from the measurements noted below.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

TABLE_NAMES = ("hashtag_location", "location_word", "word_vector")
DEFAULT_SHAPES = ((630, 350), (350, 1000), (1000, 20))

# The defaults below were measured with scikit-learn 1.9.1: NMF(n_components=7,
# init="random", max_iter=500, random_state=seed) on one table, each row assigned to
# the argmax of W, NMI against the planted groups, seeds 0 to 19 for both the chain
# and NMF. At block_density 0.08 the mean NMI is 0.12 (std 0.03) for the hashtags of
# the hashtag x location table and 0.39 (std 0.09) for the locations of the location
# x word table. So each binary table alone is hard, yet its blocks are 2.5 times as
# dense as the background. The NMI rises steeply with the density. Runs of 5 to 10
# seeds gave 0.06 and 0.20 at 0.07, and 0.41 and 0.82 at 0.10.
DEFAULT_BLOCK_DENSITY = 0.08
# With 7 centers uniform in [0, 1]^20, blob_std 0.15 gives a mean NMI of 0.95
# (std 0.06, min 0.83) for the words of the word-vector table by the same method.
# At blob_std 0.05, where the blobs barely overlap, 10 seeds still gave 0.97, so part
# of the error comes from NMF local minima.
DEFAULT_BLOB_STD = 0.15
DEFAULT_CENTER_BOX = 1.0


@dataclass(frozen=True)
class PlantedChain:
    """Three linked tables with the planted group of every row.

    Attributes
    ----------
    tables : tuple of np.ndarray
        Dense float64 tables, in chain order: hashtags x locations (m0 x n0),
        locations x words (n0 x n1) and words x features (n1 x d).
    row_labels : tuple of np.ndarray
        Integer group of each row of each table, in ``0 .. n_groups - 1``: hashtags
        (m0,), locations (n0,) and words (n1,). The columns of a table share the
        labels of the rows of the next table.
    names : tuple of str
        Table names: ``("hashtag_location", "location_word", "word_vector")``.
    """

    tables: tuple[np.ndarray, ...]
    row_labels: tuple[np.ndarray, ...]
    names: tuple[str, ...]


def group_labels(n_items: int, n_groups: int) -> np.ndarray:
    """Split ``n_items`` items into ``n_groups`` contiguous groups of near-equal size.

    The sizes are those of ``np.array_split``: the first ``n_items % n_groups``
    groups get one item more than the rest.

    Returns
    -------
    np.ndarray
        Integer group of each item, shape (n_items,), non-decreasing.
    """
    sizes = [len(part) for part in np.array_split(np.arange(n_items), n_groups)]
    return np.repeat(np.arange(n_groups), sizes)


def planted_block_table(
    rng: np.random.Generator,
    row_labels: np.ndarray,
    column_labels: np.ndarray,
    noise: float,
    block_density: float,
) -> np.ndarray:
    """Draw a binary table with 1s on the diagonal blocks of the planted groups.

    Every cell is 1 with probability ``noise``. A cell whose row and column are in
    the same group is also set to 1 with probability ``block_density``, drawn
    independently, so its overall probability of being 1 is
    ``1 - (1 - noise) * (1 - block_density)``.

    Parameters
    ----------
    rng : np.random.Generator
        Source of randomness.
    row_labels : np.ndarray
        Group of each row, shape (m,).
    column_labels : np.ndarray
        Group of each column, shape (n,).
    noise, block_density : float
        Probabilities in [0, 1].

    Returns
    -------
    np.ndarray
        Float64 table of 0s and 1s, shape (m, n).
    """
    shape = (row_labels.size, column_labels.size)
    background = rng.random(shape) < noise
    in_block = row_labels[:, None] == column_labels[None, :]
    planted = in_block & (rng.random(shape) < block_density)
    return (background | planted).astype(np.float64)


def gaussian_blob_table(
    rng: np.random.Generator,
    row_labels: np.ndarray,
    n_features: int,
    blob_std: float,
    center_box: float,
) -> np.ndarray:
    """Draw one Gaussian blob per group and clip it at 0.

    Each group gets a center drawn uniformly from ``[0, center_box]`` in every
    feature. A row is its group's center plus independent ``N(0, blob_std**2)``
    noise per feature. Negative entries are then set to 0 so that the table is
    nonnegative. The clipping moves points near the origin and so changes their
    distribution a little.

    Parameters
    ----------
    rng : np.random.Generator
        Source of randomness.
    row_labels : np.ndarray
        Group of each row, shape (m,), in ``0 .. n_groups - 1``.
    n_features : int
        Number of columns d.
    blob_std : float
        Standard deviation of the noise around each center.
    center_box : float
        Upper bound of the uniform distribution of the centers.

    Returns
    -------
    np.ndarray
        Nonnegative float64 table, shape (m, d).
    """
    n_groups = int(row_labels.max()) + 1
    centers = rng.uniform(0.0, center_box, size=(n_groups, n_features))
    points = centers[row_labels] + rng.normal(
        0.0, blob_std, size=(row_labels.size, n_features)
    )
    return np.maximum(points, 0.0)


def _is_positive_int(value: object) -> bool:
    is_integer = isinstance(value, int | np.integer) and not isinstance(value, bool)
    return is_integer and value >= 1


def _validate_arguments(
    shapes: tuple[tuple[int, int], ...],
    n_groups: int,
    noise: float,
    block_density: float,
    blob_std: float,
    center_box: float,
) -> None:
    if len(shapes) != len(TABLE_NAMES):
        raise ValueError(
            f"shapes must contain {len(TABLE_NAMES)} (rows, columns) pairs, "
            f"one per table {TABLE_NAMES}, but found {len(shapes)}: {shapes!r}"
        )
    for index, shape in enumerate(shapes):
        if len(shape) != 2 or not all(_is_positive_int(size) for size in shape):
            raise ValueError(
                f"shapes[{index}] must be a pair of positive integers, "
                f"but found {shape!r}"
            )
    for index in range(len(shapes) - 1):
        if shapes[index][1] != shapes[index + 1][0]:
            raise ValueError(
                f"shapes must chain: the columns of shapes[{index}] must equal the "
                f"rows of shapes[{index + 1}], but found {shapes[index][1]} columns "
                f"and {shapes[index + 1][0]} rows"
            )
    # Every row count is labelled, and the columns of the binary tables are the rows
    # of the next table, so the smallest row count bounds the number of groups.
    min_rows = min(shape[0] for shape in shapes)
    if not _is_positive_int(n_groups) or n_groups > min_rows:
        raise ValueError(
            f"n_groups must be an int from 1 to the smallest row count {min_rows}, "
            f"but found {n_groups!r}"
        )
    for name, value in (("noise", noise), ("block_density", block_density)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], but found {value}")
    for name, value in (("blob_std", blob_std), ("center_box", center_box)):
        if not value >= 0.0:
            raise ValueError(f"{name} must be nonnegative, but found {value}")


def planted_chain(
    seed: int = 0,
    *,
    shapes: tuple[tuple[int, int], ...] = DEFAULT_SHAPES,
    n_groups: int = 7,
    noise: float = 0.05,
    block_density: float = DEFAULT_BLOCK_DENSITY,
    blob_std: float = DEFAULT_BLOB_STD,
    center_box: float = DEFAULT_CENTER_BOX,
) -> PlantedChain:
    """Generate the planted-partition chain of hashtags, locations and words.

    Each entity type (hashtags, locations, words) is split into ``n_groups``
    contiguous groups of near-equal size, as ``np.array_split`` splits. The first two
    tables are binary, with background 1s at density ``noise`` and extra 1s at
    density ``block_density`` where row and column are in the same group. The third
    table has one Gaussian blob per word group, clipped at 0.

    Parameters
    ----------
    seed : int
        Seed of ``np.random.default_rng``. Each table draws from its own child
        generator, so changing the parameters of one table leaves the others as
        they were.
    shapes : tuple of three (int, int) pairs
        Shapes (m0, n0), (n0, n1) and (n1, d) of the three tables. The columns of
        each table must equal the rows of the next.
    n_groups : int
        Number of planted groups, from 1 to the smallest row count.
    noise : float
        Probability in [0, 1] that a cell of a binary table is a background 1.
    block_density : float
        Probability in [0, 1] of an extra 1 in a cell whose row and column share a
        group. The default 0.08 leaves each binary table alone weakly structured.
    blob_std : float
        Standard deviation of the word vectors around their group's center.
    center_box : float
        Centers are drawn uniformly from ``[0, center_box]`` per feature.

    Returns
    -------
    PlantedChain
        The three tables and the planted group of every hashtag, location and word.

    Raises
    ------
    ValueError
        If the shapes do not chain, or an argument is out of its range.
    """
    shapes = tuple(tuple(shape) for shape in shapes)
    _validate_arguments(shapes, n_groups, noise, block_density, blob_std, center_box)

    (n_hashtags, n_locations), (_, n_words), (_, n_features) = shapes
    hashtag_labels = group_labels(n_hashtags, n_groups)
    location_labels = group_labels(n_locations, n_groups)
    word_labels = group_labels(n_words, n_groups)

    rng_a, rng_b, rng_c = np.random.default_rng(seed).spawn(3)
    tables = (
        planted_block_table(
            rng_a, hashtag_labels, location_labels, noise, block_density
        ),
        planted_block_table(rng_b, location_labels, word_labels, noise, block_density),
        gaussian_blob_table(rng_c, word_labels, n_features, blob_std, center_box),
    )
    logger.debug(
        "Generated planted chain with shapes %s, %d groups, seed %d",
        shapes,
        n_groups,
        seed,
    )
    return PlantedChain(
        tables=tables,
        row_labels=(hashtag_labels, location_labels, word_labels),
        names=TABLE_NAMES,
    )
