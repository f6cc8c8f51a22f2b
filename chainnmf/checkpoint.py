"""Fit results and checkpoints on disk: a NumPy ``.npz`` file with a JSON record.

One file format serves both a checkpoint of a running fit and a finished
result. It stores the factors, the loss history, the sweep count, the status
and the sweep of the first non-finite value, together with a JSON record of

* the model's configuration: table names, parents, losses, weights, shapes
  and rank (for a :class:`~chainnmf.schema.Model`), or the factor names and
  each term's name, sign, weight, arguments and split (for a bare
  :class:`~chainnmf.terms.Loss`);
* the fit settings (``max_iter``, ``tol``, ``eval_every``, ``floor``), the
  dtype and, for checkpoints, ``checkpoint_every``;
* a SHA-256 checksum of each data table, not the data themselves.

The checksum covers the shape and the nonzero entries in row-major order,
taken as float64, so a dense table and a sparse table with the same entries
(stored in any order, with duplicates summed and explicit zeros dropped) get
the same checksum, and so do an integer table and its float copy.

Files are written atomically: the content goes to a temporary file in the
same folder, which is flushed to disk and then moved over the target with
``os.replace``. A crash while writing leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from typing import NamedTuple

import jax
import numpy as np

from chainnmf.fit import FitResult, Status
from chainnmf.schema import Model
from chainnmf.sparse import is_sparse
from chainnmf.terms import Loss
from chainnmf.validation import sparse_coordinates, stored_values

__all__ = [
    "Saved",
    "check_match",
    "describe",
    "fit_record",
    "load_result",
    "read",
    "read_record",
    "save_result",
    "table_checksum",
    "write",
]

_FORMAT = "chainnmf-fit"
_VERSION = 1


class Saved(NamedTuple):
    """The content of a result or checkpoint file.

    Attributes:
        result: the stored :class:`~chainnmf.fit.FitResult`.
        record: the JSON record (configuration, settings, dtype, checksums).
    """

    result: FitResult
    record: dict


# -- configuration -----------------------------------------------------------


def describe(problem: Model | Loss) -> dict:
    """Return the JSON-ready configuration of a model or a loss."""
    if isinstance(problem, Model):
        return {
            "kind": "model",
            "rank": problem.rank,
            "tables": [
                {
                    "name": table.name,
                    "parent": table.parent,
                    "loss": table.loss,
                    "weight": float(table.weight),
                    "shape": [int(size) for size in np.shape(table.data)],
                }
                for table in problem.tables
            ],
        }
    return {
        "kind": "loss",
        "factors": list(problem.factors),
        "terms": [
            {
                "name": term.name,
                "sign": term.sign,
                "weight": term.weight,
                "args": list(term.args),
                "split": term.split,
            }
            for term in problem.terms
        ],
    }


def table_checksum(table) -> str:
    """Return the SHA-256 checksum of a table's shape and nonzero entries.

    Sparse tables are read through their stored entries and never densified.
    """
    if is_sparse(table):
        shape = tuple(int(size) for size in table.shape)
        if len(shape) != 2:
            raise TypeError(f"expected a 2-D sparse table, found shape {shape}")
        rows, columns, values = sparse_coordinates(table)
        stored = values != 0
        linear = rows[stored].astype(np.int64) * shape[1] + columns[stored]
        values = values[stored].astype(np.float64)
        order = np.argsort(linear, kind="stable")
        linear, starts = np.unique(linear[order], return_index=True)
        values = np.add.reduceat(values[order], starts) if starts.size else values
    else:
        dense = stored_values(table)
        shape = tuple(int(size) for size in dense.shape)
        flat = dense.reshape(-1)
        linear = np.flatnonzero(flat)
        values = flat[linear].astype(np.float64)
    digest = hashlib.sha256(json.dumps(list(shape)).encode())
    digest.update(linear.astype("<i8").tobytes())
    digest.update(values.astype("<f8").tobytes())
    return digest.hexdigest()


def _checksums(problem: Model | Loss, data: Mapping[str, object] | None) -> dict:
    if isinstance(problem, Model):
        data = problem.data if data is None else data
        names = [table.name for table in problem.tables]
    else:
        names = list(problem.data_names)
    if data is None:
        raise ValueError("data are required to check a Loss against a saved fit")
    return {name: table_checksum(data[name]) for name in names}


def fit_record(
    problem: Model | Loss,
    data: Mapping[str, object] | None,
    settings: Mapping[str, object],
    dtype,
    checkpoint_every: int | None = None,
) -> dict:
    """Return the JSON record stored with a fit: configuration, settings, checksums."""
    return {
        "format": _FORMAT,
        "version": _VERSION,
        "configuration": describe(problem),
        "settings": dict(settings),
        "dtype": str(np.dtype(dtype)),
        "checkpoint_every": checkpoint_every,
        "checksums": _checksums(problem, data),
        "jax_version": jax.__version__,
    }


def _differences(stored, current, where: str = "") -> list[str]:
    """List the paths at which two JSON values differ, with both values."""
    if isinstance(stored, dict) and isinstance(current, dict):
        found = []
        for key in sorted(set(stored) | set(current), key=str):
            path = f"{where}.{key}" if where else str(key)
            found += _differences(stored.get(key), current.get(key), path)
        return found
    if (
        isinstance(stored, list)
        and isinstance(current, list)
        and len(stored) == len(current)
    ):
        found = []
        for index, (old, new) in enumerate(zip(stored, current)):
            found += _differences(old, new, f"{where}[{index}]")
        return found
    if stored != current:
        return [f"{where} is {stored!r} in the file and {current!r} now"]
    return []


def check_match(path, stored: Mapping, current: Mapping, *, settings=True) -> None:
    """Raise unless the record ``stored`` in ``path`` matches the ``current`` fit.

    The configuration and the data checksums must be equal, and with
    ``settings`` so must the fit settings and the dtype.

    Raises:
        ValueError: listing every difference, the table checksums by name.
    """
    keys = ["configuration", "checksums"]
    if settings:
        keys += ["settings", "dtype"]
    problems = []
    for key in keys:
        if key == "checksums":
            for name in sorted(set(stored[key]) | set(current[key])):
                if stored[key].get(name) != current[key].get(name):
                    problems.append(
                        f"table {name!r} is not the table the file was written "
                        "with (its checksum differs)"
                    )
        else:
            problems += _differences(stored[key], current[key], key)
    if problems:
        raise ValueError(
            f"{os.fspath(path)!r} does not match this fit: " + "; ".join(problems)
        )


# -- files -------------------------------------------------------------------


def write(path, result: FitResult, record: Mapping) -> None:
    """Write ``result`` and ``record`` to ``path`` atomically.

    The previous file at ``path``, if any, stays intact until the new one is
    complete on disk.
    """
    path = os.fspath(path)
    names = list(result.factors)
    record = {
        **record,
        "factors": names,
        "status": result.status.name,
        "iterations": result.iterations,
    }
    arrays = {
        "record": np.frombuffer(json.dumps(record).encode(), np.uint8),
        "loss_history": np.asarray(result.loss_history),
        "history_iterations": np.asarray(result.history_iterations),
        "iterations": np.asarray(result.iterations, np.int64),
        "status": np.asarray(int(result.status), np.int64),
        "nonfinite_at": np.asarray(
            -1 if result.nonfinite_at is None else result.nonfinite_at, np.int64
        ),
    }
    for index, name in enumerate(names):
        arrays[f"factor_{index}"] = np.asarray(result.factors[name])
    folder = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(
        prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _open(path):
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"cannot read {path!r} as a chainnmf fit file: {error}"
        ) from error


def _record(archive, path: str) -> dict:
    if "record" not in archive.files:
        raise ValueError(f"{path!r} is not a chainnmf fit file: it has no record")
    record = json.loads(archive["record"].tobytes().decode())
    if record.get("format") != _FORMAT or record.get("version") != _VERSION:
        raise ValueError(
            f"{path!r}: expected format {_FORMAT!r} version {_VERSION}, found "
            f"{record.get('format')!r} version {record.get('version')!r}"
        )
    return record


def read_record(path) -> dict:
    """Return the JSON record of a result or checkpoint file."""
    path = os.fspath(path)
    with _open(path) as archive:
        return _record(archive, path)


def read(path) -> Saved:
    """Read a result or checkpoint file written by :func:`write`."""
    path = os.fspath(path)
    with _open(path) as archive:
        record = _record(archive, path)
        factors = {
            name: archive[f"factor_{index}"]
            for index, name in enumerate(record["factors"])
        }
        status = Status(int(archive["status"]))
        nonfinite_at = int(archive["nonfinite_at"])
        result = FitResult(
            factors=factors,
            loss_history=archive["loss_history"],
            history_iterations=archive["history_iterations"],
            iterations=int(archive["iterations"]),
            status=status,
            message=status.message,
            nonfinite_at=None if nonfinite_at < 0 else nonfinite_at,
            dtype=record["dtype"],
            settings=record["settings"],
        )
    return Saved(result, record)


# -- results -----------------------------------------------------------------


def save_result(
    path, result: FitResult, model: Model | Loss, data: Mapping | None = None
) -> None:
    """Save ``result`` with the configuration of ``model`` and checksums of its data.

    Args:
        path: the file to write (atomically); any suffix is kept as given.
        result: a fit result of ``model``.
        model: the :class:`~chainnmf.schema.Model`, or the
            :class:`~chainnmf.terms.Loss` that was fit.
        data: the data tables by name; required for a Loss, and by default a
            Model's own tables.
    """
    record = fit_record(model, data, result.settings, result.dtype)
    write(path, result, record)


def load_result(path, model: Model | Loss | None = None, data=None) -> FitResult:
    """Load a saved result or checkpoint, and check it against ``model``.

    Args:
        path: a file written by :func:`save_result` or by a fit's checkpoint.
        model: when given, the stored configuration and data checksums must
            match this model (or loss) and its data.
        data: the data tables by name; required for a Loss, and by default a
            Model's own tables.

    Raises:
        ValueError: when the file is not a chainnmf fit file, or does not
            match ``model`` or ``data``; the message lists every difference.
    """
    saved = read(path)
    if model is not None:
        current = {
            "configuration": describe(model),
            "checksums": _checksums(model, data),
        }
        check_match(path, saved.record, current, settings=False)
    return saved.result
