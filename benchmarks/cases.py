"""The benchmark cases: which solvers run on which problem, and how long.

A case names a problem and the solvers measured side by side on it. Each
(case, solver) pair runs in its own process when the benchmark isolates
runs, so its peak memory is its own. :func:`build` turns a pair into a
``run(iterations)`` callable and records the work one iteration does, for
the ratios to the machine's limits.

Iteration counts are ``(short, long, repeats)`` for
:func:`timing.time_iterations`, sized so that the full benchmark takes about
ten to fifteen minutes on a 2-core machine.
"""

from __future__ import annotations

import dataclasses

import problems

RANK = 20


@dataclasses.dataclass(frozen=True)
class Solver:
    """One solver of a case, with its iteration counts."""

    name: str
    short: int
    long: int
    repeats: int


@dataclasses.dataclass(frozen=True)
class Case:
    """A problem and the solvers run on it.

    Attributes:
        name: a unique id, such as ``"dense-frobenius"``.
        group: the table of RESULTS.md it belongs to.
        problem: a :class:`problems.Vanilla` or :class:`problems.Chain`.
        loss: ``"frobenius"`` or ``"kl"``.
        solvers: the solvers, the chainnmf one first.
    """

    name: str
    group: str
    problem: object
    loss: str
    solvers: tuple[Solver, ...]


def _vanilla_solvers(ours: tuple[int, int, int], theirs: tuple[int, int, int]):
    return (Solver("chainnmf", *ours), Solver("scikit-learn", *theirs))


# Iteration counts (short, long, repeats) of the chain and terms cases: for
# the library solver and the analytic updates, then for the slow baseline.
_CHAIN_COUNTS = {
    "quick": ((2, 6, 1), (1, 2, 1)),
    "paper": ((50, 550, 9), (10, 60, 5)),
    "large": ((10, 60, 7), (1, 3, 2)),
}


def _chain_solvers(scale: str, ours: str, slow: str) -> tuple[Solver, ...]:
    """Return ``ours``, the analytic JAX updates and the ``slow`` baseline.

    A smoke run leaves out the analytic updates of the terms cases, which the
    chain cases already compile.
    """
    fast, slower = _CHAIN_COUNTS[scale]
    if scale == "quick" and ours != "chainnmf":
        return (Solver(ours, *fast), Solver(slow, *fast))
    return (Solver(ours, *fast), Solver("analytic-jax", *fast), Solver(slow, *slower))


def cases(quick: bool) -> list[Case]:
    """Return every case of a full run, or of a ``--quick`` smoke run."""
    if quick:
        dense = problems.Vanilla(120, 80, 4)
        sparse = problems.Vanilla(300, 500, 4, density=0.01)
        paper = problems.Chain(40, 30, 50, 4)
        large = problems.Chain(60, 40, 70, 4)
        scaling = [problems.Vanilla(100 * s, 250 * s, 4, density=0.02) for s in (1, 2)]
        counts = (2, 6, 1)
    else:
        dense = problems.Vanilla(4000, 2000, RANK)
        sparse = problems.Vanilla(20000, 50000, RANK, density=0.001)
        paper = problems.Chain(630, 350, 1000, RANK)
        large = problems.Chain(4000, 2000, 3000, RANK)
        # One shape, so the factors (and the cache misses of their gathers)
        # stay the same while nnz doubles.
        scaling = [
            problems.Vanilla(20000, 50000, RANK, density=density)
            for density in (0.001, 0.002, 0.004, 0.008)
        ]
        counts = None

    def chain_of(scale):
        return _chain_solvers("quick" if quick else scale, "chainnmf", "paper-numpy")

    def terms_of(scale):
        return _chain_solvers(
            "quick" if quick else scale, "trace-terms", "left-to-right-terms"
        )

    def vanilla(name, problem, loss, ours, theirs):
        solvers = _vanilla_solvers(counts or ours, counts or theirs)
        return Case(name, "vanilla", problem, loss, solvers)

    listed = [
        vanilla("dense-frobenius", dense, "frobenius", (20, 220, 9), (10, 60, 9)),
        vanilla("dense-kl", dense, "kl", (5, 45, 9), (3, 13, 7)),
        vanilla("sparse-frobenius", sparse, "frobenius", (5, 45, 9), (3, 23, 7)),
        vanilla("sparse-kl", sparse, "kl", (3, 24, 9), (2, 7, 5)),
        Case("chain-paper", "chain", paper, "frobenius", chain_of("paper")),
        Case("chain-large", "chain", large, "frobenius", chain_of("large")),
        Case("terms-paper", "terms", paper, "frobenius", terms_of("paper")),
        Case("terms-large", "terms", large, "frobenius", terms_of("large")),
    ]
    for loss in ("frobenius", "kl"):
        for problem in scaling:
            ours = counts or ((3, 24, 5) if problem.nnz < 3_000_000 else (3, 12, 3))
            listed.append(
                Case(
                    f"scaling-{loss}-{problem.nnz}",
                    "scaling",
                    problem,
                    loss,
                    (Solver("chainnmf", *ours),),
                )
            )
    if quick:
        # A smoke run covers each group once and compiles as little as it can.
        smoke_cases = ("dense-frobenius", "chain-paper", "terms-paper")
        listed = [
            case
            for case in listed
            if case.name in smoke_cases or case.name.startswith("scaling-frobenius")
        ]
    return listed


