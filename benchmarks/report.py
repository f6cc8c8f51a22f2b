"""Turn the benchmark records into comparisons, target checks and Markdown."""

from __future__ import annotations

import math
from pathlib import Path

import cases as case_table

# (name, case, kind, threshold): what RESULTS.md checks. "ratio" is a time
# ratio baseline / chainnmf that must be at least the threshold, "at_most"
# a ratio chainnmf / analytic that must not exceed it.
TARGETS = [
    ("chain model within 1.15x of analytic JAX", "chain-paper", "overhead", 1.15),
    ("chain model within 1.15x of analytic JAX", "chain-large", "overhead", 1.15),
    ("trace terms within 1.15x of analytic JAX", "terms-paper", "overhead", 1.15),
    ("trace terms within 1.15x of analytic JAX", "terms-large", "overhead", 1.15),
    ("dense Frobenius >= 2x faster than scikit-learn", "dense-frobenius", "speedup", 2),
    ("dense Frobenius >= 70 % of matmul GFLOP/s", "dense-frobenius", "peak", 0.7),
    ("dense KL >= 4x faster than scikit-learn", "dense-kl", "speedup", 4),
    ("larger chain >= 35x faster than paper NumPy", "chain-large", "numpy", 35),
    (
        "sparse Frobenius >= 1.5x faster than scikit-learn",
        "sparse-frobenius",
        "speedup",
        1.5,
    ),
    ("sparse KL >= 3x faster than scikit-learn", "sparse-kl", "speedup", 3),
    ("sparse KL peak memory below scikit-learn's", "sparse-kl", "memory", 1),
    (
        "Frobenius time linear in nnz (slope 0.9-1.1)",
        "scaling-frobenius",
        "slope",
        None,
    ),
    ("KL time linear in nnz (slope 0.9-1.1)", "scaling-kl", "slope", None),
]


def describe_cases(selected) -> list[dict[str, object]]:
    """Return the JSON description of each case: problem, loss and work."""
    return [
        {
            "name": case.name,
            "group": case.group,
            "loss": case.loss,
            "problem": case_table.describe(case),
            "nnz": case_table.nnz(case),
            **case_table.work(case),
        }
        for case in selected
    ]


def _times(document) -> dict[tuple[str, str], dict]:
    return {(r["case"], r["solver"]): r for r in document["records"]}


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(time) against log(nnz)."""
    points = [(x, y) for x, y in points if x > 0 and y > 0]
    if len(points) < 2:
        return None
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread


def _line(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Least-squares ``(a, b)`` of ``time = a + b · nnz``."""
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    b = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return mean_y - b * mean_x, b


def summarize(document, selected) -> dict[str, object]:
    """Compute each case's ratios, the scaling slopes and the target checks."""
    records = _times(document)
    limits = document["limits"]
    described = {c["name"]: c for c in document["cases"]}
    comparisons = {}
    for case in selected:
        ours_name = case.solvers[0].name
        ours = records.get((case.name, ours_name))
        if ours is None or ours["per_iteration_s"] <= 0:
            continue
        seconds = ours["per_iteration_s"]
        entry = {
            "gflops": described[case.name]["flops"] / seconds / 1e9,
            "gbs": described[case.name]["bytes"] / seconds / 1e9,
        }
        entry["fraction_of_matmul"] = entry["gflops"] / limits["matmul_gflops"]
        entry["fraction_of_bandwidth"] = entry["gbs"] / limits["bandwidth_gbs"]
        for solver in case.solvers[1:]:
            other = records.get((case.name, solver.name))
            if other is not None and other["per_iteration_s"] > 0:
                entry[f"{solver.name}_over_ours"] = other["per_iteration_s"] / seconds
                if other.get("peak_rss_mib") and ours.get("peak_rss_mib"):
                    entry[f"{solver.name}_peak_over_ours"] = (
                        other["peak_rss_mib"] / ours["peak_rss_mib"]
                    )
        comparisons[case.name] = entry

    slopes, lines = {}, {}
    for loss in ("frobenius", "kl"):
        points = [
            (described[c.name]["nnz"], records[(c.name, "chainnmf")]["per_iteration_s"])
            for c in selected
            if c.group == "scaling"
            and c.loss == loss
            and (c.name, "chainnmf") in records
        ]
        slopes[loss] = _slope(points)
        lines[loss] = _line(points)
    return {
        "comparisons": comparisons,
        "slopes": slopes,
        "lines": lines,
        "targets": _check_targets(comparisons, slopes),
    }


