"""Summaries, paired tests, text tables and result files shared by the studies."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["environment", "format_table", "paired_test", "summarize", "write_json"]


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Return the mean and the sample standard deviation (ddof=1; 0 for one value)."""
    values = np.asarray(values, dtype=np.float64)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(values.mean()), "std": std}


def paired_test(first: Sequence[float], second: Sequence[float]) -> dict[str, float]:
    """Compare two paired samples (the same seeds) with a two-sided paired t-test.

    Returns the mean difference ``second − first``, the t statistic and the
    p-value of ``scipy.stats.ttest_rel``. The p-value is NaN when the
    differences are all equal (for example all zero).
    """
    from scipy import stats

    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    difference = second - first
    if len(first) < 2 or np.allclose(difference, difference[0]):
        return {
            "mean_difference": float(difference.mean()),
            "t": float("nan"),
            "p": float("nan"),
        }
    result = stats.ttest_rel(second, first)
    return {
        "mean_difference": float(difference.mean()),
        "t": float(result.statistic),
        "p": float(result.pvalue),
    }


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows as a plain-text table with columns aligned on the widest cell."""
    cells = [[str(cell) for cell in header]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for index, row in enumerate(cells):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "nan" if np.isnan(value) else f"{value:.3f}"
    return str(value)


def write_json(path: Path, record: dict) -> None:
    """Write ``record`` as JSON through a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(record, stream, indent=2, allow_nan=True)
        # mkstemp creates the file readable by its owner only.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def environment() -> dict[str, str | bool]:
    """Return the versions and device that a result was computed with."""
    import platform

    import jax

    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "device": str(jax.devices()[0].device_kind),
        "platform": jax.default_backend(),
        "x64": bool(jax.config.jax_enable_x64),
    }
