"""Property: no block update of a built-in model raises its loss.

For Frobenius and generalized-KL tables whose model Z_t H_t is linear in each
block with nonnegative coefficients, the Lee-Seung auxiliary function bounds
the loss from above and is minimized by the multiplicative update, so every
block update is non-increasing. Hypothesis draws the tree, the sizes, the
rank, the data (with exact zeros) and the start.
"""

import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chainnmf import Model, Table, update_block

# Parents of each table (None: rows of W), for every built-in family.
STRUCTURES = {
    "vanilla": {"A": None},
    "multiview": {"A": None, "B": None, "C": None},
    "chain1": {"A": None, "B": "A"},
    "chain2": {"A": None, "B": "A", "C": "B"},
    "chain3": {"A": None, "B": "A", "C": "B", "D": "C"},
    "branch": {"A": None, "B": "A", "C": "B", "E": "B"},
}
SIZES = (2, 3, 5)


@st.composite
def problems(draw):
    structure = draw(st.sampled_from(sorted(STRUCTURES)))
    loss = draw(st.sampled_from(["frobenius", "kl"]))
    rank = draw(st.sampled_from([1, 2, 3]))
    seed = draw(st.integers(0, 2**31 - 1))
    zero_fraction = draw(st.sampled_from([0.0, 0.3]))
    parents = STRUCTURES[structure]
    rng = np.random.default_rng(seed)
    rows = {None: draw(st.sampled_from(SIZES))}
    tables = []
    for name, parent in parents.items():
        n_rows = rows[parent]
        rows[name] = draw(st.sampled_from(SIZES))
        V = rng.random((n_rows, rows[name])) * 10.0 ** rng.uniform(-2, 2)
        V[rng.random(V.shape) < zero_fraction] = 0.0
        weight = float(rng.choice([0.1, 1.0, 3.0]))
        tables.append(Table(name, V, parent=parent, loss=loss, weight=weight))
    return Model(tables, rank), seed


@settings(max_examples=40, deadline=None)
@given(problems())
def test_block_updates_never_raise_loss(problem):
    """The loss after each block update is at most the loss before it."""
    model, seed = problem
    data = {name: jnp.asarray(value) for name, value in model.data.items()}
    factors = model.init(seed % 1000)
    loss = float(model.loss.value(factors, data))
    for _ in range(3):
        for block in model.loss.factors:
            factors = update_block(model.loss, block, factors, data)
            updated = float(model.loss.value(factors, data))
            assert updated <= loss * (1 + 1e-9) + 1e-12, (block, loss, updated)
            loss = updated
    for value in factors.values():
        assert np.all(np.asarray(value) >= 0)
