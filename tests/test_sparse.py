"""Sparse tables: the same losses, gradients and fits as the dense tables.

Each sparse table holds exactly the values of a dense table with exact zeros,
so the dense model (itself checked against NumPy in test_schema.py) is the
reference for every value here. Sparse input comes as scipy.sparse matrices
and as BCOO arrays, and both become a SparseMatrix before tracing.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from jax.experimental import sparse as jsparse

from chainnmf import ConvergenceWarning, Model, Table, split_gradient, total, trace
from chainnmf.mu import mu_step
from chainnmf.sparse import (
    SLOTS,
    SparseMatrix,
    as_operand,
    sampled_product,
    sparse_matrix,
)

FORMATS = {
    "scipy": sp.csr_matrix,
    "bcoo": lambda dense: jsparse.BCOO.from_scipy_sparse(sp.coo_matrix(dense)),
}

# Parents of each table, for every built-in family.
FAMILIES = {
    "vanilla": {"A": None},
    "multiview": {"A": None, "R": None},
    "chain": {"A": None, "B": "A", "C": "B"},
    "branch": {"A": None, "B": "A", "C": "B", "E": "B"},
    "tree": {"A": None, "R": None, "B": "A", "C": "B", "E": "B"},
}
SIZES = {None: 11, "A": 9, "R": 6, "B": 8, "C": 7, "E": 5}


@pytest.fixture(autouse=True)
def _ignore_iteration_limit():
    """Fits here stop at max_iter on purpose; that warning is tested elsewhere."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _sparse_dense(rng, shape, density=0.4):
    """A dense table with about ``1 - density`` exact zeros, one row all zero."""
    dense = rng.random(shape) * (rng.random(shape) < density)
    dense[1] = 0.0
    return dense


def _models(rng, family, losses, form):
    """Return the same model twice: with dense tables and with sparse ones.

    ``losses`` gives each table's loss in order, ``"f"`` for Frobenius and
    ``"k"`` for KL, or one letter for every table.
    """
    names = list(FAMILIES[family].items())
    losses = losses * len(names) if len(losses) == 1 else losses
    dense, sparse = [], []
    for (name, parent), letter in zip(names, losses):
        loss = {"f": "frobenius", "k": "kl"}[letter]
        values = _sparse_dense(rng, (SIZES[parent], SIZES[name]))
        dense.append(Table(name, values, parent=parent, loss=loss))
        sparse.append(Table(name, FORMATS[form](values), parent=parent, loss=loss))
    return Model(dense, 3), Model(sparse, 3)


def _converted(model):
    return {table.name: as_operand(table.data) for table in model.tables}


def _loss_and_splits(model, factors, data):
    """The loss and (∇⁺, ∇⁻) of every block, in one compiled call."""

    def evaluate(factors, data):
        splits = {
            block: split_gradient(model.loss, block, factors, data)
            for block in model.loss.factors
        }
        return model.loss.value(factors, data), splits

    return jax.jit(evaluate)(factors, data)


# (family, loss of each table, format). Mixed losses put both losses at the
# root and below it while keeping the number of compiled models small.
CASES = [
    ("vanilla", "f", "scipy"),
    ("vanilla", "k", "bcoo"),
    ("multiview", "fk", "bcoo"),
    ("chain", "kfk", "scipy"),
    ("branch", "fkfk", "bcoo"),
]


