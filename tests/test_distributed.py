"""Sharded fits on four CPU devices equal the fits on one device.

JAX reads ``XLA_FLAGS`` once, when it starts, so the four-device fits run in
a new Python process whose environment sets
``--xla_force_host_platform_device_count=4``. The script prints one JSON
line with the largest differences it found; the one-device fit in the same
process is the reference.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json
    import warnings

    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np
    import scipy.sparse as sp

    import chainnmf
    from chainnmf import distributed

    warnings.simplefilter("ignore")
    rng = np.random.default_rng(7)
    report = {"devices": len(jax.devices())}

    # 30 rows do not divide over 4 devices: W and the root tables get 2 zero rows.
    # The tables use both losses: Frobenius at the root, KL for the others.
    A, R, B = rng.random((30, 12)), rng.random((30, 7)), rng.random((12, 9))
    model = chainnmf.Model(
        [
            chainnmf.Table("A", A),
            chainnmf.Table("R", R, loss="kl"),
            chainnmf.Table("B", B, parent="A", loss="kl"),
        ],
        3,
    )
    one = model.fit(0, max_iter=25, tol=0.0)
    many = distributed.fit(model, seed=0, max_iter=25, tol=0.0)
    report["factors"] = max(
        float(np.max(np.abs(one.factors[n] - many.factors[n]))) for n in one.factors
    )
    report["history"] = float(np.max(np.abs(one.loss_history - many.loss_history)))
    report["shapes"] = {n: list(v.shape) for n, v in many.factors.items()}

    factors, data, padding = distributed.shard_model(
        model, model.init(0), distributed.row_mesh()
    )
    report["padding"] = padding
    report["W_devices"] = len(factors["W"].sharding.device_set)
    report["W_spec"] = list(factors["W"].sharding.spec)
    report["A_spec"] = list(data["A"].sharding.spec)
    report["B_spec"] = list(data["B"].sharding.spec)

    sparse_model = chainnmf.chain([sp.csr_matrix(A * (A > 0.6)), B], 3, loss="kl")
    one = sparse_model.fit(0, max_iter=10, tol=0.0)
    many = distributed.fit(sparse_model, seed=0, max_iter=10, tol=0.0)
    report["sparse_root"] = max(
        float(np.max(np.abs(one.factors[n] - many.factors[n]))) for n in one.factors
    )

    loss = chainnmf.vanilla(A, 3).loss
    start = {"W": np.full((30, 3), 0.5), "H_V": np.full((3, 12), 0.5)}
    try:
        distributed.fit_loss(loss, start, {"V": A}, rows=("W", "V"))
        report["uneven_error"] = None
    except ValueError as error:
        report["uneven_error"] = str(error)
    print(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def report():
    """Run the four-device script once and return its JSON report."""
    environment = dict(os.environ)
    environment["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    environment["JAX_PLATFORMS"] = "cpu"
    finished = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_four_devices_are_used(report):
    """The flag gives four devices, W is split over them by rows."""
    assert report["devices"] == 4
    assert report["W_devices"] == 4
    assert report["W_spec"] == ["rows", None]
    assert report["A_spec"] == ["rows", None]
    assert report["B_spec"] == []


def test_sharded_fit_equals_one_device(report):
    """Factors and loss history agree to float64 round-off.

    The reference is the one-device fit. The sums over rows are split over
    devices, so the results differ only by reordered additions; 1e-10 is
    about a million ulps of factors of order one.
    """
    assert report["factors"] < 1e-10
    assert report["history"] < 1e-8


def test_uneven_rows_are_padded_and_removed(report):
    """30 rows on 4 devices: 2 zero rows are added, and W comes back with 30."""
    assert report["padding"] == 2
    assert report["shapes"]["W"] == [30, 3]


def test_sparse_root_table_fits_alike(report):
    """A sparse root table (padded, replicated) gives the one-device factors."""
    assert report["sparse_root"] < 1e-10


def test_fit_loss_rejects_uneven_rows(report):
    """A user's loss is never padded: 30 rows on 4 devices is an error."""
    assert report["uneven_error"] is not None
    assert "30 rows" in report["uneven_error"]
    assert "pad it to 32 rows" in report["uneven_error"]
