"""The engine's gradient split against the analytic rules of chained NMF, in float64.

Every expected value comes from :mod:`chainnmf.oracles`, which forms the
published rules (eqs 2-3, 6-7, 13-17, 20-25, 27-32 of "Optimizing NMF
Clustering Loss Functions Using Relational Table Flow of Information for
Hidden Knowledge Discovery", corrected where noted) with dense NumPy products.
The engine's ``(∇⁺, ∇⁻)`` come from :func:`chainnmf.split_gradient`, which
never forms those products. For Frobenius tables ``∇⁻ = 2 · numerator`` and
``∇⁺ = 2 · denominator``, and for KL tables the factor is 1.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainnmf import Loss, Model, Table, Term, split_gradient, total, trace, vanilla
from chainnmf.oracles import (
    chain_frobenius_appendix_as_printed,
    chain_frobenius_eq27_as_printed,
    chain_frobenius_one_link,
    chain_kl_one_link,
    model_rules,
    multiview_frobenius,
    tree_rules,
    vanilla_frobenius,
    vanilla_kl,
)
from chainnmf.schema import factor_name

jax.config.update("jax_enable_x64", True)

RTOL = 1e-10  # relative tolerance in float64, as in tests/conftest.py
RANK = 3

# A → B → C → D is the chain, E branches off B, and F and G are extra views
# that share the rows of W with A. E, F and G repeat the shapes of C and A,
# because every new shape makes JAX compile its operations again.
SHAPES = {
    "A": (7, 6),
    "B": (6, 5),
    "C": (5, 4),
    "D": (4, 3),
    "E": (5, 4),
    "F": (7, 6),
    "G": (7, 6),
}
PARENTS = {"A": None, "B": "A", "C": "B", "D": "C", "E": "B", "F": None, "G": None}

STRUCTURES = {
    "multiview_2": ("A", "F"),
    "multiview_3": ("A", "F", "G"),
    "chain_1_link": ("A", "B"),
    "chain_2_links": ("A", "B", "C"),
    "chain_3_links": ("A", "B", "C", "D"),
    "branch": ("A", "B", "C", "E"),
}


def draw_tables(seed: int = 0) -> dict[str, np.ndarray]:
    """Draw every table with U(0.1, 1) entries, so no entry is near 0."""
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(0.1, 1.0, shape) for name, shape in SHAPES.items()}


TABLES = draw_tables()


def build_model(names, losses="frobenius", weights=None) -> Model:
    """Build the model of the tables ``names`` with the parents of ``PARENTS``."""
    if isinstance(losses, str):
        losses = {name: losses for name in names}
    weights = weights or {}
    tables = [
        Table(
            name,
            jnp.asarray(TABLES[name]),
            parent=PARENTS[name],
            loss=losses[name],
            weight=weights.get(name, 1.0),
        )
        for name in names
    ]
    return Model(tables, RANK)


def draw_factors(model: Model, seed: int = 1) -> dict[str, jax.Array]:
    """Draw ``W`` and every ``H_t`` of ``model`` with U(0.1, 1) entries."""
    rng = np.random.default_rng(seed)
    factors = {"W": jnp.asarray(rng.uniform(0.1, 1.0, (model.n_rows, RANK)))}
    for table in model.tables:
        shape = (RANK, np.shape(table.data)[1])
        factors[factor_name(table.name)] = jnp.asarray(rng.uniform(0.1, 1.0, shape))
    return factors


def assert_split_matches(loss, factors, data, rules, scale):
    """Assert ``∇⁻ = scale · numerator`` and ``∇⁺ = scale · denominator`` per factor."""
    assert set(rules) == set(loss.factors)
    for name, (numerator, denominator) in rules.items():
        grad_plus, grad_minus = split_gradient(loss, name, factors, data)
        np.testing.assert_allclose(
            grad_minus, scale * numerator, rtol=RTOL, err_msg=f"∇⁻ of {name}"
        )
        np.testing.assert_allclose(
            grad_plus, scale * denominator, rtol=RTOL, err_msg=f"∇⁺ of {name}"
        )


def relative_error(actual, expected) -> float:
    """Return ``max |actual − expected| / max |expected|``."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def assert_rules_equal(actual, expected):
    """Assert that two rule dicts have the same factors and equal arrays."""
    assert list(actual) == list(expected)
    for name in expected:
        for part in (0, 1):
            np.testing.assert_allclose(
                actual[name][part],
                expected[name][part],
                rtol=RTOL,
                err_msg=f"{name}, {('numerator', 'denominator')[part]}",
            )


