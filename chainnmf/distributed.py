"""Fits on several devices: the rows of ``W`` and of the root tables are sharded.

The rows of the insertion point (the rows of ``W`` and of every table
without a parent) are split over a one-dimensional
:class:`jax.sharding.Mesh` whose axis is called ``"rows"``; every other
factor and table is replicated on each device. The fit then runs the same
jitted loop as on one device (:func:`chainnmf.fit.fit`): JAX's SPMD
partitioner runs each device's share of the rows and inserts the reductions
over devices that products such as ``V_Aᵀ W``, ``Wᵀ V_A`` and ``Wᵀ W`` need.
The result equals the one-device fit up to the order of floating-point
sums.

Rows that do not divide evenly over the devices are padded with zero rows
in ``W`` and in every root table. A zero row of ``W`` stays zero under
multiplicative updates. It adds nothing to any Frobenius or KL term, to any
gradient or to the largest ``∇⁺`` entry that sets the division guard, so the
other rows of ``W``, every ``H`` and the loss are unchanged. The padding is
removed from the fitted ``W``. A user's own :class:`~chainnmf.terms.Loss`
may contain terms that a zero row does change, so :func:`fit_loss` rejects
uneven rows instead of padding them.

On one machine, ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (set
before JAX starts) splits the CPU into four devices, and this module then
uses every core. On several machines, start the same program on each one
and call :func:`jax.distributed.initialize` first::

    jax.distributed.initialize(
        coordinator_address="head-node:1234",  # host:port of process 0
        num_processes=2,
        process_id=int(os.environ["RANK"]),  # 0 or 1
    )
    result = chainnmf.distributed.fit(model, seed=0)

Every process passes the same model and data; each one copies only the rows
of its own devices (:func:`jax.make_array_from_callback`).

NOTE: the multi-host path is untested here (these machines have one host),
and the fitted factors are returned as NumPy arrays, which needs every
shard of ``W`` to be readable from each process.

TODO: a sparse root table is padded and replicated on every device rather
than sharded by rows; its products then run in full on each device, so it
gains nothing from more devices. Sharding it needs the sparse products
written per device (``jax.shard_map``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse as jsparse
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from chainnmf.numerics import default_dtype
from chainnmf.schema import INSERTION_POINT, Model
from chainnmf.sparse import SparseMatrix, as_operand, host_coordinates, is_sparse
from chainnmf.terms import Loss

__all__ = ["ROWS", "fit", "fit_loss", "row_mesh", "shard_model"]

ROWS = "rows"


def row_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """Return a one-dimensional mesh with the axis ``"rows"`` over ``devices``.

    By default every device of the default backend (on every host, after
    :func:`jax.distributed.initialize`).
    """
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("a mesh needs at least one device, got none")
    return Mesh(np.asarray(devices), (ROWS,))


def _rows_count(mesh: Mesh) -> int:
    if mesh.axis_names != (ROWS,):
        raise ValueError(
            f"expected a one-dimensional mesh with the axis {ROWS!r} (see "
            f"row_mesh), got axes {mesh.axis_names}"
        )
    return int(mesh.shape[ROWS])


def _place(array, sharding: NamedSharding):
    """Copy an array to the devices of ``sharding``, each process its own part."""
    host = np.asarray(array)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def _replicate(tree, mesh: Mesh):
    """Copy every array of a pytree (such as a SparseMatrix) to every device."""
    replicated = NamedSharding(mesh, PartitionSpec())
    return jax.tree_util.tree_map(lambda leaf: _place(leaf, replicated), tree)


def _pad_rows(table, padding: int):
    """Append ``padding`` zero rows to a dense or sparse table."""
    if padding == 0:
        return table
    if not is_sparse(table):
        return np.pad(np.asarray(table), ((0, padding), (0, 0)))
    if isinstance(table, SparseMatrix):
        raise TypeError(
            "a root table given as a SparseMatrix cannot be padded; pass it as a "
            "scipy.sparse matrix or a BCOO array, or use a mesh that divides its rows"
        )
    rows, columns, values = host_coordinates(table)
    shape = (table.shape[0] + padding, table.shape[1])
    return jsparse.BCOO((values, np.stack([rows, columns], axis=1)), shape=shape)


def shard_model(
    model: Model, factors: Mapping[str, object], mesh: Mesh, *, dtype=None
) -> tuple[dict[str, jax.Array], dict[str, object], int]:
    """Place a model's start and tables on ``mesh``, rows of the root sharded.

    Args:
        model: the model.
        factors: a start for ``model`` (such as :meth:`Model.init`), unpadded.
        mesh: a mesh from :func:`row_mesh`.
        dtype: the floating dtype; float64 under JAX's x64 mode, else float32,
            by default.

    Returns:
        ``(factors, data, padding)``: the sharded start, the placed tables
        and the number of zero rows added to ``W``. Root tables are padded,
        and sharded by rows when dense. The other tables are replicated.
    """
    count = _rows_count(mesh)
    dtype = default_dtype() if dtype is None else jnp.dtype(dtype)
    rows = model.n_rows
    padding = -rows % count
    by_rows = NamedSharding(mesh, PartitionSpec(ROWS, None))

    placed_factors = {}
    for name, value in factors.items():
        value = np.asarray(value, dtype)
        if name == INSERTION_POINT:
            placed_factors[name] = _place(
                np.pad(value, ((0, padding), (0, 0))), by_rows
            )
        else:
            placed_factors[name] = _replicate(value, mesh)

    data = {}
    for table in model.tables:
        value = table.data
        if table.parent is None:
            value = _pad_rows(value, padding)
            if not is_sparse(value):
                data[table.name] = _place(np.asarray(value, dtype), by_rows)
                continue
        data[table.name] = _replicate(as_operand(value, dtype), mesh)
    return placed_factors, data, padding


def fit(
    model: Model,
    *,
    mesh: Mesh | None = None,
    seed: int = 0,
    init: Mapping[str, object] | None = None,
    **options,
):
    """Fit ``model`` with the rows of ``W`` and of its root tables sharded.

    Args:
        model: the model to fit.
        mesh: a mesh from :func:`row_mesh`; every device by default.
        seed: the seed of :meth:`Model.init`, used when ``init`` is None.
        init: a start in place of :meth:`Model.init`, with ``W`` unpadded.
        options: those of :func:`chainnmf.fit.fit` (not ``resume`` or
            ``checkpoint``).

    Returns:
        The :class:`~chainnmf.fit.FitResult`, with the padding rows removed
        from ``W``. It equals the one-device fit up to the order of sums.
    """
    from chainnmf.fit import fit as fit_on_devices

    for option in ("resume", "checkpoint"):
        if options.get(option) is not None:
            raise ValueError(f"{option} is not supported by distributed.fit")
    mesh = row_mesh() if mesh is None else mesh
    dtype = default_dtype() if options.get("dtype") is None else options["dtype"]
    start = model.init(seed, dtype=dtype) if init is None else init
    factors, data, _ = shard_model(model, start, mesh, dtype=dtype)
    result = fit_on_devices(model.loss, factors, data, **options)
    fitted = dict(result.factors)
    fitted[INSERTION_POINT] = fitted[INSERTION_POINT][: model.n_rows]
    return dataclasses.replace(result, factors=fitted)


def fit_loss(
    loss: Loss,
    factors: Mapping[str, object],
    data: Mapping[str, object],
    *,
    rows: Sequence[str],
    mesh: Mesh | None = None,
    **options,
):
    """Fit a user's loss with the first axis of the arrays in ``rows`` sharded.

    Args:
        loss: the loss.
        factors: the start, by name.
        data: the tables, by name.
        rows: names of the factors and dense tables whose first axis is the
            rows to shard (for example ``("W", "V")``); every other array is
            replicated.
        mesh: a mesh from :func:`row_mesh`; every device by default.
        options: those of :func:`chainnmf.fit.fit`.

    Raises:
        ValueError: when an array in ``rows`` has a first axis that the
            number of devices does not divide (pad the rows yourself if
            zero rows leave your loss unchanged), or a name is unknown.
    """
    from chainnmf.fit import fit as fit_on_devices

    mesh = row_mesh() if mesh is None else mesh
    count = _rows_count(mesh)
    dtype = default_dtype() if options.get("dtype") is None else options["dtype"]
    arrays = {**data, **factors}
    unknown = sorted(set(rows) - set(arrays))
    if unknown:
        raise ValueError(f"rows names unknown factors or tables {unknown}")
    by_rows = NamedSharding(mesh, PartitionSpec(ROWS, None))

    def place(name, value):
        if name not in rows:
            return _replicate(as_operand(value, dtype), mesh)
        if is_sparse(value):
            raise TypeError(f"{name!r} is sparse; only dense arrays can be sharded")
        size = np.shape(value)[0]
        if size % count:
            raise ValueError(
                f"{name!r} has {size} rows, which {count} devices do not divide; "
                f"pad it to {size + (-size % count)} rows or use another mesh"
            )
        return _place(np.asarray(value, dtype), by_rows)

    placed_factors = {name: place(name, value) for name, value in factors.items()}
    placed_data = {name: place(name, value) for name, value in data.items()}
    return fit_on_devices(loss, placed_factors, placed_data, **options)