def _check_targets(comparisons, slopes) -> list[dict[str, object]]:
    checks = []
    for name, case, kind, threshold in TARGETS:
        value = None
        if kind == "slope":
            value = slopes.get(case.split("-", 1)[1])
            met = value is not None and 0.9 <= value <= 1.1
        else:
            entry = comparisons.get(case, {})
            key = {
                "overhead": "analytic-jax_over_ours",
                "speedup": "scikit-learn_over_ours",
                "numpy": "paper-numpy_over_ours",
                "memory": "scikit-learn_peak_over_ours",
                "peak": "fraction_of_matmul",
            }[kind]
            value = entry.get(key)
            if value is not None and kind == "overhead":
                value = 1 / value
            if value is None:
                met = None
            elif kind == "overhead":
                met = value <= threshold
            elif kind == "memory":
                met = value > threshold
            else:
                met = value >= threshold
        checks.append({"target": name, "case": case, "value": value, "met": met})
    return checks


def _ms(record) -> str:
    return "—" if record is None else f"{1e3 * record['per_iteration_s']:.3f}"


def _mib(record) -> str:
    if record is None or record.get("peak_rss_mib") is None:
        return "—"
    return (
        f"{record['peak_rss_mib']:.0f} "
        f"(+{record['peak_rss_mib'] - record['rss_after_setup_mib']:.0f})"
    )