def numpy_factors(factors):
    return {name: np.asarray(value) for name, value in factors.items()}


# -- vanilla and multi-view ---------------------------------------------------


def test_vanilla_frobenius_matches_engine():
    """Expected: eqs 2-3, ``(V Hᵀ, W H Hᵀ)`` and ``(Wᵀ V, Wᵀ W H)``, times 2."""
    model = vanilla(jnp.asarray(TABLES["A"]), RANK)
    factors = draw_factors(model)
    f = numpy_factors(factors)
    rules = vanilla_frobenius(TABLES["A"], f["W"], f["H_V"])
    assert_split_matches(model.loss, factors, model.data, rules, scale=2.0)


def test_vanilla_kl_matches_engine():
    """Expected: eqs 6-7 with the ratio ``V / (W H)`` that the printed ones omit.

    Some data entries are 0, and their ratio must be 0 on both sides.
    """
    V = TABLES["A"].copy()
    V[0, 0] = V[3, 2] = V[6, 5] = 0.0
    model = vanilla(jnp.asarray(V), RANK, loss="kl")
    factors = draw_factors(model)
    f = numpy_factors(factors)
    rules = vanilla_kl(V, f["W"], f["H_V"])
    for numerator, denominator in rules.values():
        assert np.all(np.isfinite(numerator))
        assert np.all(np.isfinite(denominator))
    assert_split_matches(model.loss, factors, model.data, rules, scale=1.0)


def test_vanilla_kl_differs_from_printed_form():
    """Expected: eq 6 as printed, ``V Hᵀ``, is not the numerator ``(V / W H) Hᵀ``."""
    model = vanilla(jnp.asarray(TABLES["A"]), RANK, loss="kl")
    factors = draw_factors(model)
    f = numpy_factors(factors)
    _, grad_minus = split_gradient(model.loss, "W", factors, model.data)
    printed_numerator = TABLES["A"] @ f["H_V"].T
    assert relative_error(grad_minus, printed_numerator) > 1e-3


@pytest.mark.parametrize("names", [("A", "F"), ("A", "F", "G")], ids=["2", "3"])
def test_multiview_frobenius_matches_engine(names):
    """Expected: eqs 9-11 (two views) and 13-17 (three views), times 2."""
    model = build_model(names)
    factors = draw_factors(model)
    f = numpy_factors(factors)
    rules = multiview_frobenius(
        {name: TABLES[name] for name in names},
        f["W"],
        {name: f[factor_name(name)] for name in names},
    )
    assert_split_matches(model.loss, factors, model.data, rules, scale=2.0)
    assert_rules_equal(model_rules(model, factors), rules)


# -- trees ----------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["frobenius", "kl"])
@pytest.mark.parametrize("structure", list(STRUCTURES))
def test_tree_matches_engine(structure, loss):
    """Expected: eqs 27-31 and 32 with ``W`` restored (Frobenius, times 2), or
    their KL counterpart, from :func:`tree_rules` on the dense path products."""
    model = build_model(STRUCTURES[structure], loss)
    factors = draw_factors(model)
    rules = model_rules(model, factors)
    scale = 2.0 if loss == "frobenius" else 1.0
    assert_split_matches(model.loss, factors, model.data, rules, scale)


MIXED_LOSSES = {"A": "frobenius", "B": "kl", "C": "frobenius", "E": "kl", "F": "kl"}
MIXED_WEIGHTS = {"A": 1.5, "B": 0.5, "C": 2.0, "E": 0.25, "F": 3.0}


def test_mixed_tree_matches_engine():
    """Expected: :func:`tree_rules` with Frobenius parts doubled
    (``frobenius_scale=2``), each table's part times its weight λ_t."""
    names = ("A", "B", "C", "E", "F")
    model = build_model(names, MIXED_LOSSES, MIXED_WEIGHTS)
    factors = draw_factors(model)
    rules = model_rules(model, factors, frobenius_scale=2.0)
    assert_split_matches(model.loss, factors, model.data, rules, scale=1.0)


