"""Built-in models: validation, loss values against NumPy, and the O(nnz · k) form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainnmf import (
    ConvergenceWarning,
    Model,
    Status,
    Table,
    chain,
    multiview,
    vanilla,
)


def _dense_divergence(V, model, loss):
    if loss == "frobenius":
        return np.sum((V - model) ** 2)
    positive = V > 0
    return (
        np.sum(V[positive] * np.log(V[positive] / model[positive]))
        - V.sum()
        + model.sum()
    )


@pytest.fixture
def tree(rng):
    """Root A (9 x 7) with children B (7 x 6) and multi-view R (9 x 4); C and E under B."""
    A = rng.random((9, 7))
    B = rng.random((7, 6))
    B[0, 0] = 0.0
    return {
        "A": A,
        "R": rng.random((9, 4)),
        "B": B,
        "C": rng.random((6, 5)),
        "E": rng.random((6, 3)),
    }


@pytest.mark.parametrize("loss", ["frobenius", "kl"])
def test_table_losses_match_dense_numpy(tree, loss, rng):
    """Each table's loss equals D(V_t ‖ M_tᵀ W H_t) with the dense path product.

    M_t is the product of the ancestors' tables, formed explicitly in NumPy;
    D is the squared Frobenius distance or the generalized KL divergence.
    """
    model = Model(
        [
            Table("A", tree["A"], loss=loss),
            Table("R", tree["R"], loss=loss, weight=0.5),
            Table("B", tree["B"], parent="A", loss=loss),
            Table("C", tree["C"], parent="B", loss=loss),
            Table("E", tree["E"], parent="B", loss=loss, weight=2.0),
        ],
        rank=3,
    )
    factors = model.init(1)
    W = np.asarray(factors["W"])
    paths = {"A": W, "R": W}
    paths["B"] = tree["A"].T @ W
    paths["C"] = tree["B"].T @ paths["B"]
    paths["E"] = tree["B"].T @ paths["B"]
    losses = model.table_losses(factors)
    total = 0.0
    for name, Z in paths.items():
        expected = _dense_divergence(
            tree[name], Z @ np.asarray(factors[f"H_{name}"]), loss
        )
        np.testing.assert_allclose(losses[name], expected, rtol=1e-10)
        total += model.table(name).weight * expected
    np.testing.assert_allclose(model.loss.value(factors, model.data), total, rtol=1e-10)


def test_gradients_never_form_data_products(rng, dot_shapes):
    """No product of two data tables appears in the gradient of a chain.

    With k = 2 every matrix product in the jaxpr of the loss gradient must have
    a dimension of at most 2 (k-column products and k x k Grams only).
    """
    model = chain([rng.random((30, 25)), rng.random((25, 20)), rng.random((20, 15))], 2)
    factors = model.init(0)
    data = {name: jnp.asarray(v) for name, v in model.data.items()}
    shapes = []
    for block in model.loss.factors:

        def value(theta, block=block):
            return model.loss.value({**factors, block: theta}, data)

        shapes += dot_shapes(jax.grad(value), factors[block])
    assert shapes
    for shape in shapes:
        assert len(shape) < 2 or min(shape) <= 2, f"a {shape} product was formed"


def test_chain_names_and_parents(rng):
    """chain() names tables A, B, … and links each to the one before."""
    model = chain([rng.random((4, 3)), rng.random((3, 5)), rng.random((5, 2))], 2)
    assert [t.name for t in model.tables] == ["A", "B", "C"]
    assert [t.parent for t in model.tables] == [None, "A", "B"]
    assert model.path("C") == ("A", "B")
    assert model.loss.factors == ("W", "H_A", "H_B", "H_C")


def test_multiview_shares_rows(rng):
    """multiview() gives every table parent None and its own weight."""
    model = multiview(
        {"X": rng.random((4, 3)), "Y": rng.random((4, 6))}, 2, weights={"Y": 0.1}
    )
    assert [t.parent for t in model.tables] == [None, None]
    assert model.table("Y").weight == 0.1


def test_init_matches_data_scale(rng):
    """The initial model Z_t H_t has the mean of V_t in expectation (within 30 %)."""
    V = 5.0 * rng.random((200, 150))
    factors = vanilla(V, 4).init(0)
    mean = float(jnp.mean(factors["W"] @ factors["H_V"]))
    assert abs(mean - V.mean()) < 0.3 * V.mean()


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ([Table("A", np.ones((3, 4))), Table("A", np.ones((3, 2)))], "used twice"),
        ([Table("W", np.ones((3, 4)))], "reserved"),
        ([Table("H_A", np.ones((3, 4)))], "reserved"),
        ([Table("A", np.ones((3, 4)), loss="l1")], "loss must be one of"),
        ([Table("A", np.ones((3, 4)), weight=-1.0)], "weight must be"),
        ([Table("A", np.ones(4))], "expected a 2-D table"),
        (
            [Table("A", np.ones((3, 4))), Table("B", np.ones((3, 2)), parent="A")],
            "4 columns",
        ),
        (
            [Table("A", np.ones((3, 4))), Table("B", np.ones((5, 2)))],
            "rows must be those of W",
        ),
        ([Table("B", np.ones((4, 2)), parent="A")], "listed before it"),
    ],
)
def test_model_rejects_bad_tables(tables, message):
    """Each invalid tree raises a ValueError that names the table and the problem."""
    with pytest.raises(ValueError, match=message):
        Model(tables, rank=2)


def test_model_rejects_bad_rank():
    """A rank below 1 is rejected."""
    with pytest.raises(ValueError, match="rank must be"):
        vanilla(np.ones((3, 3)), 0)


def test_kl_zero_model_at_positive_data_stays_finite(rng):
    """A link with an all-zero column makes a row of the model exactly zero.

    Where V > 0 but the model is 0, log(model) is taken at the smallest normal
    number, a constant, so the gradient there is 0 and no NaN reaches W.
    """
    A = rng.random((6, 4))
    A[:, 1] = 0.0
    B = 5.0 + rng.random((4, 3))
    model = chain([A, B], 2, loss="kl", weights=[1.0, 3.0])
    with pytest.warns(ConvergenceWarning):
        result = model.fit(0, max_iter=20, tol=0.0, eval_every=1)
    assert result.status == Status.MAX_ITER
    assert result.iterations == 20
    assert np.all(np.isfinite(result.loss_history))