@pytest.mark.parametrize(("family", "losses", "form"), CASES)
def test_sparse_loss_and_split_match_dense(rng, family, losses, form):
    """Init, the loss and (∇⁺, ∇⁻) of every block equal the dense model's."""
    dense, sparse = _models(rng, family, losses, form)
    factors = dense.init(3)
    sparse_start = sparse.init(3)
    for name, value in factors.items():
        np.testing.assert_allclose(sparse_start[name], value, rtol=1e-12)

    sparse_data = _converted(sparse)
    assert all(isinstance(v, SparseMatrix) for v in sparse_data.values())
    expected_loss, expected_splits = _loss_and_splits(dense, factors, _converted(dense))
    got_loss, got_splits = _loss_and_splits(sparse, factors, sparse_data)
    np.testing.assert_allclose(got_loss, expected_loss, rtol=1e-10)
    for block, (plus, minus) in expected_splits.items():
        got_plus, got_minus = got_splits[block]
        np.testing.assert_allclose(got_plus, plus, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got_minus, minus, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("family", "losses", "form"),
    [("vanilla", "f", "bcoo"), ("vanilla", "k", "scipy"), ("tree", "fkkfk", "scipy")],
)
def test_sparse_fit_matches_dense(rng, family, losses, form):
    """Model.fit gives the same loss history and factors for sparse and dense tables.

    The tree contains every family at once: a root table, a second table
    without a parent (multi-view), a chain below the root and a branch, with
    both losses.
    """
    dense, sparse = _models(rng, family, losses, form)
    expected = dense.fit(3, max_iter=15, tol=0.0)
    result = sparse.fit(3, max_iter=15, tol=0.0)
    np.testing.assert_allclose(result.loss_history, expected.loss_history, rtol=1e-10)
    for name, value in expected.factors.items():
        np.testing.assert_allclose(result.factors[name], value, rtol=1e-9, atol=1e-12)


def test_sparse_restarts_match_single_fits(rng):
    """fit_restarts (vmap over starts) on sparse tables equals one dense fit per seed."""
    dense, sparse = _models(rng, "vanilla", "k", "scipy")
    results = sparse.fit_restarts([3, 4], max_iter=10, tol=0.0)
    for seed, result in zip([3, 4], results):
        expected = dense.fit(seed, max_iter=10, tol=0.0)
        for name, value in expected.factors.items():
            np.testing.assert_allclose(result.factors[name], value, rtol=1e-9)


def test_scipy_and_bcoo_convert_alike(rng):
    """A scipy.sparse matrix and a BCOO array of the same values store the same arrays."""
    dense = _sparse_dense(rng, (9, 12))
    from_scipy = sparse_matrix(sp.csr_matrix(dense))
    from_bcoo = sparse_matrix(FORMATS["bcoo"](dense))
    leaves = jax.tree_util.tree_leaves(from_scipy)
    assert jax.tree_util.tree_structure(from_bcoo) == jax.tree_util.tree_structure(
        from_scipy
    )
    for got, expected in zip(jax.tree_util.tree_leaves(from_bcoo), leaves):
        np.testing.assert_array_equal(got, expected)


def _avals(jaxpr):
    """Yield the abstract value of every variable of a jaxpr, nested ones too."""
    for equation in jaxpr.eqns:
        for variable in (*equation.invars, *equation.outvars):
            if hasattr(variable, "aval"):
                yield variable.aval
        for value in equation.params.values():
            inner = getattr(value, "jaxpr", None)
            if inner is not None:
                yield from _avals(getattr(inner, "jaxpr", inner))


@pytest.mark.parametrize("loss", ["frobenius", "kl"])
def test_sparse_sweep_never_forms_dense_table(rng, loss):
    """No array in a sparse sweep or loss has m·n entries, or nnz·k of them.

    The table is 60 x 50 with about 300 entries and k = 4; the largest arrays
    allowed are the padded slots of the stored entries and the factors.
    """
    values = _sparse_dense(rng, (60, 50), density=0.1)
    model = Model([Table("A", sp.csr_matrix(values), loss=loss)], 4)
    data = _converted(model)
    factors = model.init(0)
    nnz = data["A"].nnz
    limit = min(60 * 50, nnz * 4)

    def sweep_and_loss(factors):
        updated = mu_step(model.loss, factors, data)
        return updated, model.loss.value(updated, data)

    sizes = [
        aval.size for aval in _avals(jax.make_jaxpr(sweep_and_loss)(factors).jaxpr)
    ]
    assert sizes
    assert max(sizes) < limit, f"an array of {max(sizes)} entries was formed"