def test_mixed_tree_paper_scale_differs():
    """Expected: with ``frobenius_scale=1`` a mixed tree's ``W`` rule is not the
    engine's split up to one common factor, so the scale matters."""
    names = ("A", "B", "C", "E", "F")
    model = build_model(names, MIXED_LOSSES, MIXED_WEIGHTS)
    factors = draw_factors(model)
    rules = model_rules(model, factors, frobenius_scale=1.0)
    grad_plus, _ = split_gradient(model.loss, "W", factors, model.data)
    denominator = rules["W"][1]
    assert relative_error(grad_plus, denominator) > 1e-3
    assert relative_error(grad_plus, 2.0 * denominator) > 1e-3


def test_kl_chain_with_zero_data_matches_engine():
    """Expected: the KL rules of :func:`tree_rules`, whose ratio is 0 where the
    data are 0 (not 0/0), on a chain with zeros in every table."""
    tables = {name: TABLES[name].copy() for name in ("A", "B", "C")}
    for V in tables.values():
        V[0, 1] = V[2, 0] = V[-1, -1] = 0.0
    model = Model(
        [
            Table(name, jnp.asarray(V), parent=PARENTS[name], loss="kl")
            for name, V in tables.items()
        ],
        RANK,
    )
    factors = draw_factors(model)
    rules = model_rules(model, factors)
    for numerator, denominator in rules.values():
        assert np.all(np.isfinite(numerator))
        assert np.all(np.isfinite(denominator))
    assert_split_matches(model.loss, factors, model.data, rules, scale=1.0)


# -- the literal one-link rules ------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "literal"),
    [("frobenius", chain_frobenius_one_link), ("kl", chain_kl_one_link)],
    ids=["frobenius_eqs_20_22", "kl_eqs_23_25"],
)
def test_one_link_literal_equals_tree_rules(loss, literal):
    """Expected: the general :func:`tree_rules` on the chain A → B."""
    model = build_model(("A", "B"), loss)
    f = numpy_factors(draw_factors(model))
    rules = literal(TABLES["A"], TABLES["B"], f["W"], f["H_A"], f["H_B"])
    assert_rules_equal(rules, model_rules(model, f))


# -- the rules as printed ------------------------------------------------------


def test_appendix_frobenius_rule_disagrees():
    """Expected: the engine's ``W`` split differs from the appendix code's rule,
    which swaps ``V_A V_B H_Bᵀ`` and ``V_A V_Aᵀ W H_B H_Bᵀ``. Its H rules agree."""
    model = build_model(("A", "B"))
    factors = draw_factors(model)
    f = numpy_factors(factors)
    printed = chain_frobenius_appendix_as_printed(
        TABLES["A"], TABLES["B"], f["W"], f["H_A"], f["H_B"]
    )
    grad_plus, grad_minus = split_gradient(model.loss, "W", factors, model.data)
    assert relative_error(grad_minus, 2.0 * printed["W"][0]) > 1e-3
    assert relative_error(grad_plus, 2.0 * printed["W"][1]) > 1e-3
    for name in ("H_A", "H_B"):
        grad_plus, grad_minus = split_gradient(model.loss, name, factors, model.data)
        assert relative_error(grad_minus, 2.0 * printed[name][0]) < RTOL
        assert relative_error(grad_plus, 2.0 * printed[name][1]) < RTOL


def eq27_chain() -> tuple[Model, dict[str, np.ndarray]]:
    """Build a four-table chain whose root has RANK rows, so m = k.

    Eq 27 as printed multiplies the m x m matrix ``M_C M_Cᵀ`` by the k x k
    matrix ``H_C H_Cᵀ``, which is defined only when m = k.
    """
    rng = np.random.default_rng(2)
    tables = {
        "A": rng.uniform(0.1, 1.0, (RANK, 6)),
        "B": TABLES["B"],
        "C": TABLES["C"],
        "D": TABLES["D"],
    }
    model = Model(
        [
            Table(name, jnp.asarray(V), parent=PARENTS[name])
            for name, V in tables.items()
        ],
        RANK,
    )
    return model, tables


