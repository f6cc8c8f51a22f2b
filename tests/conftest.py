"""Test settings shared by every test module.

JAX's x64 mode is on for the whole suite, so oracle comparisons can run in
float64; tests of the float32 path ask for float32 explicitly. Tolerances
come from the dtype, through :func:`tolerance`.
"""

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

# Relative tolerances per dtype: a few hundred ulps, for sums over small tables.
TOLERANCES = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


def tolerance(dtype) -> float:
    """Return the relative tolerance for comparisons in ``dtype``."""
    return TOLERANCES[np.dtype(dtype)]


def _dot_output_shapes(fn, *args) -> list[tuple[int, ...]]:
    """Return the output shape of every matrix product in the jaxpr of ``fn``."""
    shapes = []

    def walk(jaxpr):
        for equation in jaxpr.eqns:
            if equation.primitive.name == "dot_general":
                shapes.append(tuple(equation.outvars[0].aval.shape))
            for value in equation.params.values():
                if hasattr(value, "jaxpr"):
                    walk(value.jaxpr)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return shapes


@pytest.fixture
def dot_shapes():
    """A function that lists the matrix-product output shapes of ``fn(*args)``."""
    return _dot_output_shapes


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed, so every run draws the same data."""
    return np.random.default_rng(20261204)