def _paper_traces(X, Y, W, H, H2):
    """The traces and totals of the sparse-operand test, in one list."""
    return [
        trace(X.T, X),
        trace(X.T, W, H),
        trace(H.T, W.T, X),
        trace(Y.T, X.T, W, H2),
        trace(H2.T, W.T, X, Y),
        trace(H2.T, W.T, X, X.T, W, H2),
        total(X),
        total(X.T, W, H),
        total(W.T, X, Y),
    ]


@pytest.mark.parametrize("form", ["bcoo", "sparse_matrix"])
def test_trace_and_total_accept_sparse_operands(rng, form):
    """trace/total with sparse X and Y, under jit, equal the dense NumPy results."""
    X = _sparse_dense(rng, (12, 9))
    Y = _sparse_dense(rng, (9, 14))
    W, H, H2 = rng.random((12, 3)), rng.random((3, 9)), rng.random((3, 14))
    if form == "bcoo":
        Xs, Ys = FORMATS["bcoo"](X), FORMATS["bcoo"](Y)
    else:
        Xs, Ys = as_operand(sp.csr_matrix(X)), as_operand(sp.csr_matrix(Y))
    values = jax.jit(_paper_traces)(Xs, Ys, W, H, H2)
    expected = [
        np.trace(X.T @ X),
        np.trace(X.T @ W @ H),
        np.trace(H.T @ W.T @ X),
        np.trace(Y.T @ X.T @ W @ H2),
        np.trace(H2.T @ W.T @ X @ Y),
        np.trace(H2.T @ W.T @ X @ X.T @ W @ H2),
        X.sum(),
        np.sum(X.T @ W @ H),
        np.sum(W.T @ X @ Y),
    ]
    for position, (value, want) in enumerate(zip(values, expected)):
        np.testing.assert_allclose(value, want, rtol=1e-10, err_msg=str(position))


def test_trace_converts_scipy_operands(rng):
    """A scipy.sparse operand is converted on the host: tr(Xᵀ W H) as in NumPy."""
    X = _sparse_dense(rng, (12, 9))
    W, H = rng.random((12, 3)), rng.random((3, 9))
    value = trace(sp.csr_matrix(X).T, W, H)
    np.testing.assert_allclose(value, np.trace(X.T @ W @ H), rtol=1e-10)


@pytest.mark.parametrize("form", ["bcoo", "sparse_matrix"])
def test_trace_gradient_with_sparse_operand(rng, form):
    """∂/∂W tr(H2ᵀ Wᵀ X Xᵀ W H2) = 2 X Xᵀ W H2 H2ᵀ with X sparse, under jit."""
    X = _sparse_dense(rng, (12, 9))
    W, H2 = rng.random((12, 3)), rng.random((3, 5))
    Xs = FORMATS["bcoo"](X) if form == "bcoo" else as_operand(sp.csr_matrix(X))

    @jax.jit
    def gradient(W, Xs):
        return jax.grad(lambda W: trace(H2.T, W.T, Xs, Xs.T, W, H2))(W)

    expected = 2 * X @ X.T @ W @ H2 @ H2.T
    np.testing.assert_allclose(gradient(W, Xs), expected, rtol=1e-10)


def test_sparse_matrix_products_and_transpose(rng):
    """V @ x, V.T @ y, x @ V, sums and todense agree with the dense table."""
    dense = _sparse_dense(rng, (13, 21), density=0.3)
    dense[:, 4] = 0.0
    V = sparse_matrix(sp.csr_matrix(dense))
    X, y = rng.random((21, 3)), rng.random(13)
    np.testing.assert_allclose(V @ X, dense @ X, rtol=1e-12)
    np.testing.assert_allclose(V.T @ y, dense.T @ y, rtol=1e-12)
    np.testing.assert_allclose(X.T @ V.T, X.T @ dense.T, rtol=1e-12)
    np.testing.assert_allclose(y @ V, y @ dense, rtol=1e-12)
    np.testing.assert_allclose(V.sum(0), dense.sum(0), rtol=1e-12)
    np.testing.assert_allclose(V.sum(1), dense.sum(1), rtol=1e-12)
    np.testing.assert_allclose(V.T.todense(), dense.T)
    assert V.nnz == np.count_nonzero(dense)
    assert V.shape == (13, 21)
    assert V.T.shape == (21, 13)