def test_eq27_as_printed_disagrees():
    """Expected: the engine's ``∇⁺`` of ``W`` differs from eq 27's printed
    denominator, which omits ``W`` in the terms of V_C and V_D. The numerator
    and eqs 28-31 agree."""
    model, tables = eq27_chain()
    factors = draw_factors(model)
    f = numpy_factors(factors)
    printed = chain_frobenius_eq27_as_printed(
        list(tables.values()), f["W"], [f[f"H_{name}"] for name in tables]
    )
    grad_plus, grad_minus = split_gradient(model.loss, "W", factors, model.data)
    assert relative_error(grad_plus, 2.0 * printed["W"][1]) > 1e-3
    assert relative_error(grad_minus, 2.0 * printed["W"][0]) < RTOL
    for name in ("H_A", "H_B", "H_C", "H_D"):
        grad_plus, grad_minus = split_gradient(model.loss, name, factors, model.data)
        assert relative_error(grad_minus, 2.0 * printed[name][0]) < RTOL
        assert relative_error(grad_plus, 2.0 * printed[name][1]) < RTOL


def test_eq27_as_printed_requires_square_w():
    """Expected: a ValueError, because ``M_C M_Cᵀ H_C H_Cᵀ`` needs m = k."""
    model = build_model(("A", "B", "C"))
    f = numpy_factors(draw_factors(model))
    with pytest.raises(ValueError, match="m = k"):
        chain_frobenius_eq27_as_printed(
            [TABLES["A"], TABLES["B"], TABLES["C"]],
            f["W"],
            [f["H_A"], f["H_B"], f["H_C"]],
        )


def test_eq27_as_printed_is_right_for_one_link():
    """Expected: eq 20, since the printed eq 27 keeps ``W`` in the term of V_B."""
    model = build_model(("A", "B"))
    f = numpy_factors(draw_factors(model))
    printed = chain_frobenius_eq27_as_printed(
        [TABLES["A"], TABLES["B"]], f["W"], [f["H_A"], f["H_B"]]
    )
    literal = chain_frobenius_one_link(
        TABLES["A"], TABLES["B"], f["W"], f["H_A"], f["H_B"]
    )
    assert_rules_equal(printed, literal)


# -- the appendix terms, written by a user --------------------------------------

# X = V_A, Y = V_B, H = H_A and H2 = H_B, as in the appendix code.
APPENDIX_NAMES = {"W": "W", "H": "H_A", "H2": "H_B"}


def appendix_frobenius_terms(signed: bool) -> list[Term]:
    """Write the terms t1-t8 of ``‖X − W H‖² + ‖Y − Xᵀ W H2‖²``.

    With ``signed``, each negative term is a positive function with
    ``sign=-1``. Otherwise the minus sign is inside the function and every
    term has ``split="elementwise"``.
    """
    if signed:
        sign, split = -1, "sign"
        t2 = lambda X, W, H: trace(X.T, W, H)
        t3 = lambda X, W, H: trace(H.T, W.T, X)
        t6 = lambda Y, X, W, H2: trace(Y.T, X.T, W, H2)
        t7 = lambda Y, X, W, H2: trace(H2.T, W.T, X, Y)
    else:
        sign, split = 1, "elementwise"
        t2 = lambda X, W, H: -trace(X.T, W, H)
        t3 = lambda X, W, H: -trace(H.T, W.T, X)
        t6 = lambda Y, X, W, H2: -trace(Y.T, X.T, W, H2)
        t7 = lambda Y, X, W, H2: -trace(H2.T, W.T, X, Y)
    return [
        Term(lambda X: trace(X.T, X), name="t1", split=split),
        Term(t2, sign=sign, name="t2", split=split),
        Term(t3, sign=sign, name="t3", split=split),
        Term(lambda W, H: trace(H.T, W.T, W, H), name="t4", split=split),
        Term(lambda Y: trace(Y.T, Y), name="t5", split=split),
        Term(t6, sign=sign, name="t6", split=split),
        Term(t7, sign=sign, name="t7", split=split),
        Term(lambda X, W, H2: trace(H2.T, W.T, X, X.T, W, H2), name="t8", split=split),
    ]


def appendix_kl_terms() -> list[Term]:
    """Write the terms t1-t6 of ``D(X ‖ W H) + D(Y ‖ Xᵀ W H2)``, all elementwise."""
    split = "elementwise"
    return [
        Term(lambda X, W, H: jnp.sum(X * jnp.log(X / (W @ H))), name="t1", split=split),
        Term(lambda X: -jnp.sum(X), name="t2", split=split),
        Term(lambda W, H: total(W, H), name="t3", split=split),
        Term(
            lambda Y, X, W, H2: jnp.sum(Y * jnp.log(Y / (X.T @ W @ H2))),
            name="t4",
            split=split,
        ),
        Term(lambda Y: -jnp.sum(Y), name="t5", split=split),
        Term(lambda X, W, H2: total(X.T, W, H2), name="t6", split=split),
    ]


