"""Sparse tables stored by rows and by columns, and their products with factors.

A sparse table ``V`` (m x n with nnz stored entries) reaches the loss terms as
a :class:`SparseMatrix`, which keeps the entries twice: grouped by row and
grouped by column (the rows of ``Vᵀ``). Every product a multiplicative update
needs then costs O(nnz · k) and reads one of the two copies row by row:

* ``V @ X`` (X: n x k) reads the row copy, ``Vᵀ @ Y`` (Y: m x k) the column
  copy. Each is the gradient of the other, so reverse-mode autodiff never
  scatters into a transposed index set.
* :func:`sampled_product` returns the entries of ``Z H`` (Z: m x k, H: k x n)
  at the stored positions only: the model values that the generalized KL
  divergence needs, without forming the m x n product.

Each copy is in sliced ELLPACK form. Rows are grouped by their number of
entries, and every row of a group is padded with zeros to the same length, a
multiple of ``SLOTS`` (8). A product then walks the padded slots of a group
``SLOTS`` at a time with ``jax.lax.scan``, and XLA fuses the gathers of rows
of ``X`` with the multiply-adds into one loop with no (nnz x k) temporary.
Group lengths grow by a factor of at most 1.5, which bounds the padding.

Why this layout: on a 2-core Xeon (jax 0.10.2, float32, a uniform random
20000 x 50000 table at 0.1 % density, k = 20, other jobs running), one
``V @ X`` took about 4 ms this way, against 7 to 8 ms for
scipy's CSR product, 11 to 18 ms for ``jax.experimental.sparse.BCSR`` (a
compiled CSR kernel), 34 ms for a gather followed by
``jax.ops.segment_sum`` over sorted rows and 51 ms for a BCOO product.
Splitting a BCSR product into row blocks did not run the blocks in
parallel.

The stored values are constants for autodiff: the products give gradients
with respect to the dense factors only, and in reverse mode only
(``jax.grad`` and ``jax.vjp``, not ``jax.jvp``).
"""

from __future__ import annotations

import itertools
import math
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.experimental import sparse as jsparse

__all__ = [
    "SLOTS",
    "SparseMatrix",
    "as_operand",
    "diagonal_sum",
    "host_coordinates",
    "inner",
    "is_sparse",
    "sampled_product",
    "sparse_matrix",
]

# Slots handled per step of a product. On the table of the module docstring,
# 8 was about 10 % faster than 16, and faster still than 4, 40 and 80.
SLOTS = 8

# Consecutive group lengths (in steps of SLOTS slots) differ by at most this
# factor, so a row is padded by less than 50 % plus SLOTS - 1 slots (rows of
# small groups, merged into longer ones, excepted). On the table of the module
# docstring, 1.5 with small groups merged padded 24 % of the row copy, against
# 7 % for 1.25 without merging. It ran as fast and compiled a KL fit in 9 s
# instead of 20 s.
_GROWTH = 1.5


class _Slices(NamedTuple):
    """One copy of a sparse matrix: its rows in groups of equal padded length.

    Group ``g`` contains ``r_g`` rows, padded to ``s_g · SLOTS`` slots, laid out
    step by step: slot ``(t, i, l)`` is entry ``t · SLOTS + l`` of the group's
    row ``i``. Padding slots have value 0 and column 0.

    Attributes:
        rows: per group, the row of each group row, int32 ``(r_g,)``.
        columns: per group, the column of each slot, int32 ``(s_g, r_g, SLOTS)``.
        values: per group, the value of each slot, ``(s_g, r_g, SLOTS)``.
        position: for each row of the matrix, its index in the groups' rows
            listed one group after another, or that count (one past the
            last) for a row without entries. int32 ``(rows,)``.
    """

    rows: tuple[Array, ...]
    columns: tuple[Array, ...]
    values: tuple[Array, ...]
    position: Array


