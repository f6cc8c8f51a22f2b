"""The jitted fit loop: sweeps until convergence, with a loss history and a status.

The loop runs inside ``jax.lax.while_loop`` and stops at the first of

* convergence: the relative decrease of the loss between two evaluations,
  ``(L_prev − L) / max(|L_prev|, tiny)``, fell below ``tol``;
* the iteration limit ``max_iter``;
* a non-finite value in a factor or in the loss. The factors of the last
  finite sweep are kept and the failing iteration is recorded.

The loss is evaluated before the first sweep, every ``eval_every`` sweeps and
after the last one. The host then turns the status into a warning
(:class:`ConvergenceWarning` when the limit was reached) or an error, so
nothing is printed by the loop itself.

Several starts can run at once with :func:`fit_restarts`, which maps the same
loop over a leading axis of the factors with ``jax.vmap``.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import warnings
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from chainnmf.mu import mu_step
from chainnmf.numerics import default_dtype, tiny
from chainnmf.terms import Loss

__all__ = [
    "ConvergenceWarning",
    "FitResult",
    "FitState",
    "NonFiniteError",
    "Status",
    "fit",
    "fit_restarts",
]

logger = logging.getLogger(__name__)


class ConvergenceWarning(UserWarning):
    """The fit stopped at its iteration limit before meeting its tolerance."""


class NonFiniteError(FloatingPointError):
    """A sweep produced a NaN or an infinity in a factor or in the loss."""


class Status(enum.IntEnum):
    """Why the fit loop stopped."""

    RUNNING = 0
    CONVERGED = 1
    MAX_ITER = 2
    NON_FINITE = 3


_MESSAGES = {
    Status.RUNNING: "the fit has not finished",
    Status.CONVERGED: "converged: the relative decrease of the loss fell below tol",
    Status.MAX_ITER: (
        "reached max_iter before the relative decrease of the loss fell below "
        "tol; raise max_iter or tol"
    ),
    Status.NON_FINITE: (
        "a sweep produced a non-finite value; the factors of the last finite "
        "sweep were kept. Check the data for extreme magnitudes, rescale it, "
        "use float64 (jax.config.update('jax_enable_x64', True)), or set a "
        "positive floor"
    ),
}


class FitState(NamedTuple):
    """The loop's state; every field is a JAX array so it can cross ``jit``.

    Attributes:
        factors: the current factors by name.
        iteration: sweeps completed (int32 scalar).
        loss: the last evaluated loss (scalar).
        history: evaluated losses, NaN where not yet evaluated, shape
            ``(max_iter // eval_every + 2,)``.
        history_at: the sweep of each ``history`` entry, -1 where unwritten.
        evaluations: entries of ``history`` written so far (int32 scalar).
        status: a :class:`Status` value (int32 scalar).
        nonfinite_at: the sweep that produced a non-finite value, or -1.
    """

    factors: dict[str, Array]
    iteration: Array
    loss: Array
    history: Array
    history_at: Array
    evaluations: Array
    status: Array
    nonfinite_at: Array


@dataclasses.dataclass(frozen=True)
class FitResult:
    """The outcome of a fit.

    Attributes:
        factors: the fitted factors by name, as NumPy arrays.
        loss_history: the evaluated losses, first the initial one; the sweep
            of each entry is in ``history_iterations``.
        history_iterations: the sweep after which each loss was evaluated.
        iterations: the number of sweeps run.
        status: why the loop stopped.
        message: a sentence that explains ``status``.
        nonfinite_at: the sweep that produced a non-finite value, or None.
        dtype: the floating dtype the fit ran in, such as ``"float32"``.
    """

    factors: dict[str, np.ndarray]
    loss_history: np.ndarray
    history_iterations: np.ndarray
    iterations: int
    status: Status
    message: str
    nonfinite_at: int | None
    dtype: str

    @property
    def loss(self) -> float:
        """The last evaluated loss."""
        return float(self.loss_history[-1])

    @property
    def converged(self) -> bool:
        """Whether the loop stopped because it met its tolerance."""
        return self.status == Status.CONVERGED


@dataclasses.dataclass(frozen=True)
class _Settings:
    max_iter: int
    tol: float
    eval_every: int
    floor: float


def _all_finite(tree) -> Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def _initial_state(loss: Loss, settings: _Settings, factors, data) -> FitState:
    value = loss.value(factors, data)
    dtype = value.dtype
    length = settings.max_iter // settings.eval_every + 2
    history = jnp.full((length,), jnp.nan, dtype).at[0].set(value)
    finite = _all_finite(factors) & jnp.isfinite(value)
    status = jnp.where(finite, Status.RUNNING, Status.NON_FINITE).astype(jnp.int32)
    return FitState(
        factors=dict(factors),
        iteration=jnp.asarray(0, jnp.int32),
        loss=value,
        history=history,
        history_at=jnp.full((length,), -1, jnp.int32).at[0].set(0),
        evaluations=jnp.asarray(1, jnp.int32),
        status=status,
        nonfinite_at=jnp.where(finite, -1, 0).astype(jnp.int32),
    )


def _sweep(loss: Loss, settings: _Settings, data, state: FitState) -> FitState:
    """Run one sweep and update the status, history and counters."""
    proposed = mu_step(loss, state.factors, data, floor=settings.floor)
    iteration = state.iteration + 1
    evaluate = (iteration % settings.eval_every == 0) | (iteration >= settings.max_iter)
    value = jax.lax.cond(
        evaluate,
        lambda: loss.value(proposed, data).astype(state.loss.dtype),
        lambda: state.loss,
    )
    finite = _all_finite(proposed) & jnp.isfinite(value)

    # Keep the last finite factors when this sweep failed.
    factors = jax.tree_util.tree_map(
        lambda new, old: jnp.where(finite, new, old), proposed, state.factors
    )
    relative_decrease = (state.loss - value) / jnp.maximum(
        jnp.abs(state.loss), tiny(value.dtype)
    )
    converged = evaluate & (relative_decrease < settings.tol)
    status = jnp.select(
        [~finite, converged, iteration >= settings.max_iter],
        [Status.NON_FINITE, Status.CONVERGED, Status.MAX_ITER],
        Status.RUNNING,
    ).astype(jnp.int32)
    record = evaluate & finite
    history = jnp.where(
        record, state.history.at[state.evaluations].set(value), state.history
    )
    history_at = jnp.where(
        record, state.history_at.at[state.evaluations].set(iteration), state.history_at
    )
    return FitState(
        factors=factors,
        iteration=jnp.where(finite, iteration, state.iteration),
        loss=jnp.where(finite, value, state.loss),
        history=history,
        history_at=history_at,
        evaluations=state.evaluations + record.astype(jnp.int32),
        status=status,
        nonfinite_at=jnp.where(finite, state.nonfinite_at, iteration),
    )


def _run_until(loss: Loss, settings: _Settings, state: FitState, data, stop_at):
    """Sweep until the status leaves RUNNING or ``stop_at`` sweeps are done."""

    def keep_going(current: FitState) -> Array:
        return (current.status == Status.RUNNING) & (current.iteration < stop_at)

    return jax.lax.while_loop(
        keep_going, functools.partial(_sweep, loss, settings, data), state
    )


@functools.lru_cache(maxsize=64)
def _compiled(loss: Loss, settings: _Settings, batched: bool):
    """Build (once per loss and settings) the jitted start and run functions."""
    start = functools.partial(_initial_state, loss, settings)
    run = functools.partial(_run_until, loss, settings)
    if batched:
        start = jax.vmap(start, in_axes=(0, None))
        run = jax.vmap(run, in_axes=(0, None, None))
    return jax.jit(start), jax.jit(run)


def _check_settings(max_iter: int, tol: float, eval_every: int, floor: float):
    if int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f"max_iter must be a whole number >= 1, got {max_iter!r}")
    if not (tol >= 0):
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    if int(eval_every) != eval_every or eval_every < 1:
        raise ValueError(f"eval_every must be a whole number >= 1, got {eval_every!r}")
    if not (floor >= 0 and np.isfinite(floor)):
        raise ValueError(f"floor must be finite and >= 0, got {floor!r}")
    return _Settings(int(max_iter), float(tol), int(eval_every), float(floor))


def _check_names(loss: Loss, factors: Mapping, data: Mapping) -> None:
    missing = [name for name in loss.factors if name not in factors]
    if missing:
        raise ValueError(
            f"missing initial value for factor(s) {missing}; got factors "
            f"{sorted(factors)}"
        )
    absent = [name for name in loss.data_names if name not in data]
    if absent:
        raise ValueError(
            f"missing data table(s) {absent} used by the loss terms; got tables "
            f"{sorted(data)}"
        )


def _to_result(state: FitState, index: int | None = None) -> FitResult:
    """Convert a final state (restart ``index`` of a batch, when given)."""

    def pick(array):
        array = np.asarray(array)
        return array if index is None else array[index]

    status = Status(int(pick(state.status)))
    evaluations = int(pick(state.evaluations))
    history = pick(state.history)[:evaluations]
    nonfinite_at = int(pick(state.nonfinite_at))
    return FitResult(
        factors={name: pick(value) for name, value in state.factors.items()},
        loss_history=history,
        history_iterations=pick(state.history_at)[:evaluations],
        iterations=int(pick(state.iteration)),
        status=status,
        message=_MESSAGES[status],
        nonfinite_at=None if nonfinite_at < 0 else nonfinite_at,
        dtype=str(history.dtype),
    )


def _report(result: FitResult, on_nonfinite: str) -> None:
    """Turn a final status into a log line, a warning or an error on the host."""
    logger.info(
        "fit stopped after %d sweeps (%s), loss %.6g",
        result.iterations,
        result.status.name,
        result.loss,
    )
    if result.status == Status.MAX_ITER:
        warnings.warn(result.message, ConvergenceWarning, stacklevel=3)
    elif result.status == Status.NON_FINITE:
        message = f"non-finite value at sweep {result.nonfinite_at}: {result.message}"
        if on_nonfinite == "raise":
            raise NonFiniteError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _prepare(loss, factors, data, dtype):
    """Validate names and convert factors and data to arrays of one dtype."""
    _check_names(loss, factors, data)
    dtype = jnp.dtype(dtype) if dtype is not None else default_dtype()
    factors = {name: jnp.asarray(factors[name], dtype) for name in loss.factors}
    data = {name: _as_dtype(data[name], dtype) for name in loss.data_names}
    return factors, data


def _as_dtype(table, dtype):
    if hasattr(table, "astype") and not isinstance(table, np.ndarray | Array):
        return table.astype(dtype)
    return jnp.asarray(table, dtype)


def _drive(
    loss: Loss,
    factors,
    data,
    settings: _Settings,
    batched: bool,
    callback: Callable[[FitState], None] | None,
    chunk: int | None,
) -> FitState:
    """Run the compiled loop on the host, in chunks when a callback is given."""
    start, run = _compiled(loss, settings, batched)
    state = start(factors, data)
    step = settings.max_iter if chunk is None else int(chunk)
    if step < 1:
        raise ValueError(f"chunk must be a whole number >= 1, got {chunk!r}")
    done = 0
    while done < settings.max_iter:
        done = min(done + step, settings.max_iter)
        state = run(state, data, jnp.asarray(done, jnp.int32))
        if callback is not None:
            callback(state)
        if not bool(jnp.any(state.status == Status.RUNNING)):
            break
    return state


def fit(
    loss: Loss,
    factors: Mapping[str, Array],
    data: Mapping[str, Array],
    *,
    max_iter: int = 200,
    tol: float = 1e-4,
    eval_every: int = 10,
    floor: float = 0.0,
    dtype=None,
    callback: Callable[[FitState], None] | None = None,
    chunk: int | None = None,
    on_nonfinite: str = "warn",
) -> FitResult:
    """Minimize ``loss`` over its factors by multiplicative updates.

    Args:
        loss: the joint loss; its ``factors`` are updated in order each sweep.
        factors: nonnegative initial factors by name; not modified.
        data: nonnegative data tables by name; not modified.
        max_iter: the maximum number of sweeps.
        tol: stop when the relative decrease of the loss between two
            evaluations is below ``tol``.
        eval_every: evaluate the loss (and test ``tol``) every this many sweeps.
        floor: the least value an updated factor entry may take (0 for none).
        dtype: the floating dtype to run in; by default float64 when JAX's
            x64 mode is on and float32 otherwise.
        callback: called on the host with the :class:`FitState` after every
            ``chunk`` sweeps, for progress reports.
        chunk: sweeps per compiled call; by default all of them in one call.
        on_nonfinite: ``"warn"`` (default) or ``"raise"`` a
            :class:`NonFiniteError` when a sweep produces NaN or infinity.

    Returns:
        A :class:`FitResult`. The same inputs give the same result.

    Warns:
        ConvergenceWarning: when ``max_iter`` was reached before ``tol``.
    """
    if on_nonfinite not in ("warn", "raise"):
        raise ValueError(
            f"on_nonfinite must be 'warn' or 'raise', got {on_nonfinite!r}"
        )
    settings = _check_settings(max_iter, tol, eval_every, floor)
    factors, data = _prepare(loss, factors, data, dtype)
    state = _drive(loss, factors, data, settings, False, callback, chunk)
    result = _to_result(state)
    _report(result, on_nonfinite)
    return result


def fit_restarts(
    loss: Loss,
    factors: Mapping[str, Array],
    data: Mapping[str, Array],
    *,
    max_iter: int = 200,
    tol: float = 1e-4,
    eval_every: int = 10,
    floor: float = 0.0,
    dtype=None,
    on_nonfinite: str = "warn",
) -> list[FitResult]:
    """Fit several starts at once, mapped with ``jax.vmap`` over a leading axis.

    ``factors`` holds every start stacked along a new first axis (shape
    ``(restarts, …)`` per factor); the data are shared. Each start stops on
    its own criteria; the batch runs until the last one stops. The other
    arguments are those of :func:`fit`.

    Returns:
        One :class:`FitResult` per start, in order.
    """
    if on_nonfinite not in ("warn", "raise"):
        raise ValueError(
            f"on_nonfinite must be 'warn' or 'raise', got {on_nonfinite!r}"
        )
    settings = _check_settings(max_iter, tol, eval_every, floor)
    factors, data = _prepare(loss, factors, data, dtype)
    counts = {name: value.shape[0] for name, value in factors.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(
            f"every factor needs the same number of starts on axis 0, got {counts}"
        )
    state = _drive(loss, factors, data, settings, True, None, None)
    results = [_to_result(state, index) for index in range(next(iter(counts.values())))]
    for result in results:
        _report(result, on_nonfinite)
    return results
