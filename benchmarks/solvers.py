"""The solvers the benchmark compares, each wrapped as ``run(iterations)``.

* chainnmf: a built-in model (:func:`model_runner`) or a user's own list of
  terms (:func:`loss_runner`), fitted with ``tol=0`` and the loss evaluated
  only after the last sweep.
* scikit-learn's multiplicative-update solver, ``NMF(solver="mu")``, from the
  same start with ``tol=0`` (:func:`sklearn_runner`).
* Hand-written analytic updates of the two-table chain in JAX, jitted, in
  path-product form (:func:`analytic_chain_runner`).
* The paper's NumPy loop for the Frobenius chain, evaluated left to right as
  its appendix writes it, so it forms ``X Xᵀ`` (m x m) and ``X Y`` (m x b)
  every sweep (:func:`paper_numpy_runner`).
* The appendix's eight trace terms, through :func:`chainnmf.trace` or with
  plain left-to-right ``@`` (:func:`paper_terms`).

Every runner starts from copies of the same factors, so repeated calls do
the same work.

"The paper" is "Optimizing NMF clustering loss functions using relational
table flow of information for hidden knowledge discovery" (anonymous
authors, under double-blind review); its appendix A.2 lists the NumPy loop
and the eight trace terms used here.
"""

from __future__ import annotations

import functools
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

import chainnmf
from chainnmf.numerics import multiplicative_update


def _quiet_fit(fit, *args, **options):
    """Call a chainnmf fit and drop its ConvergenceWarning (tol=0 never converges)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", chainnmf.ConvergenceWarning)
        return fit(*args, **options)


def _fit_runner(fit):
    """Wrap ``fit(**options)`` as ``run(n)`` with ``run.chunked(total, chunk)``."""

    def run(iterations: int):
        return _quiet_fit(
            fit, max_iter=iterations, tol=0.0, eval_every=iterations, dtype="float32"
        )

    def chunked(total: int, chunk: int) -> list[float]:
        times = [time.perf_counter()]

        def record(state):
            jax.block_until_ready(state.factors)
            times.append(time.perf_counter())

        _quiet_fit(
            fit,
            max_iter=total,
            tol=0.0,
            eval_every=total,
            dtype="float32",
            chunk=chunk,
            callback=record,
        )
        return times

    run.chunked = chunked
    return run


def model_runner(model: chainnmf.Model, start: dict[str, np.ndarray]):
    """Return ``run(n)``: ``n`` sweeps of a built-in model from ``start``."""
    return _fit_runner(functools.partial(model.fit, init=start))


def loss_runner(loss: chainnmf.Loss, start, data):
    """Return ``run(n)``: ``n`` sweeps of a user's loss from ``start``."""
    return _fit_runner(functools.partial(chainnmf.fit, loss, start, data))