@jax.tree_util.register_pytree_node_class
class SparseMatrix:
    """A sparse m x n matrix stored twice: grouped by rows and by columns.

    Build one with :func:`sparse_matrix` (or :func:`as_operand`) from a
    scipy.sparse matrix or a ``jax.experimental.sparse`` BCOO or BCSR array.
    It is a pytree, so it passes through ``jax.jit``, ``jax.vmap`` (as an
    unbatched argument) and ``jax.device_put``, and it supports ``.T``, ``@``
    with dense vectors and matrices on either side, ``.sum``, ``.astype`` and
    ``.todense``.

    Attributes:
        by_rows: the row copy (see the module docstring).
        by_columns: the column copy: the row copy of the transpose.
        to_columns: per column-copy group, the index in :attr:`data` of each
            slot's entry, or ``len(data)`` for a padding slot.
        to_rows: per row-copy group, the index in ``self.T.data`` of each
            slot's entry, or ``len(self.T.data)`` for a padding slot.
        shape: ``(m, n)``.
        nnz: the number of stored entries, without padding.
        dtype: the dtype of the stored values.
    """

    # NumPy arrays defer to __rmatmul__ instead of treating this as an object.
    __array_ufunc__ = None

    def __init__(self, by_rows, by_columns, to_columns, to_rows, shape, nnz, dtype):
        self.by_rows = by_rows
        self.by_columns = by_columns
        self.to_columns = tuple(to_columns)
        self.to_rows = tuple(to_rows)
        self.shape = (int(shape[0]), int(shape[1]))
        self.nnz = int(nnz)
        self.dtype = jnp.dtype(dtype)

    def tree_flatten(self):
        children = (self.by_rows, self.by_columns, self.to_columns, self.to_rows)
        return children, (self.shape, self.nnz, self.dtype)

    @classmethod
    def tree_unflatten(cls, static, children):
        return cls(*children, *static)

    @property
    def ndim(self) -> int:
        """The number of dimensions, always 2."""
        return 2

    @property
    def data(self) -> Array:
        """The stored values of the row copy, padding slots (zeros) included.

        A flat vector: the groups of ``by_rows`` one after another, each in
        its slot order. :func:`sampled_product` returns its values in the
        same order.
        """
        return _flat(self.by_rows.values, self.dtype)

    @property
    def T(self) -> SparseMatrix:
        """The transpose, which shares every array with this matrix."""
        return SparseMatrix(
            self.by_columns,
            self.by_rows,
            self.to_rows,
            self.to_columns,
            self.shape[::-1],
            self.nnz,
            self.dtype,
        )

    def astype(self, dtype) -> SparseMatrix:
        """Return the matrix with its values converted to ``dtype``."""
        dtype = jax.dtypes.canonicalize_dtype(dtype)

        def convert(slices: _Slices) -> _Slices:
            return slices._replace(
                values=tuple(values.astype(dtype) for values in slices.values)
            )

        return SparseMatrix(
            convert(self.by_rows),
            convert(self.by_columns),
            self.to_columns,
            self.to_rows,
            self.shape,
            self.nnz,
            dtype,
        )

    def coordinates(self) -> tuple[Array, Array]:
        """Return the row and the column of every slot of :attr:`data`."""
        rows, columns = [], []
        for group_rows, group_columns in zip(self.by_rows.rows, self.by_rows.columns):
            rows.append(
                jnp.broadcast_to(group_rows[None, :, None], group_columns.shape)
            )
            columns.append(group_columns)
        return _flat(rows, jnp.int32), _flat(columns, jnp.int32)

    def todense(self) -> Array:
        """Return the dense m x n array (for tests and small tables only)."""
        rows, columns = self.coordinates()
        return jnp.zeros(self.shape, self.dtype).at[rows, columns].add(self.data)

    def to_bcoo(self) -> jsparse.BCOO:
        """Return the matrix as a BCOO array; padding slots are zero entries."""
        rows, columns = self.coordinates()
        indices = jnp.stack([rows, columns], axis=1)
        return jsparse.BCOO((self.data, indices), shape=self.shape)

    def sum(self, axis: int | None = None) -> Array:
        """Sum all entries (``axis=None``), each column (``0``) or each row (``1``)."""
        if axis is None:
            return jnp.sum(self.data)
        if axis not in (0, 1, -1, -2):
            raise ValueError(f"axis must be None, 0 or 1 for a matrix, got {axis!r}")
        if axis in (1, -1):
            return self @ jnp.ones(self.shape[1], self.dtype)
        return self.T @ jnp.ones(self.shape[0], self.dtype)

    def __matmul__(self, other):
        if isinstance(other, SparseMatrix):
            return self.to_bcoo() @ other.to_bcoo()
        if isinstance(other, jsparse.JAXSparse):
            return self.to_bcoo() @ other
        other = jnp.asarray(other)
        if other.ndim not in (1, 2) or other.shape[0] != self.shape[1]:
            raise ValueError(
                f"matmul: a sparse {self.shape} matrix needs a vector or matrix "
                f"with {self.shape[1]} rows, got shape {other.shape}"
            )
        dtype = jnp.result_type(self.dtype, other.dtype)
        matrix = self if self.dtype == dtype else self.astype(dtype)
        return _matmul(matrix, other.astype(dtype))

    def __rmatmul__(self, other):
        if isinstance(other, jsparse.JAXSparse):
            return other @ self.to_bcoo()
        other = jnp.asarray(other)
        if other.ndim == 1:
            return self.T @ other
        return (self.T @ other.T).T

    def __repr__(self) -> str:
        return f"SparseMatrix(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype})"


