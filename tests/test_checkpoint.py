"""Checkpoints, resumed fits, saved results and the checksums that pair them with data.

A resumed fit runs the same compiled sweeps as an uninterrupted one, so its
factors and loss history must be equal to the bit.
"""

import functools
import json
import os
import re

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from jax.experimental import sparse as jsparse

from chainnmf import (
    Loss,
    Status,
    Term,
    chain,
    fit,
    load_result,
    save_result,
    total,
)
from chainnmf.checkpoint import read, read_record, table_checksum

# Short fits stop at max_iter on purpose, and test_fit.py tests that warning.
pytestmark = pytest.mark.filterwarnings("ignore::chainnmf.ConvergenceWarning")


@pytest.fixture
def model(rng):
    return chain([rng.random((8, 6)), rng.random((6, 5))], 2, loss="kl")


class Interrupt(Exception):
    """Raised by a callback to stand in for a crash between two chunks."""


def _interrupt_at(sweep):
    def callback(state):
        if int(state.iteration) >= sweep:
            raise Interrupt

    return callback


def _crash_after(run, path, every, sweep, **settings):
    """Run ``run`` with a checkpoint every ``every`` sweeps until a crash at ``sweep``."""
    with pytest.raises(Interrupt):
        run(
            checkpoint=path,
            checkpoint_every=every,
            chunk=every,
            callback=_interrupt_at(sweep),
            **settings,
        )


def _assert_same_result(first, second):
    assert first.iterations == second.iterations
    assert first.status == second.status
    np.testing.assert_array_equal(first.loss_history, second.loss_history)
    np.testing.assert_array_equal(first.history_iterations, second.history_iterations)
    for name in first.factors:
        np.testing.assert_array_equal(first.factors[name], second.factors[name])


def test_resumed_fit_equals_uninterrupted(model, tmp_path):
    """Stopped after sweep 14 of 30, then resumed: the same bits as one run."""
    settings = {"max_iter": 30, "tol": 0.0, "eval_every": 3}
    whole = model.fit(0, **settings)
    path = tmp_path / "run.ckpt"
    _crash_after(functools.partial(model.fit, 0), path, 7, 14, **settings)
    assert read_record(path)["iterations"] == 14
    assert read_record(path)["status"] == "RUNNING"
    resumed = model.resume(path)
    _assert_same_result(resumed, whole)
    assert read_record(path)["iterations"] == 30


def test_resume_through_fit_function(model, tmp_path):
    """fit(model, resume=path) with the original settings continues the same way."""
    settings = {"max_iter": 20, "tol": 0.0}
    whole = model.fit(0, **settings)
    path = tmp_path / "run.npz"
    _crash_after(functools.partial(model.fit, 0), path, 5, 10, **settings)
    resumed = fit(model, resume=path, **settings)
    _assert_same_result(resumed, whole)


def test_generic_loss_checkpoint(tmp_path):
    """A user's Loss checkpoints and resumes too, checked by its term list."""
    V = np.arange(1.0, 13.0).reshape(4, 3)
    loss = Loss(
        [
            Term(
                lambda V, W, H: total(V * jnp.log(W @ H)), sign=-1, split="elementwise"
            ),
            Term(lambda W, H: total(W, H)),
        ],
        factors=("W", "H"),
    )
    start = {"W": np.full((4, 2), 0.5), "H": np.full((2, 3), 0.5)}
    start["W"][0, 0] = 1.0
    settings = {"max_iter": 12, "tol": 0.0}
    whole = fit(loss, start, {"V": V}, **settings)
    path = tmp_path / "loss.npz"
    _crash_after(functools.partial(fit, loss, start, {"V": V}), path, 4, 4, **settings)
    resumed = fit(loss, None, {"V": V}, resume=path, **settings)
    _assert_same_result(resumed, whole)


