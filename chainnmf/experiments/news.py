"""The authorship study: vanilla KL NMF against chained KL NMF with word vectors.

The documents x words counts of the NewsArticles corpus (3,824 articles from
9 outlets) are factored with ``k`` components, once alone and once chained to
the words x GloVe-vectors table,

.. math::

    \\text{vanilla: } D(V_A ‖ W H_A), \\qquad
    \\text{chained: } D(V_A ‖ W H_A) + λ D(V_B ‖ V_A^T W H_B)

with ``D`` the generalized KL divergence and ``λ`` the weight of the vector
table. Each article's cluster is the argmax of its row of ``W``; clusters are
scored against the outlet by NMI and ARI, per seed, and the two models are
compared by a paired t-test over the seeds (the same seed gives both models
the same start of ``W`` and ``H_A``).
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from chainnmf.cluster import ari, labels, nmi, top_features
from chainnmf.experiments.report import environment, paired_test, summarize, write_json
from chainnmf.schema import Model, Table, factor_name

__all__ = ["NewsOptions", "run_news"]

logger = logging.getLogger(__name__)

DOCUMENTS = "documents"
VECTORS = "vectors"


@dataclasses.dataclass(frozen=True)
class NewsOptions:
    """Settings of the news study; see ``chainnmf news --help`` for each."""

    rank: int = 9
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    max_iter: int = 300
    tol: float = 1e-5
    vector_weight: float = 1.0
    vector_mode: str = "split"
    vector_loss: str = "kl"
    vocabulary_size: int = 5000
    top_words: int = 10
    dtype: str = "float32"
    output: Path = Path("results/news")


def _models(tables, options: NewsOptions) -> dict[str, Model]:
    counts = np.asarray(tables.counts.toarray(), dtype=np.float32)
    documents = Table(DOCUMENTS, counts, loss="kl")
    vectors = Table(
        VECTORS,
        tables.vectors,
        parent=DOCUMENTS,
        loss=options.vector_loss,
        weight=options.vector_weight,
    )
    return {
        "vanilla": Model([documents], options.rank),
        "chained": Model([documents, vectors], options.rank),
    }


def _fit(model: Model, options: NewsOptions):
    """Fit every seed at once and return the results and the wall time."""
    start = time.perf_counter()
    results = model.fit_restarts(
        list(options.seeds),
        max_iter=options.max_iter,
        tol=options.tol,
        dtype=jnp.dtype(options.dtype),
    )
    return results, time.perf_counter() - start


def _clusters(result, tables, options: NewsOptions) -> list[dict]:
    """Describe each cluster: size, top words and its most frequent outlet."""
    assigned = labels(result.factors["W"])
    words = top_features(
        result.factors[factor_name(DOCUMENTS)], tables.words, options.top_words
    )
    clusters = []
    for cluster in range(options.rank):
        members = tables.labels[assigned == cluster]
        if len(members):
            outlet = int(np.bincount(members).argmax())
            share = float(np.mean(members == outlet))
            name = tables.label_names[outlet]
        else:
            name, share = None, 0.0
        clusters.append(
            {
                "cluster": cluster,
                "size": len(members),
                "top_outlet": name,
                "top_outlet_share": share,
                "top_words": words[cluster],
            }
        )
    return clusters


def run_news(options: NewsOptions) -> dict:
    """Run the study and write its JSON, CSV and PNG files under ``options.output``.

    Returns:
        The JSON record: options, data shapes, every run's scores, loss,
        sweeps and status, the summaries, the paired tests, each model's
        clusters from its lowest-loss run, and the paths written.
    """
    from chainnmf.datasets.news import news_tables

    started = time.perf_counter()
    tables = news_tables(
        vocabulary_size=options.vocabulary_size, vector_mode=options.vector_mode
    )
    logger.info(
        "news data: %d documents x %d words, vectors %d x %d, %d outlets",
        *tables.counts.shape,
        *tables.vectors.shape,
        len(tables.label_names),
    )
    record = {
        "study": "news authorship: vanilla KL NMF vs chained KL NMF with GloVe vectors",
        "options": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in dataclasses.asdict(options).items()
        },
        "data": {
            "documents": int(tables.counts.shape[0]),
            "words": int(tables.counts.shape[1]),
            "vector_columns": int(tables.vectors.shape[1]),
            "counts_nonzeros": int(tables.counts.nnz),
            "outlets": list(tables.label_names),
        },
        "environment": environment(),
        "models": {},
    }
    all_labels = {}
    histories = {}
    for name, model in _models(tables, options).items():
        logger.info("fitting %s NMF for seeds %s", name, list(options.seeds))
        results, seconds = _fit(model, options)
        runs = []
        for seed, result in zip(options.seeds, results):
            assigned = labels(result.factors["W"])
            all_labels[f"{name}_seed{seed}"] = assigned
            runs.append(
                {
                    "seed": seed,
                    "nmi": nmi(tables.labels, assigned),
                    "ari": ari(tables.labels, assigned),
                    "loss": result.loss,
                    "sweeps": result.iterations,
                    "status": result.status.name,
                }
            )
        histories[name] = [(r.history_iterations, r.loss_history) for r in results]
        best = int(np.argmin([r.loss for r in results]))
        record["models"][name] = {
            "runs": runs,
            "nmi": summarize([r["nmi"] for r in runs]),
            "ari": summarize([r["ari"] for r in runs]),
            "seconds_all_seeds": seconds,
            "dtype": results[0].dtype,
            "clusters_of_best_run": _clusters(results[best], tables, options),
            "best_seed": options.seeds[best],
        }
    models = record["models"]
    record["paired_tests"] = {
        metric: paired_test(
            [r[metric] for r in models["vanilla"]["runs"]],
            [r[metric] for r in models["chained"]["runs"]],
        )
        for metric in ("nmi", "ari")
    }
    record["files"] = _write_files(
        options.output, record, tables, all_labels, histories
    )
    record["seconds_total"] = time.perf_counter() - started
    write_json(Path(record["files"]["json"]), record)
    return record


def _write_files(output: Path, record, tables, all_labels, histories) -> dict[str, str]:
    output.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": output / "news.json",
        "labels_csv": output / "news_labels.csv",
        "plot_png": output / "news.png",
    }
    with open(paths["labels_csv"], "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["article", "outlet", *all_labels])
        for row, article in enumerate(tables.document_indices):
            outlet = tables.label_names[tables.labels[row]]
            writer.writerow(
                [int(article), outlet, *(int(v[row]) for v in all_labels.values())]
            )
    _plot(paths["plot_png"], record, histories)
    return {key: str(path) for key, path in paths.items()}


def _plot(path: Path, record, histories) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 4))
    colors = {"vanilla": "tab:gray", "chained": "tab:blue"}
    for column, metric in enumerate(("nmi", "ari")):
        axis = axes[column]
        for offset, (name, model) in enumerate(record["models"].items()):
            seeds = [r["seed"] for r in model["runs"]]
            values = [r[metric] for r in model["runs"]]
            axis.plot(
                np.arange(len(seeds)) + 0.1 * offset,
                values,
                "o",
                color=colors[name],
                label=name,
            )
            axis.axhline(
                model[metric]["mean"], color=colors[name], linestyle="--", linewidth=1
            )
        axis.set_xticks(np.arange(len(seeds)), [str(s) for s in seeds])
        axis.set_xlabel("seed")
        axis.set_title(f"{metric.upper()} against the outlet")
        axis.legend()
    axis = axes[2]
    for name, runs in histories.items():
        for index, (sweeps, losses) in enumerate(runs):
            axis.plot(
                sweeps, losses, color=colors[name], label=name if index == 0 else None
            )
    axis.set_yscale("log")
    axis.set_xlabel("sweep")
    axis.set_title("loss (chained includes the vector table)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