def _flat(groups, dtype) -> Array:
    """Concatenate per-group arrays into one flat vector."""
    if not groups:
        return jnp.zeros((0,), dtype)
    return jnp.concatenate([group.reshape(-1) for group in groups])


def _split(flat: Array, like: tuple[Array, ...]) -> tuple[Array, ...]:
    """Cut a flat vector back into arrays shaped like ``like``, in order."""
    groups, start = [], 0
    for group in like:
        groups.append(flat[start : start + group.size].reshape(group.shape))
        start += group.size
    return tuple(groups)


@jax.jit
def _slices_times(slices: _Slices, values, dense: Array) -> Array:
    """Return ``S @ dense`` for the matrix ``S`` of ``slices`` with ``values``.

    ``dense`` is a vector of length n or an n x k matrix. ``values`` has the
    layout of ``slices.values``: the matrix's own values, or a cotangent.
    """
    matrix = dense[:, None] if dense.ndim == 1 else dense
    width = matrix.shape[1]
    parts = []
    for group_columns, group_values in zip(slices.columns, values):

        def step(total, chunk, matrix=matrix):
            columns, weights = chunk
            for slot in range(SLOTS):
                total = total + weights[:, slot, None] * matrix[columns[:, slot]]
            return total, None

        start = jnp.zeros((group_columns.shape[1], width), matrix.dtype)
        part, _ = jax.lax.scan(step, start, (group_columns, group_values))
        parts.append(part)
    # One zero row at the end serves every row without entries.
    parts.append(jnp.zeros((1, width), matrix.dtype))
    product = jnp.concatenate(parts)[slices.position]
    return product[:, 0] if dense.ndim == 1 else product


@jax.custom_vjp
def _matmul(matrix: SparseMatrix, dense: Array) -> Array:
    """``matrix @ dense`` on the row copy; its gradient uses the column copy."""
    return _slices_times(matrix.by_rows, matrix.by_rows.values, dense)


def _matmul_forward(matrix, dense):
    return _matmul(matrix, dense), matrix


def _matmul_backward(matrix, cotangent):
    columns = matrix.by_columns
    return None, _slices_times(columns, columns.values, cotangent)


_matmul.defvjp(_matmul_forward, _matmul_backward)


@jax.jit
def _sampled_groups(slices: _Slices, left: Array, right: Array) -> list[Array]:
    """Return ``(left @ right)`` at every slot of ``slices``, group by group.

    Each slot reads the k entries of one row of ``rightᵀ`` one by one, so XLA
    fuses the gathers, products and sums of a step into one loop, and no
    (nnz x k) array is formed. On the table of the module docstring this was
    about 15 % faster than gathering whole rows of ``rightᵀ``.

    NOTE: each step is unrolled over the k components, so compile time grows
    with the rank (measured only up to k = 20).
    """
    right_t = right.T
    groups = []
    for group_rows, group_columns in zip(slices.rows, slices.columns):
        rows_t = left[group_rows].T

        def step(carry, columns, rows_t=rows_t):
            slots = []
            for slot in range(SLOTS):
                at = columns[:, slot]
                total = rows_t[0] * right_t[at, 0]
                for component in range(1, right_t.shape[1]):
                    total = total + rows_t[component] * right_t[at, component]
                slots.append(total)
            return carry, jnp.stack(slots, axis=1)

        _, values = jax.lax.scan(step, None, group_columns)
        groups.append(values)
    return groups


