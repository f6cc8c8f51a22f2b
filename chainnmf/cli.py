"""The ``chainnmf`` command line: ``chainnmf news`` and ``chainnmf synthetic``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value >= 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _nonnegative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text}")
    return value


# Seeds key jax.random, whose keys repeat beyond 32 bits when x64 mode is off.
_SEED_LIMIT = 2**32
_MAX_SEEDS = 1000


def _seeds(text: str) -> tuple[int, ...]:
    """Parse ``4`` as seeds 0-3, or ``0,5,7`` as a list of seeds."""
    if "," not in text:
        count = _positive_int(text)
        if count > _MAX_SEEDS:
            raise argparse.ArgumentTypeError(
                f"expected at most {_MAX_SEEDS} seeds, got {count}"
            )
        return tuple(range(count))
    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a count or a comma-separated list of whole numbers, got {text!r}"
        ) from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be distinct, got {text!r}")
    outside = [seed for seed in seeds if not 0 <= seed < _SEED_LIMIT]
    if outside:
        raise argparse.ArgumentTypeError(
            f"seeds must be in [0, {_SEED_LIMIT}), got {outside}"
        )
    return seeds


def _add_common(
    parser: argparse.ArgumentParser,
    *,
    seeds: str,
    output: str,
    max_iter: int,
    tol: float,
) -> None:
    parser.add_argument(
        "--seeds",
        type=_seeds,
        default=_seeds(seeds),
        help=f"a number of seeds (0, 1, …) or a comma-separated list (default {seeds})",
    )
    parser.add_argument(
        "--max-iter",
        type=_positive_int,
        default=max_iter,
        help=f"maximum number of sweeps per fit (default {max_iter})",
    )
    parser.add_argument(
        "--tol",
        type=_nonnegative_float,
        default=tol,
        help="stop when the relative decrease of the loss between two evaluations "
        f"(every 10 sweeps) is below this (default {tol:g})",
    )
    parser.add_argument(
        "--precision",
        choices=("float32", "float64"),
        default="float32",
        help="floating-point precision of the fit (default float32; float64 turns "
        "on JAX's x64 mode)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(output),
        help=f"folder for the result files (default {output})",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="log only warnings, not progress"
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with the ``news`` and ``synthetic`` commands."""
    parser = argparse.ArgumentParser(
        prog="chainnmf",
        description="Nonnegative matrix factorization of linked tables by "
        "multiplicative updates.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    news = commands.add_parser(
        "news",
        help="authorship study: vanilla vs chained KL NMF on news articles",
        description="Cluster the NewsArticles documents (3,824 articles, 9 outlets) with "
        "vanilla KL NMF and with KL NMF chained to GloVe word vectors; report NMI "
        "and ARI against the outlet per seed, their mean and standard deviation, "
        "a paired t-test, and the top words of each cluster.",
    )
    news.add_argument(
        "--rank", type=_positive_int, default=9, help="number of clusters k (default 9)"
    )
    news.add_argument(
        "--vector-weight",
        type=_nonnegative_float,
        default=1.0,
        help="weight λ of the word-vector table in the chained loss (default 1.0)",
    )
    news.add_argument(
        "--vector-mode",
        choices=("split", "clip", "shift"),
        default="split",
        help="how negative GloVe entries become nonnegative: split each vector into "
        "its positive and negative parts (100 columns), clip at 0, or shift each "
        "column by its minimum (default split)",
    )
    news.add_argument(
        "--vector-loss",
        choices=("kl", "frobenius"),
        default="kl",
        help="divergence of the word-vector table (default kl)",
    )
    news.add_argument(
        "--vocabulary-size",
        type=_positive_int,
        default=5000,
        help="number of most frequent words kept (default 5000)",
    )
    news.add_argument(
        "--top-words",
        type=_positive_int,
        default=10,
        help="words listed per cluster (default 10)",
    )
    _add_common(news, seeds="4", output="results/news", max_iter=300, tol=1e-5)

    synthetic = commands.add_parser(
        "synthetic",
        help="planted-partition chain: each table alone vs chained",
        description="Generate the 630 x 350 → 350 x 1000 → 1000 x 20 chain with 7 "
        "planted groups per seed, and report the NMI of each table's rows clustered "
        "alone and through the chain (mean and standard deviation over seeds).",
    )
    synthetic.add_argument(
        "--loss",
        choices=("frobenius", "kl"),
        default="frobenius",
        help="divergence of every table (default frobenius)",
    )
    synthetic.add_argument(
        "--noise",
        type=_fraction,
        default=0.05,
        help="density of background 1s in the two binary tables (default 0.05)",
    )
    synthetic.add_argument(
        "--block-density",
        type=_fraction,
        default=None,
        help="density of the planted 1s inside each group's block (default 0.08)",
    )
    _add_common(
        synthetic, seeds="10", output="results/synthetic", max_iter=500, tol=1e-6
    )
    return parser


