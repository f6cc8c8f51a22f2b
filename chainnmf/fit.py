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

A long fit can write its state to a file every ``checkpoint_every`` sweeps and
when it stops (``checkpoint=path``, see :mod:`chainnmf.checkpoint`), and a
later call with ``resume=path`` continues from that file. Both run the same
compiled loop, split at different sweeps, so a resumed fit returns the factors
of an uninterrupted one.

Every input is checked on the host by :mod:`chainnmf.validation` before anything
is traced.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from chainnmf import validation as validate
from chainnmf.mu import mu_step
from chainnmf.numerics import tiny
from chainnmf.schema import Model
from chainnmf.terms import Loss

__all__ = [
    "CollapseWarning",
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


class CollapseWarning(UserWarning):
    """A whole factor ended at zero although the data are not all zero."""


class NonFiniteError(FloatingPointError):
    """A sweep produced a NaN or an infinity in a factor or in the loss."""


class Status(enum.IntEnum):
    """Reason the fit loop stopped."""

    RUNNING = 0
    CONVERGED = 1
    MAX_ITER = 2
    NON_FINITE = 3

    @property
    def message(self) -> str:
        """A sentence that explains this status and what to do about it."""
        return _MESSAGES[self]


_RESCALE = (
    "Rescale the data (for example divide each table by its largest entry) or run "
    "in float64 (jax.config.update('jax_enable_x64', True) at startup)"
)

_MESSAGES = {
    Status.RUNNING: "the fit has not finished",
    Status.CONVERGED: "converged: the relative decrease of the loss fell below tol",
    Status.MAX_ITER: (
        "reached max_iter before the relative decrease of the loss fell below "
        "tol; raise max_iter or tol"
    ),
    Status.NON_FINITE: (
        "a NaN or an infinity appeared in a factor or in the loss; the factors "
        f"of the last finite sweep were kept. {_RESCALE}, or set a positive floor"
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
        settings: the fit's ``max_iter``, ``tol``, ``eval_every`` and ``floor``.
    """

    factors: dict[str, np.ndarray]
    loss_history: np.ndarray
    history_iterations: np.ndarray
    iterations: int
    status: Status
    message: str
    nonfinite_at: int | None
    dtype: str
    settings: dict[str, object] = dataclasses.field(default_factory=dict)

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


def _to_result(
    state: FitState, settings: _Settings, index: int | None = None
) -> FitResult:
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
        message=status.message,
        nonfinite_at=None if nonfinite_at < 0 else nonfinite_at,
        dtype=str(history.dtype),
        settings=dataclasses.asdict(settings),
    )


def _state_from_result(result: FitResult, settings: _Settings) -> FitState:
    """Rebuild the loop state that ``result`` was taken from, to resume it."""
    dtype = np.dtype(result.dtype)
    length = settings.max_iter // settings.eval_every + 2
    evaluations = len(result.loss_history)
    history = np.full(length, np.nan, dtype)
    history[:evaluations] = result.loss_history
    history_at = np.full(length, -1, np.int32)
    history_at[:evaluations] = result.history_iterations
    nonfinite_at = -1 if result.nonfinite_at is None else result.nonfinite_at
    return FitState(
        factors={
            name: jnp.asarray(value, dtype) for name, value in result.factors.items()
        },
        iteration=jnp.asarray(result.iterations, jnp.int32),
        loss=jnp.asarray(result.loss_history[-1], dtype),
        history=jnp.asarray(history),
        history_at=jnp.asarray(history_at),
        evaluations=jnp.asarray(evaluations, jnp.int32),
        status=jnp.asarray(int(result.status), jnp.int32),
        nonfinite_at=jnp.asarray(nonfinite_at, jnp.int32),
    )


def _report(result: FitResult, on_nonfinite: str, data_is_zero: bool) -> None:
    """Turn a final status into a log line, a warning or an error on the host."""
    logger.info(
        "fit stopped after %d sweeps (%s), loss %.6g",
        result.iterations,
        result.status.name,
        result.loss,
    )
    _warn_if_loss_rose(result)
    if not data_is_zero:
        _warn_if_factor_vanished(result)
    if result.status == Status.MAX_ITER:
        validate.warn(result.message, ConvergenceWarning)
    elif result.status == Status.NON_FINITE:
        message = f"non-finite value at sweep {result.nonfinite_at}: {result.message}"
        if result.nonfinite_at == 0:
            message = (
                "non-finite value at sweep 0: the loss of the initial factors is "
                "NaN or infinite, so no sweep ran. Look for start entries so large "
                f"that their products overflow. {_RESCALE}"
            )
        if on_nonfinite == "raise":
            raise NonFiniteError(message)
        validate.warn(message, RuntimeWarning)


# Relative rise between two evaluations above which a fit is reported as
# rising: far above float32 round-off, far below what a wrong sign produces.
_RISE_TOLERANCE = 1e-3


def _warn_if_loss_rose(result: FitResult) -> None:
    """Warn when the recorded loss rose, which multiplicative updates rule out.

    For terms with correctly declared signs each sweep is non-increasing, so
    a rise means a term whose gradient has the other sign than declared (its
    wrong-signed part is clipped from the split), or a term outside that
    family.
    """
    history = np.asarray(result.loss_history, dtype=np.float64)
    if len(history) < 2:
        return
    rises = np.diff(history) / np.maximum(np.abs(history[:-1]), np.finfo(float).tiny)
    worst = int(np.argmax(rises))
    if rises[worst] > _RISE_TOLERANCE:
        validate.warn(
            f"the loss rose from {history[worst]:.6g} at sweep "
            f"{int(result.history_iterations[worst])} to {history[worst + 1]:.6g} at "
            f"sweep {int(result.history_iterations[worst + 1])}; a term may be "
            "declared with the wrong sign. Run chainnmf.check_term_signs on the "
            "loss to find it",
            RuntimeWarning,
        )


def _all_zero(tables: Mapping) -> bool:
    """Return whether every table has only zero entries (zero factors are then exact)."""
    return not any(np.any(validate.stored_values(table)) for table in tables.values())


def _warn_if_factor_vanished(result: FitResult) -> None:
    """Warn when a whole factor ended at zero, a collapse no clustering survives."""
    vanished = [
        name
        for name, value in result.factors.items()
        if np.asarray(value).size and not np.any(np.asarray(value))
    ]
    if vanished:
        validate.warn(
            f"factor(s) {vanished} are all zero after the fit, so the model "
            "collapsed. Check the term signs with chainnmf.check_term_signs, and "
            "that the data are not too small for the dtype",
            CollapseWarning,
        )


def _checked_inputs(problem, factors, data, dtype, *, batched: bool):
    """Validate a fit's inputs and resolve its dtype, before any tracing.

    Returns:
        ``(loss, factors, data, dtype)``, with the factors and data as given.
    """
    if isinstance(problem, Model):
        if data is not None:
            raise ValueError(
                "data must be None when fitting a Model, whose tables are its "
                f"data; got tables {sorted(data)}"
            )
        data = problem.data
        loss = problem.loss
    elif isinstance(problem, Loss):
        validate.check_data(problem, data)
        loss = problem
    else:
        raise TypeError(f"loss must be a Loss or a Model, got {type(problem).__name__}")
    if factors is None:
        raise ValueError("missing initial factors: pass factors, or resume=path")
    if isinstance(problem, Model):
        validate.check_model_start(problem, factors, batched=batched)
    else:
        validate.check_factors(problem, factors, batched=batched)
    labelled = {f"table {name!r}": data[name] for name in loss.data_names}
    labelled.update(
        {f"initial factor {name!r}": factors[name] for name in loss.factors}
    )
    dtype = validate.check_dtype(dtype, labelled)
    if isinstance(problem, Model):
        validate.check_magnitudes(problem, dtype, factors, batched=batched)
    return loss, factors, data, dtype


def _inputs(problem, factors, data, options: validate.FitOptions, *, batched: bool):
    """Validate a fit's inputs and convert them to arrays of the fit's dtype.

    Returns:
        ``(loss, settings, dtype, given, factors, data)``, where ``given`` is
        the data as passed in (for checksums) and ``factors`` and ``data`` are
        converted.
    """
    loss, factors, given, dtype = _checked_inputs(
        problem, factors, data, options.dtype, batched=batched
    )
    settings = _Settings(
        options.max_iter, options.tol, options.eval_every, options.floor
    )
    factors, data = _prepare(loss, factors, given, dtype)
    if not isinstance(problem, Model):
        validate.check_loss_shapes(loss, factors, data, batched=batched)
    return loss, settings, dtype, given, factors, data


def _prepare(loss, factors, data, dtype):
    """Convert factors and data to arrays of one dtype (``_as_dtype`` for tables)."""
    factors = {name: jnp.asarray(factors[name], dtype) for name in loss.factors}
    data = {name: _as_dtype(data[name], dtype) for name in loss.data_names}
    return factors, data


def _as_dtype(table, dtype):
    """Convert a table to ``dtype``; sparse tables become a ``SparseMatrix`` here.

    This is the one place where a fit converts scipy.sparse, BCOO and BCSR
    tables (see :func:`chainnmf.sparse.as_operand`), on the host. The compiled
    loop then receives only arrays and sparse matrices in both storage orders.
    """
    from chainnmf.sparse import as_operand

    return as_operand(table, dtype)


def _running(state: FitState) -> bool:
    return bool(jnp.any(state.status == Status.RUNNING))


def _drive(
    run: Callable,
    state: FitState,
    data,
    max_iter: int,
    hooks: Sequence[tuple[int, Callable[[FitState], None] | None]],
) -> FitState:
    """Run the compiled loop on the host, stopping wherever a hook is due.

    Each hook ``(every, fn)`` calls ``fn`` with the state after every
    ``every``-th sweep and once more when the loop stops. ``fn`` may be None,
    which only splits the run. ``run`` continues from ``state.iteration``, so
    a resumed state picks up the same schedule.
    """
    done = int(np.max(np.asarray(state.iteration)))
    while done < max_iter and _running(state):
        done = min([max_iter] + [(done // every + 1) * every for every, _ in hooks])
        state = run(state, data, jnp.asarray(done, jnp.int32))
        stopped = done == max_iter or not _running(state)
        for every, hook in hooks:
            if hook is not None and (stopped or done % every == 0):
                hook(state)
    return state


def _read_resume(path: str, factors):
    """Read the checkpoint to resume from, rejecting initial factors next to it."""
    from chainnmf import checkpoint as checkpoints

    if factors is not None:
        raise ValueError(
            "pass either initial factors or resume, not both: a resumed fit "
            "starts from the factors stored in the checkpoint"
        )
    return checkpoints.read(path)


def _checkpoint_writer(path: str, settings: _Settings, record: Mapping):
    """Return a hook that writes the loop state to ``path`` with ``record``."""
    from chainnmf import checkpoint as checkpoints

    def write(state: FitState) -> None:
        checkpoints.write(path, _to_result(state, settings), record)

    return write


def fit(
    loss: Loss | Model,
    factors: Mapping[str, Array] | None = None,
    data: Mapping[str, Array] | None = None,
    *,
    max_iter: int = 200,
    tol: float = 1e-4,
    eval_every: int = 10,
    floor: float = 0.0,
    dtype=None,
    callback: Callable[[FitState], None] | None = None,
    chunk: int | None = None,
    on_nonfinite: str = "warn",
    checkpoint=None,
    checkpoint_every: int | None = None,
    resume=None,
) -> FitResult:
    """Minimize ``loss`` over its factors by multiplicative updates.

    Args:
        loss: the joint loss; its ``factors`` are updated in order each sweep.
            A :class:`~chainnmf.schema.Model` may be passed instead: its tables
            are then the data, and the start is checked against its shapes.
        factors: nonnegative initial factors by name; not modified. Entries
            that are exactly zero stay zero. None when ``resume`` is given.
        data: nonnegative data tables by name; not modified. None for a Model.
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
        checkpoint: a file path; the fit's state is written there every
            ``checkpoint_every`` sweeps and when the fit stops, replacing the
            previous file atomically.
        checkpoint_every: sweeps between two checkpoint writes.
        resume: a checkpoint file to continue from. The loss (or model), the
            settings, the dtype and the data must match the file.

    Returns:
        A :class:`FitResult`. The same inputs give the same result.

    Raises:
        ValueError, TypeError: on invalid input (see :mod:`chainnmf.validation`)
            or a checkpoint that does not match this fit.
        NonFiniteError: with ``on_nonfinite="raise"``, when a NaN or an
            infinity appears.

    Warns:
        ConvergenceWarning: when ``max_iter`` was reached before ``tol``.
        RuntimeWarning: when a NaN or an infinity appears (the default).
    """
    from chainnmf import checkpoint as checkpoints

    options = validate.check_fit_options(
        max_iter=max_iter,
        tol=tol,
        eval_every=eval_every,
        floor=floor,
        dtype=dtype,
        callback=callback,
        chunk=chunk,
        on_nonfinite=on_nonfinite,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
    )
    saved = None
    if options.resume is not None:
        saved = _read_resume(options.resume, factors)
        factors = saved.result.factors
    problem = loss
    loss, settings, dtype, given, factors, data = _inputs(
        problem, factors, data, options, batched=False
    )
    record = None
    if options.checkpoint is not None or saved is not None:
        record = checkpoints.fit_record(
            problem,
            given,
            dataclasses.asdict(settings),
            dtype,
            options.checkpoint_every,
        )
    if saved is not None:
        checkpoints.check_match(options.resume, saved.record, record)

    start, run = _compiled(loss, settings, False)
    state = (
        start(factors, data)
        if saved is None
        else _state_from_result(saved.result, settings)
    )

    hooks = []
    if options.checkpoint is not None:
        write = _checkpoint_writer(options.checkpoint, settings, record)
        hooks.append((options.checkpoint_every, write))
    hooks.append((options.chunk or options.max_iter, options.callback))
    state = _drive(run, state, data, settings.max_iter, hooks)
    result = _to_result(state, settings)
    _report(result, options.on_nonfinite, _all_zero(given))
    return result


def fit_restarts(
    loss: Loss | Model,
    factors: Mapping[str, Array],
    data: Mapping[str, Array] | None = None,
    *,
    max_iter: int = 200,
    tol: float = 1e-4,
    eval_every: int = 10,
    floor: float = 0.0,
    dtype=None,
    on_nonfinite: str = "warn",
) -> list[FitResult]:
    """Fit several starts at once, mapped with ``jax.vmap`` over a leading axis.

    ``factors`` contains every start stacked along a new first axis (shape
    ``(restarts, …)`` per factor); the data are shared. Each start stops on
    its own criteria; the batch runs until the last one stops. The other
    arguments are those of :func:`fit`; checkpoints are not supported here.

    Returns:
        One :class:`FitResult` per start, in order.
    """
    options = validate.check_fit_options(
        max_iter=max_iter,
        tol=tol,
        eval_every=eval_every,
        floor=floor,
        dtype=dtype,
        on_nonfinite=on_nonfinite,
    )
    loss, settings, _, given, factors, data = _inputs(
        loss, factors, data, options, batched=True
    )
    start, run = _compiled(loss, settings, True)
    state = _drive(run, start(factors, data), data, settings.max_iter, [])
    count = next(iter(factors.values())).shape[0]
    results = [_to_result(state, settings, index) for index in range(count)]
    data_is_zero = _all_zero(given)
    for result in results:
        _report(result, options.on_nonfinite, data_is_zero)
    return results