def sampled_product(matrix: SparseMatrix, left: Array, right: Array) -> Array:
    """Return ``(left @ right)_ij`` at the stored entries ``(i, j)`` of ``matrix``.

    .. math::

        s_e = Σ_c Z_{i_e c} H_{c j_e}

    for every slot ``e`` of ``matrix.data`` at row ``i_e`` and column ``j_e``,
    with ``Z = left`` and ``H = right``. It costs O(nnz · k) in time and
    O(nnz) in memory. The gradients ``∂/∂Z = S(g) Hᵀ`` and ``∂/∂H = Zᵀ S(g)``,
    where ``S(g)`` is the sparse matrix with the cotangent ``g`` at the
    stored entries, are two sparse products.

    Args:
        matrix: the sparse m x n pattern; its values are not used.
        left: ``Z``, shape ``(m, k)``.
        right: ``H``, shape ``(k, n)``.

    Returns:
        The sampled values, in the order and with the length of
        ``matrix.data`` (padding slots included).
    """
    left, right = jnp.asarray(left), jnp.asarray(right)
    dtype = jnp.result_type(left.dtype, right.dtype)
    return _sampled(matrix, left.astype(dtype), right.astype(dtype))


@jax.custom_vjp
def _sampled(matrix: SparseMatrix, left: Array, right: Array) -> Array:
    return _flat(_sampled_groups(matrix.by_rows, left, right), left.dtype)


def _sampled_forward(matrix, left, right):
    return _sampled(matrix, left, right), (matrix, left, right)


def _sampled_backward(residuals, cotangent):
    matrix, left, right = residuals
    by_rows, by_columns = matrix.by_rows, matrix.by_columns
    grad_left = _slices_times(by_rows, _split(cotangent, by_rows.values), right.T)

    # The same cotangent, moved into the column copy's slots.
    padded = jnp.concatenate([cotangent, jnp.zeros((1,), cotangent.dtype)])
    moved = tuple(padded[indices] for indices in matrix.to_columns)
    grad_right = _slices_times(by_columns, moved, left).T
    return None, grad_left, grad_right


_sampled.defvjp(_sampled_forward, _sampled_backward)


# -- conversion --------------------------------------------------------------


def _is_scipy_sparse(table) -> bool:
    module = sys.modules.get("scipy.sparse")
    return module is not None and module.issparse(table)


def is_sparse(table) -> bool:
    """Return whether ``table`` is a sparse matrix this module can use.

    True for a :class:`SparseMatrix`, a ``jax.experimental.sparse`` BCOO or
    BCSR array and a scipy.sparse matrix or array.
    """
    return isinstance(table, SparseMatrix | jsparse.JAXSparse) or _is_scipy_sparse(
        table
    )