def _news(arguments) -> None:
    from chainnmf.experiments.news import NewsOptions, run_news
    from chainnmf.experiments.report import format_table

    options = NewsOptions(
        rank=arguments.rank,
        seeds=arguments.seeds,
        max_iter=arguments.max_iter,
        tol=arguments.tol,
        vector_weight=arguments.vector_weight,
        vector_mode=arguments.vector_mode,
        vector_loss=arguments.vector_loss,
        vocabulary_size=arguments.vocabulary_size,
        top_words=arguments.top_words,
        dtype=arguments.precision,
        output=arguments.output,
    )
    record = run_news(options)
    models = record["models"]
    seeds = [run["seed"] for run in models["vanilla"]["runs"]]
    header = [
        "model and metric",
        *(f"seed {s}" for s in seeds),
        "mean",
        "std",
        "paired p",
    ]
    rows = []
    for metric in ("nmi", "ari"):
        for name in ("chained", "vanilla"):
            model = models[name]
            p = record["paired_tests"][metric]["p"] if name == "chained" else ""
            rows.append(
                [
                    f"{name} {metric.upper()}",
                    *(run[metric] for run in model["runs"]),
                    model[metric]["mean"],
                    model[metric]["std"],
                    p,
                ]
            )
    data = record["data"]
    print(
        f"News authorship study: {data['documents']} documents x {data['words']} words, "
        f"{len(data['outlets'])} outlets, k = {options.rank}, vector weight "
        f"{options.vector_weight}, vectors '{options.vector_mode}'"
    )
    print(format_table(header, rows))
    print(
        "(paired p: two-sided paired t-test of chained against vanilla over the seeds)"
    )
    for name in ("vanilla", "chained"):
        model = models[name]
        print(
            f"\nTop words per cluster, {name} (seed {model['best_seed']}, the lowest "
            f"loss; {model['seconds_all_seeds']:.1f} s for all seeds):"
        )
        for cluster in model["clusters_of_best_run"]:
            print(
                f"  {cluster['cluster']} ({cluster['size']} docs, "
                f"{cluster['top_outlet_share']:.0%} {cluster['top_outlet']}): "
                + ", ".join(cluster["top_words"])
            )
    print("\nResults written to:")
    for label, path in record["files"].items():
        print(f"  {label}: {path}")


def _synthetic(arguments) -> None:
    from chainnmf.experiments.report import format_table
    from chainnmf.experiments.synthetic import (
        SyntheticOptions,
        run_synthetic,
        table_rows,
    )

    options = SyntheticOptions(
        seeds=arguments.seeds,
        loss=arguments.loss,
        max_iter=arguments.max_iter,
        tol=arguments.tol,
        noise=arguments.noise,
        block_density=arguments.block_density,
        dtype=arguments.precision,
        output=arguments.output,
    )
    record = run_synthetic(options)
    print(
        f"Planted-partition chain, {len(options.seeds)} seeds, {options.loss} loss, "
        f"block density {record['block_density']}, noise {options.noise}"
    )
    print(
        format_table(
            ["characteristic", "mean NMI", "stdev NMI", "linkages"], table_rows(record)
        )
    )
    for name, test in record["paired_tests"].items():
        print(
            f"paired t-test, {name}: difference {test['mean_difference']:+.3f}, p = {test['p']:.2g}"
        )
    print(f"\nResults written to: {record['files']['json']}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if arguments.quiet else logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # JAX logs its backend search at INFO; only chainnmf's progress is wanted.
    logging.getLogger("jax").setLevel(logging.WARNING)
    # Fail now rather than after the fits if the results cannot be written.
    try:
        arguments.output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        parser.error(
            f"cannot create the output folder {str(arguments.output)!r}: {error}"
        )
    if not os.access(arguments.output, os.W_OK):
        parser.error(f"the output folder {str(arguments.output)!r} is not writable")
    if arguments.precision == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)
    if arguments.command == "news":
        _news(arguments)
    else:
        _synthetic(arguments)
    return 0


if __name__ == "__main__":
    sys.exit(main())