def appendix_setup():
    """Return the data, factors and oracle arguments of the appendix's one link."""
    rng = np.random.default_rng(3)
    f = {
        "W": rng.uniform(0.1, 1.0, (7, RANK)),
        "H": rng.uniform(0.1, 1.0, (RANK, 6)),
        "H2": rng.uniform(0.1, 1.0, (RANK, 5)),
    }
    data = {"X": jnp.asarray(TABLES["A"]), "Y": jnp.asarray(TABLES["B"])}
    factors = {name: jnp.asarray(value) for name, value in f.items()}
    arguments = (TABLES["A"], TABLES["B"], f["W"], f["H"], f["H2"])
    return data, factors, arguments


def renamed(rules):
    """Key oracle rules by the appendix's factor names W, H and H2."""
    return {name: rules[oracle] for name, oracle in APPENDIX_NAMES.items()}


@pytest.mark.parametrize("signed", [False, True], ids=["elementwise", "signed"])
def test_appendix_frobenius_terms_match_oracle(signed):
    """Expected: eqs 20-22 times 2, from :func:`chain_frobenius_one_link`."""
    data, factors, arguments = appendix_setup()
    loss = Loss(appendix_frobenius_terms(signed), factors=("W", "H", "H2"))
    rules = renamed(chain_frobenius_one_link(*arguments))
    assert_split_matches(loss, factors, data, rules, scale=2.0)


def test_appendix_kl_terms_match_oracle():
    """Expected: eqs 23-25, from :func:`chain_kl_one_link`."""
    data, factors, arguments = appendix_setup()
    loss = Loss(appendix_kl_terms(), factors=("W", "H", "H2"))
    rules = renamed(chain_kl_one_link(*arguments))
    assert_split_matches(loss, factors, data, rules, scale=1.0)


# -- invalid input ---------------------------------------------------------------


def tree_arguments(**changes):
    """Return valid arguments of tree_rules for the chain A → B, with ``changes``."""
    f = numpy_factors(draw_factors(build_model(("A", "B"))))
    arguments = {
        "tables": {"A": TABLES["A"], "B": TABLES["B"]},
        "parents": {"B": "A"},
        "W": f["W"],
        "H": {"A": f["H_A"], "B": f["H_B"]},
    }
    arguments.update(changes)
    return arguments


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"parents": {"B": "Z"}}, "parent 'Z' is not a table"),
        ({"parents": {"Z": "A"}}, "unknown table"),
        ({"parents": {"A": "B", "B": "A"}}, "cycle"),
        ({"tables": {"A": TABLES["A"], "B": TABLES["C"]}}, "must have 6 rows"),
        ({"H": {"A": np.ones((RANK, 6))}}, r"no factor for table\(s\) \['B'\]"),
        ({"H": {"H_A": 1, "H_B": 1}}, "keyed by table name"),
        ({"H": {"A": np.ones((RANK, 6)), "B": np.ones((2, 5))}}, "shape"),
        ({"losses": "beta"}, "loss must be one of"),
        ({"losses": {"A": "kl"}}, r"losses has no entry for table\(s\) \['B'\]"),
        ({"weights": {"B": -1.0}}, "weight must be finite"),
        ({"tables": {}}, "at least one table"),
    ],
    ids=[
        "unknown_parent",
        "unknown_child",
        "cycle",
        "rows_do_not_chain",
        "missing_h",
        "h_by_factor_name",
        "h_wrong_rank",
        "unknown_loss",
        "losses_missing_table",
        "negative_weight",
        "no_tables",
    ],
)
def test_tree_rules_rejects_invalid_input(changes, message):
    with pytest.raises(ValueError, match=message):
        tree_rules(**tree_arguments(**changes))


def test_tree_rules_defaults_to_roots_and_unit_weights():
    """Expected: a table absent from ``parents`` is a root, and weights default
    to 1, so A and F give :func:`multiview_frobenius`."""
    f = numpy_factors(draw_factors(build_model(("A", "F"))))
    tables = {"A": TABLES["A"], "F": TABLES["F"]}
    H = {"A": f["H_A"], "F": f["H_F"]}
    assert_rules_equal(
        tree_rules(tables, {}, f["W"], H), multiview_frobenius(tables, f["W"], H)
    )