def host_coordinates(table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(rows, columns, values)`` of a scipy.sparse, BCOO or BCSR matrix.

    NumPy arrays of the stored entries, read on the host (outside jit);
    duplicates are kept.
    """
    if _is_scipy_sparse(table):
        coo = table.tocoo()
        return np.asarray(coo.row), np.asarray(coo.col), np.asarray(coo.data)
    if isinstance(table, jsparse.BCSR):
        table = table.to_bcoo()
    if isinstance(table, jsparse.BCOO):
        if table.n_batch or table.n_dense:
            table = jsparse.bcoo_update_layout(table, n_batch=0, n_dense=0)
        try:
            indices = np.asarray(table.indices)
            values = np.asarray(table.data)
        except jax.errors.TracerArrayConversionError as error:
            raise TypeError(
                "a BCOO table must be converted to a SparseMatrix outside jit: "
                "call chainnmf.sparse.sparse_matrix(table) before tracing"
            ) from error
        # BCOO pads with out-of-range indices; those entries are not stored.
        inside = np.all(indices < np.asarray(table.shape), axis=1)
        return indices[inside, 0], indices[inside, 1], values[inside]
    raise TypeError(
        "expected a scipy.sparse matrix or a jax.experimental.sparse BCOO or "
        f"BCSR array, got {type(table).__name__}"
    )


def _group_lengths(steps: int) -> list[int]:
    """Return the padded lengths (in steps) used for rows of up to ``steps`` steps."""
    lengths = [1]
    while lengths[-1] < steps:
        lengths.append(max(lengths[-1] + 1, math.floor(lengths[-1] * _GROWTH)))
    return lengths


def _slices(major, minor, values, size, dtype):
    """Build the sliced copy of entries sorted by ``(major, minor)``.

    Args:
        major: the row of each entry in this copy, sorted.
        minor: the column of each entry in this copy.
        values: the value of each entry.
        size: the number of rows of this copy.
        dtype: the dtype of the stored values.

    Returns:
        ``(slices, flat, total)``: the :class:`_Slices`, for each entry its
        index in the flat concatenation of the groups' values, and the length
        of that concatenation.
    """
    counts = np.bincount(major, minlength=size)
    first = np.concatenate([[0], np.cumsum(counts)])
    within = np.arange(major.size) - first[major]
    steps = -(-counts // SLOTS)
    lengths = np.asarray(_group_lengths(int(steps.max(initial=0))))
    group_of_row = np.where(counts > 0, np.searchsorted(lengths, steps), -1)
    # Each group costs its own loop (and compile time), so a group of fewer
    # than 1/64 of the rows joins the next longer one.
    sizes = np.bincount(group_of_row[counts > 0], minlength=lengths.size)
    used = np.flatnonzero(sizes)
    for group, following in itertools.pairwise(used):
        if sizes[group] < max(SLOTS, size // 64):
            group_of_row[group_of_row == group] = following
            sizes[following] += sizes[group]
    group_of_entry = group_of_row[major]

    rows, columns, groups, flat = [], [], [], np.zeros(major.size, np.int64)
    position = np.zeros(size, np.int64)
    offset = placed = 0
    for group, length in enumerate(lengths):
        members = np.flatnonzero(group_of_row == group)
        if members.size == 0:
            continue
        local = np.zeros(size, np.int64)
        local[members] = np.arange(members.size)
        chosen = np.flatnonzero(group_of_entry == group)
        step, slot = np.divmod(within[chosen], SLOTS)
        row = local[major[chosen]]
        shape = (int(length), members.size, SLOTS)
        group_columns = np.zeros(shape, np.int32)
        group_values = np.zeros(shape, dtype)
        group_columns[step, row, slot] = minor[chosen]
        group_values[step, row, slot] = values[chosen]
        flat[chosen] = offset + np.ravel_multi_index((step, row, slot), shape)
        position[members] = placed + np.arange(members.size)
        rows.append(jnp.asarray(members, jnp.int32))
        columns.append(jnp.asarray(group_columns))
        groups.append(jnp.asarray(group_values))
        offset += group_columns.size
        placed += members.size
    position[counts == 0] = placed
    slices = _Slices(
        tuple(rows), tuple(columns), tuple(groups), jnp.asarray(position, jnp.int32)
    )
    return slices, flat, offset


def _slot_sources(target: _Slices, flat_target, flat_source, total_source):
    """Index, for every slot of ``target``, of the same entry in the other copy."""
    sources = np.full(sum(c.size for c in target.columns), total_source, np.int64)
    sources[flat_target] = flat_source
    return tuple(
        jnp.asarray(group, jnp.int32)
        for group in _split_host(sources, [c.shape for c in target.columns])
    )


def _split_host(flat: np.ndarray, shapes) -> list[np.ndarray]:
    groups, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        groups.append(flat[start : start + size].reshape(shape))
        start += size
    return groups


def sparse_matrix(table, dtype=None) -> SparseMatrix:
    """Convert a sparse matrix to a :class:`SparseMatrix`, on the host.

    Duplicate entries are summed and entries that are exactly zero are
    dropped. The conversion sorts the entries twice, O(nnz log nnz).

    Args:
        table: a scipy.sparse matrix or array, a 2-D ``jax.experimental.sparse``
            BCOO or BCSR array (outside jit), or a :class:`SparseMatrix`.
        dtype: the dtype of the values; by default that of ``table``.

    Raises:
        TypeError: for any other type, or a BCOO array inside jit.
        ValueError: for a table that is not 2-D or has 2**31 entries or more.
    """
    if isinstance(table, SparseMatrix):
        return table if dtype is None else table.astype(dtype)
    shape = tuple(int(size) for size in table.shape)
    if len(shape) != 2:
        raise ValueError(f"expected a 2-D sparse table, got shape {shape}")
    rows, columns, values = host_coordinates(table)
    dtype = jax.dtypes.canonicalize_dtype(values.dtype if dtype is None else dtype)

    # Sum duplicates: sort by (row, column), then add runs of equal keys.
    keys = rows.astype(np.int64) * shape[1] + columns.astype(np.int64)
    keys, first = np.unique(keys, return_inverse=True)
    summed = np.bincount(first.ravel(), weights=values, minlength=keys.size)
    stored = summed != 0
    keys, summed = keys[stored], summed[stored].astype(dtype)
    if keys.size >= 2**31:
        raise ValueError(
            f"a sparse table may hold at most 2**31 - 1 entries, got {keys.size}"
        )
    rows, columns = np.divmod(keys, max(shape[1], 1))

    by_rows, flat_rows, total_rows = _slices(rows, columns, summed, shape[0], dtype)
    # The column copy sorts the same entries by (column, row).
    order = np.lexsort((rows, columns))
    by_columns, flat_columns, total_columns = _slices(
        columns[order], rows[order], summed[order], shape[1], dtype
    )
    to_columns = _slot_sources(by_columns, flat_columns, flat_rows[order], total_rows)
    to_rows = _slot_sources(by_rows, flat_rows[order], flat_columns, total_columns)
    return SparseMatrix(
        by_rows, by_columns, to_columns, to_rows, shape, keys.size, dtype
    )


def as_operand(table, dtype=None):
    """Return a data table in the form the loss terms take.

    Sparse input (see :func:`is_sparse`) becomes a :class:`SparseMatrix`;
    anything else becomes a JAX array. With ``dtype`` the values are
    converted to it.
    """
    if is_sparse(table):
        return sparse_matrix(table, dtype)
    return jnp.asarray(table, dtype)


# -- reductions used by chainnmf.terms ----------------------------------------


def inner(left, right) -> Array:
    """Return ``Σ_ij A_ij B_ij`` for two m x n matrices, at least one sparse.

    Only the stored entries of the sparse operand are visited. Two
    :class:`SparseMatrix` operands that are the same matrix need no gather.
    """
    if not is_sparse(left):
        left, right = right, left
    if isinstance(left, SparseMatrix):
        if isinstance(right, SparseMatrix):
            if right.by_rows is left.by_rows:
                return jnp.vdot(left.data, right.data)
            return inner(left.to_bcoo(), right.to_bcoo())
        if isinstance(right, jsparse.JAXSparse):
            return inner(left.to_bcoo(), right)
        rows, columns = left.coordinates()
        return jnp.vdot(left.data, jnp.asarray(right)[rows, columns])
    if isinstance(right, SparseMatrix):
        right = right.to_bcoo()
    if not is_sparse(right):
        right = jnp.asarray(right)
    return jnp.sum((left * right).data)


def diagonal_sum(matrix) -> Array:
    """Return the trace ``Σ_i A_ii`` of a square sparse matrix."""
    if isinstance(matrix, SparseMatrix):
        rows, columns = matrix.coordinates()
        return jnp.sum(jnp.where(rows == columns, matrix.data, 0))
    if isinstance(matrix, jsparse.BCSR):
        matrix = matrix.to_bcoo()
    matrix = jsparse.bcoo_update_layout(matrix, n_batch=0, n_dense=0)
    on_diagonal = matrix.indices[:, 0] == matrix.indices[:, 1]
    return jnp.sum(jnp.where(on_diagonal, matrix.data, 0))
