"""Checks of users' terms: wrong signs are found, and oracle comparisons report errors.

Expected values: a term written as ``-tr(Xᵀ W H)`` decreases in ``W`` and
``H`` on the nonnegative orthant, so its gradient has negative entries at any
positive point. The rules from :mod:`chainnmf.oracles` equal the engine's
split up to round-off (see tests/test_oracles.py), and the as-printed rules
differ from it.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainnmf import Loss, Model, Table, Term, chain, trace
from chainnmf.check import SignFinding, check_term_signs, compare_with_rules
from chainnmf.oracles import (
    chain_frobenius_appendix_as_printed,
    chain_frobenius_eq27_as_printed,
    model_rules,
)

jax.config.update("jax_enable_x64", True)

RANK = 3


def draw(rng, shape):
    return jnp.asarray(rng.uniform(0.1, 1.0, shape))


@pytest.fixture(scope="module")
def one_link():
    """Return ``(data, factors)`` of a one-link chain X (7 x 6) → Y (6 x 5)."""
    rng = np.random.default_rng(11)
    data = {"X": draw(rng, (7, 6)), "Y": draw(rng, (6, 5))}
    factors = {
        "W": draw(rng, (7, RANK)),
        "H": draw(rng, (RANK, 6)),
        "H2": draw(rng, (RANK, 5)),
    }
    return data, factors


def frobenius_loss(cross_term: Term) -> Loss:
    """Build ``‖X − W H‖²`` with ``cross_term`` standing for ``−2 tr(Xᵀ W H)``."""
    return Loss(
        [
            Term(lambda X: trace(X.T, X), name="norm"),
            cross_term,
            Term(lambda W, H: trace(H.T, W.T, W, H), name="gram"),
        ],
        factors=("W", "H"),
    )


# -- check_term_signs -------------------------------------------------------------


def test_sign_check_finds_minus_inside(one_link):
    """A minus sign inside a split="sign" term gives negative gradients in W and H."""
    data, factors = one_link
    wrong = Term(lambda X, W, H: -trace(X.T, W, H), weight=2.0, name="cross")
    loss = frobenius_loss(wrong)

    findings = check_term_signs(loss, factors, data)

    assert [(f.term, f.term_index, f.factor) for f in findings] == [
        ("cross", 1, "W"),
        ("cross", 1, "H"),
    ]
    for finding in findings:
        assert isinstance(finding, SignFinding)
        assert finding.value < 0
        assert np.isfinite(finding.value)
        assert finding.max_abs > 0
        assert 0 <= finding.point < 5
        assert "cross" in str(finding)
        assert finding.factor in str(finding)


def test_sign_check_reports_worst_entry(one_link):
    """The reported entry is the minimum of the gradient −X Hᵀ at its point."""
    data, factors = one_link
    loss = frobenius_loss(Term(lambda X, W, H: -trace(X.T, W, H), name="cross"))

    finding = check_term_signs(loss, factors, data, points=1, seed=4)[0]

    # The points draw W, then H, from default_rng(seed), in the loss's order.
    rng = np.random.default_rng(4)
    rng.uniform(size=(7, RANK))
    H = rng.uniform(size=(RANK, 6))
    gradient = -np.asarray(data["X"]) @ H.T  # d/dW of −tr(Xᵀ W H)
    assert finding.factor == "W"
    assert finding.point == 0
    assert finding.index == np.unravel_index(np.argmin(gradient), gradient.shape)
    assert finding.value == pytest.approx(gradient.min(), rel=1e-12)
    assert finding.max_abs == pytest.approx(np.abs(gradient).max(), rel=1e-12)


def test_sign_check_passes_correct_loss(one_link):
    """The same term with sign=-1 outside the function has a nonnegative gradient."""
    data, factors = one_link
    right = Term(lambda X, W, H: trace(X.T, W, H), sign=-1, weight=2.0, name="cross")

    assert check_term_signs(frobenius_loss(right), factors, data) == []


@pytest.mark.parametrize("loss", ["frobenius", "kl"])
def test_sign_check_passes_model_terms(loss):
    """The terms that Model builds are nondecreasing in every factor."""
    rng = np.random.default_rng(12)
    tables = [rng.uniform(0.1, 1.0, shape) for shape in ((7, 6), (6, 5))]
    model = chain(tables, RANK, loss=loss)
    factors = model.init(0)

    assert check_term_signs(model.loss, factors, model.data, points=3) == []


def test_sign_check_skips_elementwise_terms(one_link):
    """A split="elementwise" term may have either sign, so it is not reported."""
    data, factors = one_link
    term = Term(lambda X, W, H: -trace(X.T, W, H), name="cross", split="elementwise")

    assert check_term_signs(frobenius_loss(term), factors, data) == []


def test_sign_check_reports_zero_weight_term(one_link):
    """A wrong term with weight 0 is still declared wrong."""
    data, factors = one_link
    wrong = Term(lambda X, W, H: -trace(X.T, W, H), weight=0.0, name="cross")

    findings = check_term_signs(frobenius_loss(wrong), factors, data)

    assert {f.factor for f in findings} == {"W", "H"}


def test_sign_check_reports_non_finite_gradient(one_link):
    """A gradient with NaN entries is reported, with the NaN as its value."""
    data, factors = one_link
    broken = Term(lambda W, H: jnp.sum(jnp.sqrt(W - 2.0)) + trace(H.T, W.T, W, H))
    loss = Loss([broken], factors=("W", "H"))

    findings = check_term_signs(loss, factors, data)

    assert [f.factor for f in findings] == ["W"]
    assert np.isnan(findings[0].value)
    assert "non-finite" in str(findings[0])


def test_sign_check_is_deterministic(one_link):
    """The same seed draws the same points, so the findings are equal."""
    data, factors = one_link
    loss = frobenius_loss(Term(lambda X, W, H: -trace(X.T, W, H), name="cross"))

    first = check_term_signs(loss, factors, data, seed=7)
    second = check_term_signs(loss, factors, data, seed=7)

    assert first == second


def test_sign_finding_is_frozen(one_link):
    data, factors = one_link
    loss = frobenius_loss(Term(lambda X, W, H: -trace(X.T, W, H), name="cross"))
    finding = check_term_signs(loss, factors, data)[0]

    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.value = 0.0


@pytest.mark.parametrize("points", [0, -1, 1.5, True])
def test_sign_check_rejects_invalid_points(one_link, points):
    data, factors = one_link
    loss = frobenius_loss(Term(lambda X, W, H: trace(X.T, W, H), sign=-1))

    with pytest.raises(ValueError, match="points"):
        check_term_signs(loss, factors, data, points=points)


def test_sign_check_rejects_missing_factor(one_link):
    data, factors = one_link
    loss = frobenius_loss(Term(lambda X, W, H: trace(X.T, W, H), sign=-1))

    with pytest.raises(ValueError, match="'H'"):
        check_term_signs(loss, {"W": factors["W"]}, data)


# -- compare_with_rules ---------------------------------------------------------


def two_link_model(rows: int = 7) -> Model:
    rng = np.random.default_rng(13)
    shapes = ((rows, 6), (6, 5), (5, 4))
    tables = [jnp.asarray(rng.uniform(0.1, 1.0, shape)) for shape in shapes]
    return chain(tables, RANK)


def test_compare_model_with_tree_rules():
    """Expected: round-off only, since tree_rules is the model's exact split / 2."""
    model = two_link_model()
    factors = model.init(1)

    errors = compare_with_rules(
        model.loss, factors, model.data, model_rules(model, factors), scale=2.0
    )

    assert list(errors) == ["W", "H_A", "H_B", "H_C"]
    for name, error in errors.items():
        assert error < 1e-12, name