def test_checkpoint_written_at_stop(model, tmp_path):
    """The last write contains the final state, even between two write points."""
    path = tmp_path / "run.npz"
    result = model.fit(0, max_iter=11, tol=0.0, checkpoint=path, checkpoint_every=4)
    saved = read(path)
    _assert_same_result(saved.result, result)
    assert saved.record["status"] == "MAX_ITER"


def test_crash_in_replace_keeps_previous(model, tmp_path, monkeypatch):
    """A failure while moving the new file into place leaves the old one intact."""
    path = tmp_path / "run.npz"
    model.fit(0, max_iter=4, tol=0.0, checkpoint=path, checkpoint_every=4)
    before = path.read_bytes()

    def fail(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        model.fit(0, max_iter=8, tol=0.0, checkpoint=path, checkpoint_every=8)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]


def test_crash_while_writing_keeps_previous(model, tmp_path, monkeypatch):
    """A failure halfway through np.savez leaves the old file and no temporary."""
    path = tmp_path / "run.npz"
    model.fit(0, max_iter=4, tol=0.0, checkpoint=path, checkpoint_every=4)
    before = path.read_bytes()

    def partial(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", partial)
    with pytest.raises(KeyboardInterrupt):
        model.fit(0, max_iter=8, tol=0.0, checkpoint=path, checkpoint_every=8)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]


def test_saved_result_round_trip(model, tmp_path):
    """save_result then load_result gives back every field of the result."""
    result = model.fit(2, max_iter=15, tol=0.0, eval_every=4)
    path = tmp_path / "result.npz"
    save_result(path, result, model)
    loaded = load_result(path, model)
    _assert_same_result(loaded, result)
    assert loaded.dtype == result.dtype == "float64"
    assert loaded.settings == result.settings
    assert loaded.message == result.message
    assert loaded.nonfinite_at is None


def test_saved_record_has_configuration_not_data(model, tmp_path):
    """The file records tables, parents, losses, weights, rank and settings only."""
    result = model.fit(0, max_iter=5, tol=0.0)
    path = tmp_path / "result.npz"
    save_result(path, result, model)
    record = read_record(path)

    assert record["configuration"] == {
        "kind": "model",
        "rank": 2,
        "tables": [
            {"name": "A", "parent": None, "loss": "kl", "weight": 1.0, "shape": [8, 6]},
            {"name": "B", "parent": "A", "loss": "kl", "weight": 1.0, "shape": [6, 5]},
        ],
    }
    assert record["settings"] == {
        "max_iter": 5,
        "tol": 0.0,
        "eval_every": 10,
        "floor": 0.0,
    }
    assert record["dtype"] == "float64"
    assert record["status"] == "MAX_ITER"
    assert set(record["checksums"]) == {"A", "B"}

    with np.load(path) as archive:
        assert sorted(archive.files) == [
            "factor_0",
            "factor_1",
            "factor_2",
            "history_iterations",
            "iterations",
            "loss_history",
            "nonfinite_at",
            "record",
            "status",
        ]
    json.dumps(record)


def test_load_detects_other_data(model, tmp_path, rng):
    """Reloading next to a changed table names the table whose checksum differs."""
    result = model.fit(0, max_iter=5, tol=0.0)
    path = tmp_path / "result.npz"
    save_result(path, result, model)
    changed = model.data["B"].copy()
    changed[0, 0] += 1.0
    other = chain([model.data["A"], changed], 2, loss="kl")
    with pytest.raises(
        ValueError,
        match=re.escape(
            "table 'B' is not the table the file was written with (its checksum "
            "differs)"
        ),
    ):
        load_result(path, other)


def test_load_detects_other_configuration(model, tmp_path):
    """Reloading for a model of another rank or weight lists both differences."""
    result = model.fit(0, max_iter=5, tol=0.0)
    path = tmp_path / "result.npz"
    save_result(path, result, model)
    other = chain(list(model.data.values()), 3, loss="kl", weights=[1.0, 0.5])
    with pytest.raises(ValueError) as error:
        load_result(path, other)
    assert "configuration.rank is 2 in the file and 3 now" in str(error.value)
    assert "configuration.tables[1].weight is 1.0 in the file and 0.5 now" in str(
        error.value
    )


