"""The benchmark runs end to end in its smoke mode and writes its two records."""

import json
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


def test_quick_benchmark_writes_json_and_markdown(tmp_path):
    """`run.py --quick` writes results/<date>-<machine>-quick.json and RESULTS.md."""
    finished = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]

    (record_path,) = (tmp_path / "results").glob("*-quick.json")
    record = json.loads(record_path.read_text())
    assert record["quick"] is True
    assert record["limits"]["matmul_gflops"] > 0
    assert record["limits"]["bandwidth_gbs"] > 0
    solvers = {(r["case"], r["solver"]) for r in record["records"]}
    assert ("dense-frobenius", "scikit-learn") in solvers
    assert ("chain-paper", "paper-numpy") in solvers
    assert ("terms-paper", "left-to-right-terms") in solvers
    for entry in record["records"]:
        assert entry["compile_s"] >= 0
    assert {t["target"] for t in record["summary"]["targets"]}

    results = (tmp_path / "RESULTS.md").read_text()
    for heading in (
        "## Vanilla NMF against scikit-learn's MU solver",
        "## Chained NMF",
        "## A user's own trace terms",
        "## Scaling with nnz",
        "## Targets",
    ):
        assert heading in results