def test_compare_mixed_tree_with_tree_rules():
    """Expected: round-off only, with frobenius_scale=2 and scale 1."""
    rng = np.random.default_rng(14)
    model = Model(
        [
            Table("A", rng.uniform(0.1, 1.0, (7, 6)), weight=0.5),
            Table("B", rng.uniform(0.1, 1.0, (6, 5)), parent="A", loss="kl"),
            Table("C", rng.uniform(0.1, 1.0, (7, 4)), loss="kl", weight=2.0),
        ],
        RANK,
    )
    factors = model.init(2)
    rules = model_rules(model, factors, frobenius_scale=2.0)

    errors = compare_with_rules(model.loss, factors, model.data, rules)

    for name, error in errors.items():
        assert error < 1e-12, name


def test_compare_finds_appendix_swap():
    """Expected: a large W error, since the appendix code swaps the chained parts."""
    rng = np.random.default_rng(15)
    model = chain([rng.uniform(0.1, 1.0, (7, 6)), rng.uniform(0.1, 1.0, (6, 5))], RANK)
    factors = model.init(3)
    f = {name: np.asarray(value) for name, value in factors.items()}
    rules = chain_frobenius_appendix_as_printed(
        model.data["A"], model.data["B"], f["W"], f["H_A"], f["H_B"]
    )

    errors = compare_with_rules(model.loss, factors, model.data, rules, scale=2.0)

    assert errors["W"] > 1e-3
    assert errors["H_A"] < 1e-12
    assert errors["H_B"] < 1e-12


def test_compare_finds_eq27_missing_w():
    """Expected: a large W error, since eq 27 as printed omits W (needs m = k)."""
    rng = np.random.default_rng(16)
    shapes = ((RANK, 6), (6, 5), (5, 4), (4, 3))
    tables = [rng.uniform(0.1, 1.0, shape) for shape in shapes]
    model = chain(tables, RANK)
    factors = model.init(4)
    rules = chain_frobenius_eq27_as_printed(
        tables, factors["W"], [factors[f"H_{name}"] for name in "ABCD"]
    )

    errors = compare_with_rules(model.loss, factors, model.data, rules, scale=2.0)

    assert errors["W"] > 1e-3
    for name in ("H_A", "H_B", "H_C", "H_D"):
        assert errors[name] < 1e-12, name


def test_compare_wrong_scale_is_large():
    """Expected: about 1, since the Frobenius split is twice the rules, not equal."""
    model = two_link_model()
    factors = model.init(1)

    errors = compare_with_rules(
        model.loss, factors, model.data, model_rules(model, factors), scale=1.0
    )

    for name, error in errors.items():
        assert error == pytest.approx(1.0, rel=1e-9), name


def test_compare_subset_of_factors():
    """Only the factors named in rules are compared."""
    model = two_link_model()
    factors = model.init(1)
    rules = {"H_B": model_rules(model, factors)["H_B"]}

    errors = compare_with_rules(model.loss, factors, model.data, rules, scale=2.0)

    assert list(errors) == ["H_B"]


def test_compare_rejects_unknown_factor():
    model = two_link_model()
    factors = model.init(1)
    rules = {"H_Z": model_rules(model, factors)["H_A"]}

    with pytest.raises(ValueError, match="'H_Z'"):
        compare_with_rules(model.loss, factors, model.data, rules)


def test_compare_rejects_wrong_shape():
    model = two_link_model()
    factors = model.init(1)
    numerator, denominator = model_rules(model, factors)["H_A"]
    rules = {"H_A": (numerator.T, denominator)}

    with pytest.raises(ValueError, match="numerator"):
        compare_with_rules(model.loss, factors, model.data, rules)