def _number(value, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _header(document) -> list[str]:
    """Return the title, the command, the machine, its limits and the method."""
    machine, limits = document["machine"], document["limits"]
    versions = ", ".join(f"{k} {v}" for k, v in document["versions"].items())
    return [
        "# chainnmf benchmarks",
        "",
        f"Command: `{document['command']}`, started {document['date']}.",
        "",
        (
            f"Machine: {machine['processor']}, {machine['cores']} cores, "
            f"{machine['memory_gib']} GiB, device {machine['device']}; "
            f"load average {document['load_average_before'][0]:.2f} before and "
            f"{document['load_average_after'][0]:.2f} after the run. {versions}."
        ),
        "",
        (
            f"Limits measured in the same run: float32 matmul "
            f"{limits['matmul_gflops']:.0f} GFLOP/s in JAX "
            f"({limits['matmul_size']}² operands), memory bandwidth "
            f"{limits['bandwidth_gbs']:.1f} GB/s (jitted `x + 1` over "
            f"{limits['bandwidth_mib']} MiB, read plus write; XLA runs it on "
            "one thread on the CPU, so a matmul that reads with every core can "
            "exceed it)."
        ),
        "",
        "Times are per iteration (one update of every factor), float32. For",
        "chainnmf, the fastest interval between progress callbacks of one fit;",
        "for the others, the slope between a short and a long run (fastest of",
        "interleaved repeats). Both leave out what a call pays once; compile",
        "time is reported apart. Peak memory is the resident set of a process",
        "that ran only that solver, in MiB, with its growth after the data and",
        "start were in memory in brackets (for chainnmf this includes XLA's",
        "compilation). GFLOP/s and GB/s count the products and the table reads",
        "of the analytic updates, so they compare solvers on equal work.",
        "",
    ]


def _percent(entry, key: str) -> str:
    return _number(100 * entry[key] if key in entry else None, 0)


def _vanilla_table(cases, records, comparisons) -> list[str]:
    """Return the table of chainnmf against scikit-learn."""
    lines = [
        "## Vanilla NMF against scikit-learn's MU solver",
        "",
        (
            "| case | problem | chainnmf ms | compile s | scikit-learn ms | "
            "speedup | chainnmf MiB | scikit-learn MiB | GFLOP/s (of matmul) "
            "| GB/s (of bandwidth) |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for case in cases:
        ours = records.get((case["name"], "chainnmf"))
        theirs = records.get((case["name"], "scikit-learn"))
        entry = comparisons.get(case["name"], {})
        lines.append(
            f"| {case['name']} | {case['problem']} | {_ms(ours)} | "
            f"{_number(ours and ours['compile_s'], 1)} | {_ms(theirs)} | "
            f"{_number(entry.get('scikit-learn_over_ours'))}x | {_mib(ours)} | "
            f"{_mib(theirs)} | {_number(entry.get('gflops'), 0)} "
            f"({_percent(entry, 'fraction_of_matmul')} %) | "
            f"{_number(entry.get('gbs'), 1)} "
            f"({_percent(entry, 'fraction_of_bandwidth')} %) |"
        )
    return [*lines, ""]


def _versus_table(title, columns, cases, records, comparisons) -> list[str]:
    """Return a table of one solver against the analytic updates and a third.

    ``columns`` names the solver, the baseline that is slower by design and
    their column titles: ``(ours, ours_title, slow, slow_title)``.
    """
    ours_name, ours_title, slow_name, slow_title = columns
    lines = [
        title,
        "",
        (
            f"| case | problem | {ours_title} ms | compile s | analytic JAX ms | "
            f"{ours_title} / analytic | {slow_title} ms | "
            f"{slow_title} / {ours_title} |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for case in cases:
        name = case["name"]
        ours = records.get((name, ours_name))
        entry = comparisons.get(name, {})
        analytic = entry.get("analytic-jax_over_ours")
        lines.append(
            f"| {name} | {case['problem']} | {_ms(ours)} | "
            f"{_number(ours and ours['compile_s'], 1)} | "
            f"{_ms(records.get((name, 'analytic-jax')))} | "
            f"{_number(analytic and 1 / analytic)} | "
            f"{_ms(records.get((name, slow_name)))} | "
            f"{_number(entry.get(f'{slow_name}_over_ours'), 1)}x |"
        )
    return [*lines, ""]


def _scaling_table(cases, records, summary) -> list[str]:
    """Return the time per iteration against nnz, with the fitted slope and line."""
    lines = [
        "## Scaling with nnz (one shape, the density doubled at each step)",
        "",
        "| loss | problem | nnz | chainnmf ms | ns per entry |",
        "| --- | --- | --- | --- | --- |",
    ]
    for case in cases:
        ours = records.get((case["name"], "chainnmf"))
        per_entry = ours and 1e9 * ours["per_iteration_s"] / case["nnz"]
        lines.append(
            f"| {case['loss']} | {case['problem']} | {case['nnz']} | "
            f"{_ms(ours)} | {_number(per_entry)} |"
        )
    slopes = summary["slopes"]
    fits = summary.get("lines", {})

    def fitted(loss):
        if not fits.get(loss):
            return "—"
        intercept, per_entry = fits[loss]
        return f"{1e3 * intercept:.1f} ms + {1e9 * per_entry:.2f} ns · nnz"

    lines += [
        "",
        (
            f"Fitted log-log slope of time against nnz: Frobenius "
            f"{_number(slopes.get('frobenius'))}, KL "
            f"{_number(slopes.get('kl'))}. Least-squares line: Frobenius "
            f"{fitted('frobenius')}, KL {fitted('kl')}."
        ),
        "",
    ]
    return lines


def _targets_table(summary) -> list[str]:
    lines = [
        "## Targets",
        "",
        "| target | case | measured | met |",
        "| --- | --- | --- | --- |",
    ]
    for check in summary["targets"]:
        met = {True: "yes", False: "**no**", None: "not run"}[check["met"]]
        lines.append(
            f"| {check['target']} | {check['case']} | "
            f"{_number(check['value'])} | {met} |"
        )
    return [*lines, ""]


def markdown(document, folder: Path) -> str:
    """Render RESULTS.md: the setup, one table per group, targets, discussion.

    The discussion is the hand-written ``discussion.md`` of ``folder``, added
    to a full run's page only.
    """
    records = _times(document)
    summary = document["summary"]
    comparisons = summary["comparisons"]

    def rows_of(group):
        return [c for c in document["cases"] if c["group"] == group]

    lines = _header(document)
    if rows_of("vanilla"):
        lines += _vanilla_table(rows_of("vanilla"), records, comparisons)
    if rows_of("chain"):
        lines += _versus_table(
            "## Chained NMF: built-in model, analytic updates, the paper's NumPy loop",
            ("chainnmf", "chainnmf", "paper-numpy", "paper NumPy"),
            rows_of("chain"),
            records,
            comparisons,
        )
    if rows_of("terms"):
        lines += _versus_table(
            "## A user's own trace terms t1 … t8, in the paper's order",
            ("trace-terms", "trace(...)", "left-to-right-terms", "left-to-right @"),
            rows_of("terms"),
            records,
            comparisons,
        )
    if rows_of("scaling"):
        lines += _scaling_table(rows_of("scaling"), records, summary)
    lines += _targets_table(summary)

    discussion = folder / "discussion.md"
    if discussion.exists() and not document["quick"]:
        lines += [discussion.read_text().rstrip(), ""]
    return "\n".join(lines)
