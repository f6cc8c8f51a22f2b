"""Time per iteration, compile time, peak memory and the machine's own limits.

Every solver is wrapped as ``run(iterations)``, which runs that many
iterations from the same start and returns when the result is on the host.
The time per iteration is the slope between a short and a long run,

    (min T(long) − min T(short)) / (long − short),

taken over interleaved repeats. The slope cancels what every call pays once
(input checks, data conversion, the final loss), and the minimum discards
repeats slowed down by other processes on the machine. The first call also
compiles (for JAX solvers); its excess over the fastest short run is
reported as the compile time.

A chainnmf fit compiles once per iteration limit, so chainnmf solvers also
offer ``run.chunked(total, chunk)``: one fit of ``total`` sweeps that calls
back after every ``chunk`` sweeps and returns the times of those calls. The
time per iteration is then the fastest interval between two callbacks
divided by ``chunk``, which also leaves out the once-per-call work, and the
first call compiles only once.
"""

from __future__ import annotations

import itertools
import resource
import time
from collections.abc import Callable


def peak_rss_mib() -> float:
    """Return the peak resident memory of this process so far, in MiB.

    On Linux ``ru_maxrss`` counts KiB. The value is a high-water mark, so a
    solver's own peak is the value after it ran, in a process that ran only
    that solver.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _elapsed(run: Callable[[int], object], iterations: int) -> float:
    start = time.perf_counter()
    run(iterations)
    return time.perf_counter() - start


def time_iterations(
    run: Callable[[int], object], short: int, long: int, repeats: int
) -> dict[str, object]:
    """Measure ``run`` as described in the module docstring.

    Args:
        run: runs the given number of iterations and blocks until done.
        short: iterations of the short run, at least 1.
        long: iterations of the long run, more than ``short``.
        repeats: interleaved (short, long) pairs after one warm-up of each.

    Returns:
        A record with ``per_iteration_s``, ``compile_s`` (the first call's
        excess over the fastest short call), the iteration counts and every
        measured time.
    """
    if not 1 <= short < long:
        raise ValueError(f"expected 1 <= short < long, got {short} and {long}")
    first = _elapsed(run, short)
    _elapsed(run, long)
    shorts, longs = [], []
    for _ in range(repeats):
        shorts.append(_elapsed(run, short))
        longs.append(_elapsed(run, long))
    per_iteration = (min(longs) - min(shorts)) / (long - short)
    return {
        "per_iteration_s": per_iteration,
        "compile_s": max(first - min(shorts), 0.0),
        "short": short,
        "long": long,
        "short_s": shorts,
        "long_s": longs,
    }


def time_chunks(
    chunked: Callable[[int, int], list[float]], short: int, long: int, repeats: int
) -> dict[str, object]:
    """Measure a chunked solver (see the module docstring).

    Args:
        chunked: ``chunked(total, chunk)`` runs ``total`` iterations and
            returns the time after each ``chunk`` of them, plus its start time
            first.
        short: iterations per chunk.
        long: iterations per call, a multiple of ``short`` of at least twice it.
        repeats: calls after the first, which also compiles.

    Returns:
        The record of :func:`time_iterations`, with the chunk intervals in
        ``chunk_s``.
    """
    if long < 2 * short:
        raise ValueError(f"expected long >= 2 short, got {short} and {long}")
    first = chunked(long, short)
    intervals = []
    for _ in range(repeats):
        times = chunked(long, short)
        intervals += [b - a for a, b in itertools.pairwise(times[1:])]
    fastest = min(intervals)
    return {
        "per_iteration_s": fastest / short,
        "compile_s": max(first[1] - first[0] - fastest, 0.0),
        "short": short,
        "long": long,
        "chunk_s": intervals,
    }


def measure(run, short: int, long: int, repeats: int) -> dict[str, object]:
    """Time ``run`` by chunks when it offers them, else by the slope."""
    if hasattr(run, "chunked"):
        return time_chunks(run.chunked, short, long, repeats)
    return time_iterations(run, short, long, repeats)


def matmul_rate(size: int, repeats: int) -> float:
    """Return the best float32 matmul rate of JAX on the default device, GFLOP/s.

    Measured on ``size x size`` operands (``2 size³`` flops per product).
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(0)
    left = jnp.asarray(rng.random((size, size), dtype=np.float32))
    right = jnp.asarray(rng.random((size, size), dtype=np.float32))
    product = jax.jit(jnp.matmul)
    product(left, right).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product(left, right).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def copy_bandwidth(mebibytes: int, repeats: int) -> float:
    """Return the best memory bandwidth of a jitted ``x + 1`` in JAX, GB/s.

    The array is float32 of ``mebibytes`` MiB; each call reads and writes it
    once, so the traffic is twice its size.
    """
    import jax
    import jax.numpy as jnp

    count = mebibytes * 2**20 // 4
    array = jnp.zeros(count, jnp.float32)
    increment = jax.jit(lambda x: x + 1)
    increment(array).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        increment(array).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * count * 4 / best / 1e9
