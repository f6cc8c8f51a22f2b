"""Run chainnmf's benchmarks and write a JSON record and a Markdown table.

Usage::

    python benchmarks/run.py            # full run, about 10-15 minutes on 2 cores
    python benchmarks/run.py --quick    # smoke run with tiny problems, seconds
    python benchmarks/run.py --device gpu

In a full run every (case, solver) pair runs in its own Python process, so
the peak memory reported for it is its own and no solver's threads compete
with another's. ``--isolation none`` runs them all in this process, the
default with ``--quick``. The machine's limits (matmul rate
and memory bandwidth) are measured in the same run. The record goes to
``<output>/results/<date>-<machine>.json`` and the tables to
``<output>/RESULTS.md``, where ``<output>`` is this folder by default.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import cases
import report
import timing

logger = logging.getLogger("benchmarks")


def _platform_environment(device: str) -> dict[str, str]:
    """Return the environment that makes JAX use ``device`` ("cpu" or "gpu")."""
    environment = dict(os.environ)
    environment["JAX_PLATFORMS"] = "cuda" if device == "gpu" else "cpu"
    return environment


def run_pair(case_name: str, solver_name: str, quick: bool) -> dict[str, object]:
    """Measure one solver on one case in this process and return its record."""
    case = cases.find(case_name, quick)
    (solver,) = [s for s in case.solvers if s.name == solver_name]
    started = time.perf_counter()
    run = cases.build(case, solver_name)
    setup_s = time.perf_counter() - started
    before = timing.peak_rss_mib()
    record = timing.measure(run, solver.short, solver.long, solver.repeats)
    record.update(
        case=case_name,
        solver=solver_name,
        setup_s=setup_s,
        rss_after_setup_mib=before,
        peak_rss_mib=timing.peak_rss_mib(),
    )
    return record


def _run_isolated(case_name, solver_name, quick, environment) -> dict[str, object]:
    """Run :func:`run_pair` in a new process and return its record."""
    command = [sys.executable, str(Path(__file__)), "--worker", case_name, solver_name]
    if quick:
        command.append("--quick")
    finished = subprocess.run(
        command, capture_output=True, text=True, env=environment, check=False
    )
    if finished.returncode != 0:
        raise RuntimeError(
            f"benchmark {case_name} / {solver_name} failed with exit code "
            f"{finished.returncode}:\n{finished.stderr[-4000:]}"
        )
    return json.loads(finished.stdout.strip().splitlines()[-1])


def measure_limits(quick: bool) -> dict[str, float]:
    """Measure the matmul rate and the memory bandwidth of this machine."""
    size, mebibytes, repeats = (256, 16, 3) if quick else (2048, 512, 5)
    return {
        "matmul_gflops": timing.matmul_rate(size, repeats),
        "matmul_size": size,
        "bandwidth_gbs": timing.copy_bandwidth(mebibytes, repeats),
        "bandwidth_mib": mebibytes,
    }


def _limits_isolated(quick: bool, environment) -> dict[str, float]:
    command = [sys.executable, str(Path(__file__)), "--limits"]
    if quick:
        command.append("--quick")
    finished = subprocess.run(
        command, capture_output=True, text=True, env=environment, check=True
    )
    return json.loads(finished.stdout.strip().splitlines()[-1])


def _machine(device: str) -> dict[str, object]:
    """Describe the machine: host, processor, cores, memory, load averages."""
    processor = platform.processor()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    processor = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gib = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gib = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {
        "host": platform.node(),
        "processor": processor,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "device": device,
        "python": platform.python_version(),
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("chainnmf", "jax", "jaxlib", "numpy", "scipy", "scikit-learn"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text) or "machine"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny problems, for a smoke run"
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "gpu"),
        default="cpu",
        help="where JAX runs chainnmf and the JAX baselines (default: cpu)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=HERE,
        help="folder for RESULTS.md and results/ (default: this folder)",
    )
    parser.add_argument(
        "--cases", nargs="+", help="run only these case names (default: all)"
    )
    parser.add_argument(
        "--isolation",
        choices=("process", "none"),
        help="run each solver in its own process (default for a full run), or "
        "all in this one (default with --quick; peak memory is then not reported)",
    )
    parser.add_argument(
        "--from-record",
        type=Path,
        help="rewrite RESULTS.md from this JSON record instead of measuring",
    )
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--limits", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)

    if options.worker:
        print(json.dumps(run_pair(*options.worker, options.quick)))
        return 0
    if options.limits:
        print(json.dumps(measure_limits(options.quick)))
        return 0
    if options.from_record:
        document = json.loads(options.from_record.read_text())
        names = {record["case"] for record in document["records"]}
        selected = [c for c in cases.cases(document["quick"]) if c.name in names]
        document["cases"] = report.describe_cases(selected)
        document["summary"] = report.summarize(document, selected)
        options.from_record.write_text(json.dumps(document, indent=2) + "\n")
        options.output.mkdir(parents=True, exist_ok=True)
        (options.output / "RESULTS.md").write_text(report.markdown(document, HERE))
        return 0

    logging.basicConfig(format="%(message)s")
    logger.setLevel(logging.INFO)
    isolated = (
        options.isolation or ("none" if options.quick else "process")
    ) == "process"
    environment = _platform_environment(options.device)
    selected = cases.cases(options.quick)
    if options.cases:
        unknown = set(options.cases) - {case.name for case in selected}
        if unknown:
            parser.error(f"unknown case(s) {sorted(unknown)}")
        selected = [case for case in selected if case.name in options.cases]

    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    if not isolated:
        os.environ.update(environment)
        limits = measure_limits(options.quick)
    else:
        limits = _limits_isolated(options.quick, environment)
    logger.info(
        "limits: matmul %.0f GFLOP/s, bandwidth %.1f GB/s",
        limits["matmul_gflops"],
        limits["bandwidth_gbs"],
    )
    records = []
    for case in selected:
        for solver in case.solvers:
            if not isolated:
                record = run_pair(case.name, solver.name, options.quick)
                record["peak_rss_mib"] = record["rss_after_setup_mib"] = None
            else:
                record = _run_isolated(
                    case.name, solver.name, options.quick, environment
                )
            record["load_average"] = os.getloadavg()[0]
            records.append(record)
            logger.info(
                "%-28s %-20s %9.3f ms/iteration",
                case.name,
                solver.name,
                1e3 * record["per_iteration_s"],
            )

    machine = _machine(options.device)
    document = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/run.py", *(argv or sys.argv[1:])]),
        "quick": options.quick,
        "isolated": isolated,
        "machine": machine,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "versions": _versions(),
        "limits": limits,
        "cases": report.describe_cases(selected),
        "records": records,
    }
    document["summary"] = report.summarize(document, selected)
    results = options.output / "results"
    results.mkdir(parents=True, exist_ok=True)
    name = f"{started:%Y-%m-%d}-{_slug(machine['host'])}"
    if options.quick:
        name += "-quick"
    path = results / f"{name}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    (options.output / "RESULTS.md").write_text(report.markdown(document, HERE))
    logger.info("wrote %s and %s", path, options.output / "RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