def work(case: Case) -> dict[str, float]:
    """Return the flops and the bytes of data one iteration of ``case`` needs at least.

    Flops count the products of the analytic updates (two multiply-adds per
    entry of each product). Bytes count reading each table, dense or
    sparse, once per block update that uses it, in float32 (a sparse entry
    as its value and its column index).
    """
    problem = case.problem
    k = problem.k
    if isinstance(problem, problems.Chain):
        m, a, b = problem.m, problem.a, problem.b
        # W: Wᵀ X, X (Hᵀ + Y H2ᵀ), X (Z H2 H2ᵀ); H: Wᵀ X; H2: Zᵀ Y.
        flops = 2 * k * (4 * m * a + 2 * a * b)
        return {"flops": float(flops), "bytes": float(4 * (4 * m * a + 2 * a * b))}
    m, n, nnz = problem.m, problem.n, problem.nnz
    if case.loss == "frobenius":
        # V Hᵀ and Wᵀ V, and the k x k Grams with their products.
        flops = 4 * k * nnz + 4 * k * k * (m + n)
    else:
        # W H at the entries and one product with the data ratio, per block.
        flops = 8 * k * nnz
    entry_bytes = 4 if problem.density is None else 8
    return {"flops": float(flops), "bytes": float(2 * entry_bytes * nnz)}


def build(case: Case, solver: str):
    """Return ``run(iterations)`` for ``solver`` on ``case``; data are drawn here."""
    import solvers

    import chainnmf

    problem = case.problem
    if isinstance(problem, problems.Vanilla):
        table = problem.table()
        W, H = problem.start(table)
        if solver == "chainnmf":
            model = chainnmf.vanilla(table, problem.k, loss=case.loss, name="V")
            return solvers.model_runner(model, {"W": W, "H_V": H})
        if solver == "scikit-learn":
            beta = "frobenius" if case.loss == "frobenius" else "kullback-leibler"
            return solvers.sklearn_runner(table, W, H, beta)
        raise ValueError(f"unknown solver {solver!r} for case {case.name!r}")

    X, Y = problem.tables()
    start = problem.start(X, Y)
    if solver == "chainnmf":
        model = chainnmf.chain([X, Y], problem.k, names=["X", "Y"])
        init = {"W": start["W"], "H_X": start["H"], "H_Y": start["H2"]}
        return solvers.model_runner(model, init)
    if solver == "analytic-jax":
        return solvers.analytic_chain_runner(X, Y, start)
    if solver == "paper-numpy":
        return solvers.paper_numpy_runner(X, Y, start)
    if solver in ("trace-terms", "left-to-right-terms"):
        loss = solvers.paper_terms(ordered=solver == "trace-terms")
        return solvers.loss_runner(loss, start, {"X": X, "Y": Y})
    raise ValueError(f"unknown solver {solver!r} for case {case.name!r}")


def find(name: str, quick: bool) -> Case:
    """Return the case called ``name``."""
    for case in cases(quick):
        if case.name == name:
            return case
    raise KeyError(f"no benchmark case {name!r}")


def describe(case: Case) -> str:
    """Return a short description of the problem of ``case``."""
    problem = case.problem
    if isinstance(problem, problems.Chain):
        return (
            f"X {problem.m} x {problem.a}, Y {problem.a} x {problem.b}, k = {problem.k}"
        )
    kind = "dense" if problem.density is None else f"{problem.density:.3g} density"
    return f"{problem.m} x {problem.n} ({kind}, nnz {problem.nnz}), k = {problem.k}"


def nnz(case: Case) -> int:
    """Return the stored entries of every table of ``case``."""
    problem = case.problem
    if isinstance(problem, problems.Chain):
        return problem.m * problem.a + problem.a * problem.b
    return problem.nnz