def test_resume_rejects_other_settings(model, tmp_path):
    """A resume with another max_iter says which setting differs."""
    path = tmp_path / "run.npz"
    model.fit(0, max_iter=6, tol=0.0, checkpoint=path, checkpoint_every=3)
    with pytest.raises(
        ValueError, match=re.escape("settings.max_iter is 6 in the file and 9 now")
    ):
        model.resume(path, max_iter=9)


def test_resume_rejects_start(model, tmp_path):
    """A resume starts from the file, so a seed or factors next to it are errors."""
    path = tmp_path / "run.npz"
    model.fit(0, max_iter=3, tol=0.0, checkpoint=path, checkpoint_every=3)
    with pytest.raises(ValueError, match="pass resume without seed or init"):
        model.fit(1, resume=path, max_iter=3, tol=0.0)
    with pytest.raises(ValueError, match="either initial factors or resume"):
        fit(model, model.init(0), resume=path, max_iter=3, tol=0.0)


def test_not_a_fit_file(tmp_path):
    """A file that is not a chainnmf fit file is named in the error."""
    path = tmp_path / "other.npz"
    np.savez(path, values=np.ones(3))
    with pytest.raises(
        ValueError, match="is not a chainnmf fit file: it has no record"
    ):
        load_result(path)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="cannot read"):
        load_result(text)


def test_checksum_ignores_storage():
    """Dense, CSR, COO with duplicates and BCOO copies of one table share a checksum.

    Integer and float copies agree too, since entries are hashed as float64.
    """
    dense = np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 3.0]])
    duplicates = sp.coo_matrix(
        ([1.5, 0.5, 3.0, 1.0, 0.0], ([0, 0, 1, 1, 1], [1, 1, 2, 0, 1])), shape=(2, 3)
    )
    expected = table_checksum(dense)
    assert table_checksum(sp.csr_matrix(dense)) == expected
    assert table_checksum(duplicates) == expected
    assert table_checksum(jsparse.BCOO.fromdense(jnp.asarray(dense))) == expected
    assert table_checksum(dense.astype(int)) == expected
    changed = dense.copy()
    changed[1, 2] = 3.5
    assert table_checksum(changed) != expected
    assert table_checksum(dense.T) != expected


def test_checksum_leaves_coo_unchanged():
    """Summing duplicates for the checksum does not rewrite the user's COO matrix."""
    matrix = sp.coo_matrix(([1.0, 2.0], ([0, 0], [1, 1])), shape=(2, 2))
    row, data = matrix.row.copy(), matrix.data.copy()
    table_checksum(matrix)
    np.testing.assert_array_equal(matrix.row, row)
    np.testing.assert_array_equal(matrix.data, data)
    assert matrix.nnz == 2


def test_sparse_checkpoint_pairs_with_dense_copy(model, tmp_path):
    """A fit of CSR tables resumes to the same bits and reloads next to dense copies.

    The checksum covers entries, not storage, so the dense model of the same
    tables passes the check.
    """
    sparse_model = chain(
        [sp.csr_matrix(table) for table in model.data.values()], 2, loss="kl"
    )
    settings = {"max_iter": 12, "tol": 0.0}
    whole = sparse_model.fit(0, **settings)
    path = tmp_path / "sparse.npz"
    _crash_after(functools.partial(sparse_model.fit, 0), path, 4, 8, **settings)
    resumed = sparse_model.resume(path)
    _assert_same_result(resumed, whole)
    _assert_same_result(load_result(path, model), whole)


def test_finished_checkpoint_resumes_without_sweeps(model, tmp_path):
    """Resuming a fit that already stopped returns its result unchanged."""
    path = tmp_path / "run.npz"
    result = model.fit(0, max_iter=5, tol=0.0, checkpoint=path, checkpoint_every=5)
    resumed = model.resume(path)
    _assert_same_result(resumed, result)
    assert resumed.status == Status.MAX_ITER