def sklearn_runner(table, W, H, beta_loss: str):
    """Return ``run(n)``: ``n`` iterations of scikit-learn's MU solver."""
    from sklearn.decomposition import NMF

    def run(iterations: int):
        solver = NMF(
            W.shape[1],
            solver="mu",
            beta_loss=beta_loss,
            init="custom",
            tol=0.0,
            max_iter=iterations,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return solver.fit_transform(table, W=W.copy(), H=H.copy())

    return run


def _analytic_sweep(factors, X, Y):
    """One sweep of the analytic rules for ``‖X − W H‖² + ‖Y − Xᵀ W H2‖²``.

    ``Z = Xᵀ W`` is the path product of ``Y``. The numerators and
    denominators are eqs. (20)-(22) of the paper (with the swap in its
    appendix code corrected), written so that every product of a data table
    is with a k-column matrix:

        W  ← W  ⊙ (X Hᵀ + X (Y H2ᵀ)) / (W (H Hᵀ) + X (Z (H2 H2ᵀ)))
        H  ← H  ⊙ (Wᵀ X) / ((Wᵀ W) H)
        H2 ← H2 ⊙ (Zᵀ Y) / ((Zᵀ Z) H2),   Z = Xᵀ W with the new W

    The division uses chainnmf's own rule, so only the gradients differ from
    the library's.
    """
    W, H, H2 = factors
    Z = (W.T @ X).T
    numerator = X @ (H.T + Y @ H2.T)
    denominator = W @ (H @ H.T) + X @ (Z @ (H2 @ H2.T))
    W = multiplicative_update(W, numerator, denominator)
    H = multiplicative_update(H, W.T @ X, (W.T @ W) @ H)
    Z = (W.T @ X).T
    H2 = multiplicative_update(H2, Z.T @ Y, (Z.T @ Z) @ H2)
    return W, H, H2


@jax.jit
def _analytic_loop(factors, X, Y, iterations):
    return jax.lax.fori_loop(
        0, iterations, lambda _, state: _analytic_sweep(state, X, Y), factors
    )


def analytic_chain_runner(X, Y, start):
    """Return ``run(n)``: ``n`` jitted sweeps of the hand-written analytic rules."""
    X, Y = jnp.asarray(X), jnp.asarray(Y)
    factors = tuple(jnp.asarray(start[name]) for name in ("W", "H", "H2"))

    def run(iterations: int):
        result = _analytic_loop(factors, X, Y, iterations)
        return [np.asarray(factor) for factor in result]

    return run


def paper_numpy_runner(X, Y, start):
    """Return ``run(n)``: the appendix's NumPy loop for the Frobenius chain.

    Products are evaluated left to right, as the appendix writes them, and a
    zero denominator is replaced by the machine epsilon, as there. The two
    chained parts of the W update sit in the numerator and denominator that
    eq. (20) gives (the appendix code swaps them).
    """
    eps = np.finfo(X.dtype).eps

    def run(iterations: int):
        W, H, H2 = (start[name].copy() for name in ("W", "H", "H2"))
        for _ in range(iterations):
            numerator = X @ H.T + X @ Y @ H2.T
            denominator = W @ H @ H.T + X @ X.T @ W @ H2 @ H2.T
            denominator[denominator == 0] = eps
            W *= numerator / denominator

            numerator = W.T @ X
            denominator = W.T @ W @ H
            denominator[denominator == 0] = eps
            H *= numerator / denominator

            numerator = W.T @ X @ Y
            denominator = W.T @ X @ X.T @ W @ H2
            denominator[denominator == 0] = eps
            H2 *= numerator / denominator
        return W, H, H2

    return run


def paper_terms(ordered: bool) -> chainnmf.Loss:
    """Return the appendix's eight Frobenius chain terms t1 … t8 as a Loss.

    With ``ordered`` each trace goes through :func:`chainnmf.trace`, which
    picks the contraction order; otherwise it is ``jnp.trace`` of the
    product evaluated left to right, as the appendix writes it. The data are
    ``X`` and ``Y``; the factors ``W``, ``H`` and ``H2``.
    """
    if ordered:
        trace = chainnmf.trace
    else:

        def trace(*matrices):
            product = matrices[0]
            for matrix in matrices[1:]:
                product = product @ matrix
            return jnp.trace(product)

    def t1(X):
        return trace(X.T, X)

    def t2(X, W, H):
        return trace(X.T, W, H)

    def t3(X, W, H):
        return trace(H.T, W.T, X)

    def t4(W, H):
        return trace(H.T, W.T, W, H)

    def t5(Y):
        return trace(Y.T, Y)

    def t6(Y, X, W, H2):
        return trace(Y.T, X.T, W, H2)

    def t7(Y, X, W, H2):
        return trace(H2.T, W.T, X, Y)

    def t8(X, W, H2):
        return trace(H2.T, W.T, X, X.T, W, H2)

    Term = chainnmf.Term
    return chainnmf.Loss(
        [
            Term(t1),
            Term(t2, sign=-1),
            Term(t3, sign=-1),
            Term(t4),
            Term(t5),
            Term(t6, sign=-1),
            Term(t7, sign=-1),
            Term(t8),
        ],
        factors=("W", "H", "H2"),
    )