def test_sparse_matrix_sums_duplicates_and_drops_zeros():
    """Repeated BCOO entries add up; explicit zeros are not stored."""
    indices = np.array([[0, 1], [0, 1], [2, 0], [1, 1]])
    values = np.array([1.0, 2.0, 0.0, 5.0])
    V = sparse_matrix(jsparse.BCOO((values, indices), shape=(3, 2)))
    expected = np.array([[0.0, 3.0], [0.0, 5.0], [0.0, 0.0]])
    np.testing.assert_array_equal(V.todense(), expected)
    assert V.nnz == 2


def test_sparse_matrix_pads_rows_to_whole_steps(rng):
    """Every stored row is padded with zero slots to a multiple of SLOTS."""
    dense = _sparse_dense(rng, (30, 40), density=0.5)
    V = sparse_matrix(sp.csr_matrix(dense))
    for columns in V.by_rows.columns:
        assert columns.shape[-1] == SLOTS
    assert V.data.size >= V.nnz
    assert np.count_nonzero(V.data) == V.nnz


def test_empty_sparse_matrix(rng):
    """A table with no stored entries gives zero products and zero samples."""
    V = sparse_matrix(sp.csr_matrix((4, 6)))
    np.testing.assert_array_equal(V @ rng.random((6, 2)), np.zeros((4, 2)))
    np.testing.assert_array_equal(V.T @ rng.random(4), np.zeros(6))
    assert sampled_product(V, rng.random((4, 2)), rng.random((2, 6))).size == 0


def test_sampled_product_and_gradients(rng):
    """(Z H) at the stored entries, and its gradients, against dense NumPy.

    For g(Z, H) = Σ_e c_e (Z H)_e, ∂g/∂Z = C Hᵀ and ∂g/∂H = Zᵀ C, with C the
    matrix holding c_e at the stored entries.
    """
    dense = _sparse_dense(rng, (10, 7), density=0.5)
    V = sparse_matrix(sp.csr_matrix(dense))
    Z, H = rng.random((10, 3)), rng.random((3, 7))
    rows, columns = (np.asarray(a) for a in V.coordinates())
    sampled = sampled_product(V, Z, H)
    np.testing.assert_allclose(sampled, (Z @ H)[rows, columns], rtol=1e-12)

    weights = np.asarray(V.data) ** 2
    C = np.zeros_like(dense)
    np.add.at(C, (rows, columns), weights)
    grad_z, grad_h = jax.grad(
        lambda Z, H: jnp.vdot(weights, sampled_product(V, Z, H)), argnums=(0, 1)
    )(Z, H)
    np.testing.assert_allclose(grad_z, C @ H.T, rtol=1e-12)
    np.testing.assert_allclose(grad_h, Z.T @ C, rtol=1e-12)


def test_sparse_products_under_vmap(rng):
    """A batch of dense operands goes through one sparse product per call."""
    dense = _sparse_dense(rng, (9, 8))
    V = sparse_matrix(sp.csr_matrix(dense))
    batch = rng.random((4, 8, 2))
    np.testing.assert_allclose(
        jax.vmap(lambda X: V @ X)(batch), np.einsum("ij,bjk->bik", dense, batch)
    )
    lefts = rng.random((4, 9, 2))
    H = rng.random((2, 8))
    rows, columns = (np.asarray(a) for a in V.coordinates())
    sampled = jax.vmap(lambda Z: sampled_product(V, Z, H))(lefts)
    for index in range(4):
        expected = (lefts[index] @ H)[rows, columns]
        np.testing.assert_allclose(sampled[index], expected, rtol=1e-12)


def test_bcoo_inside_jit_is_rejected_with_advice(rng):
    """A BCOO table traced by jit cannot be converted; the error says how to fix it."""
    table = FORMATS["bcoo"](_sparse_dense(rng, (5, 4)))
    with pytest.raises(TypeError, match="outside jit"):
        jax.jit(sparse_matrix)(table)
