"""The planted-partition chain study: each table alone against the chain.

On the chain hashtags x locations (V_A) → locations x words (V_B) → words x
vector features (V_C) with 7 planted groups, the rows of each table are
clustered (argmax of ``W``) and scored by NMI against their groups:

* alone: vanilla NMF of V_C, of V_B and of V_A;
* chained: V_B → V_C (one link; ``W`` clusters the locations) and
  V_A → V_B → V_C (two links; ``W`` clusters the hashtags).

Each seed draws a new chain and a new start; the study reports the mean and
the standard deviation over seeds and paired t-tests of chained against alone.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import jax.numpy as jnp

from chainnmf.cluster import labels, nmi
from chainnmf.experiments.report import environment, paired_test, summarize, write_json
from chainnmf.schema import chain

__all__ = ["ROWS", "SyntheticOptions", "run_synthetic", "table_rows"]

logger = logging.getLogger(__name__)

# (label, tables of the model by index into the chain, links, labels to score)
ROWS = (
    ("Third/goal matrix alone", (2,), 0, 2),
    ("Second matrix alone", (1,), 0, 1),
    ("First matrix alone", (0,), 0, 0),
    ("Second matrix chained", (1, 2), 1, 1),
    ("First matrix chained", (0, 1, 2), 2, 0),
)


@dataclasses.dataclass(frozen=True)
class SyntheticOptions:
    """Settings of the synthetic study; see ``chainnmf synthetic --help``."""

    seeds: tuple[int, ...] = tuple(range(10))
    rank: int = 7
    loss: str = "frobenius"
    max_iter: int = 500
    tol: float = 1e-6
    noise: float = 0.05
    block_density: float | None = None
    dtype: str = "float32"
    output: Path = Path("results/synthetic")


def run_synthetic(options: SyntheticOptions) -> dict:
    """Run every row of the study for every seed and write ``synthetic.json``.

    Returns:
        The JSON record: options, each row's NMI per seed with its mean and
        standard deviation, and paired tests of each chained row against the
        same table alone.
    """
    from chainnmf.datasets.synthetic import DEFAULT_BLOCK_DENSITY, planted_chain

    started = time.perf_counter()
    if options.block_density is None:
        options = dataclasses.replace(options, block_density=DEFAULT_BLOCK_DENSITY)
    density = options.block_density
    scores = {label: [] for label, *_ in ROWS}
    for seed in options.seeds:
        planted = planted_chain(seed, noise=options.noise, block_density=density)
        for label, indices, _, scored in ROWS:
            model = chain(
                [planted.tables[i] for i in indices],
                options.rank,
                loss=options.loss,
                names=[planted.names[i] for i in indices],
            )
            result = model.fit(
                seed,
                max_iter=options.max_iter,
                tol=options.tol,
                dtype=jnp.dtype(options.dtype),
            )
            scores[label].append(
                nmi(planted.row_labels[scored], labels(result.factors["W"]))
            )
        logger.info(
            "seed %d: %s", seed, {k: round(v[-1], 3) for k, v in scores.items()}
        )
    rows = [
        {"row": label, "links": links, "nmi": scores[label], **summarize(scores[label])}
        for label, _, links, _ in ROWS
    ]
    record = {
        "study": "planted-partition chain (630 x 350, 350 x 1000, 1000 x 20; 7 groups)",
        "options": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in dataclasses.asdict(options).items()
        },
        "block_density": density,
        "rows": rows,
        "paired_tests": {
            "second: chained vs alone": paired_test(
                scores["Second matrix alone"], scores["Second matrix chained"]
            ),
            "first: chained vs alone": paired_test(
                scores["First matrix alone"], scores["First matrix chained"]
            ),
        },
        "environment": environment(),
        "seconds_total": time.perf_counter() - started,
    }
    path = options.output / "synthetic.json"
    record["files"] = {"json": str(path)}
    write_json(path, record)
    return record


def table_rows(record: dict) -> list[list[object]]:
    """Return the rows of the Table-1 layout: characteristic, mean, std, links."""
    return [[r["row"], r["mean"], r["std"], r["links"]] for r in record["rows"]]
