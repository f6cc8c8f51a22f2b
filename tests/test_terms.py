"""Terms, losses and the trace/total helpers, checked against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainnmf import Loss, Term, total, trace


def test_trace_matches_numpy(rng):
    """tr(A B C) against NumPy's np.trace of the explicit product."""
    A, B, C = rng.random((4, 6)), rng.random((6, 3)), rng.random((3, 4))
    np.testing.assert_allclose(trace(A, B, C), np.trace(A @ B @ C), rtol=1e-12)


def test_trace_single_matrix(rng):
    """tr(A) of one square matrix against np.trace."""
    A = rng.random((5, 5))
    np.testing.assert_allclose(trace(A), np.trace(A), rtol=1e-12)


def test_total_matches_numpy(rng):
    """1ᵀ A B 1 against the NumPy sum of the explicit product."""
    A, B = rng.random((7, 3)), rng.random((3, 9))
    np.testing.assert_allclose(total(A, B), np.sum(A @ B), rtol=1e-12)


def test_trace_never_forms_data_gram(rng, dot_shapes):
    """tr(H2ᵀ Wᵀ X Xᵀ W H2) is contracted through k-column products only.

    X is 40 x 30 and k = 3, so any product wider than 3 on both sides (such as
    the 40 x 40 X Xᵀ) would mean the contraction order was not optimized, in
    the value or in its gradient.
    """
    X = jnp.asarray(rng.random((40, 30)))
    W = jnp.asarray(rng.random((40, 3)))
    H2 = jnp.asarray(rng.random((3, 20)))

    def value(W):
        return trace(H2.T, W.T, X, X.T, W, H2)

    for shape in dot_shapes(jax.grad(value), W):
        assert len(shape) < 2 or min(shape) <= 3, f"a {shape} product was formed"


def test_trace_rejects_non_chaining_shapes(rng):
    """Operands whose inner dimensions differ raise, naming both positions."""
    with pytest.raises(ValueError, match="operands 0 and 1 do not chain"):
        trace(rng.random((3, 4)), rng.random((5, 3)))


def test_trace_rejects_non_square_product(rng):
    """A product that is not square has no trace."""
    with pytest.raises(ValueError, match="not square"):
        trace(rng.random((3, 4)), rng.random((4, 5)))


def test_term_takes_argument_names_from_signature():
    """A term's args default to the parameter names of its function."""
    term = Term(lambda V, W, H: trace(V.T, W, H), sign=-1, weight=2.0)
    assert term.args == ("V", "W", "H")
    assert term.sign == -1
    assert term.weight == 2.0


def test_term_evaluate_applies_sign_and_weight(rng):
    """evaluate returns s · λ · f, here -2 · tr(Vᵀ W H)."""
    V, W, H = rng.random((4, 5)), rng.random((4, 2)), rng.random((2, 5))
    term = Term(lambda V, W, H: trace(V.T, W, H), sign=-1, weight=2.0)
    expected = -2.0 * np.trace(V.T @ W @ H)
    np.testing.assert_allclose(term.evaluate({"V": V, "W": W, "H": H}), expected)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sign": 0}, "sign must be"),
        ({"weight": -1.0}, "weight must be"),
        ({"weight": float("nan")}, "weight must be"),
        ({"split": "both"}, "split must be"),
    ],
)
def test_term_rejects_bad_options(options, message):
    """Invalid sign, weight or split values raise with the value named."""
    with pytest.raises(ValueError, match=message):
        Term(lambda W: jnp.sum(W), **options)


def test_loss_rejects_factor_without_term():
    """A factor that no term takes could never be updated."""
    with pytest.raises(ValueError, match="appear in no term"):
        Loss([Term(lambda W: jnp.sum(W))], factors=("W", "H"))


def test_loss_lists_data_names():
    """Every argument that is not a factor is data, in first-use order."""
    loss = Loss(
        [Term(lambda V: trace(V.T, V)), Term(lambda V, W, H: trace(V.T, W, H))],
        factors=("W", "H"),
    )
    assert loss.data_names == ("V",)


def test_loss_value_is_frobenius_distance(rng):
    """The three-term expansion of ‖V − WH‖² equals the NumPy distance."""
    V, W, H = rng.random((6, 5)), rng.random((6, 2)), rng.random((2, 5))
    loss = Loss(
        [
            Term(lambda V: trace(V.T, V)),
            Term(lambda V, W, H: trace(V.T, W, H), sign=-1, weight=2.0),
            Term(lambda W, H: trace(H.T, W.T, W, H)),
        ],
        factors=("W", "H"),
    )
    expected = np.sum((V - W @ H) ** 2)
    np.testing.assert_allclose(loss.value({"W": W, "H": H}, {"V": V}), expected)
