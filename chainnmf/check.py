"""Checks for a user's own loss terms: declared signs, and agreement with known rules.

* :func:`check_term_signs` evaluates the gradient of each ``split="sign"`` term
  at random nonnegative points. Such a term must be nondecreasing in every
  factor on the nonnegative orthant. A negative gradient entry means that a
  minus sign inside the function belongs in ``sign=-1``, or that the term
  needs ``split="elementwise"``. :func:`chainnmf.split_gradient` clips a sign
  group's gradient at zero, so a wrong sign raises nothing and silently
  changes the update.
* :func:`compare_with_rules` compares the engine's ``(∇⁻, ∇⁺)`` with an
  analytic rule, such as one from :mod:`chainnmf.oracles`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from chainnmf.mu import split_gradient
from chainnmf.numerics import eps
from chainnmf.terms import Loss, Term

__all__ = ["SignFinding", "check_term_signs", "compare_with_rules"]


@dataclasses.dataclass(frozen=True)
class SignFinding:
    """A ``split="sign"`` term whose gradient has a negative or non-finite entry.

    Attributes:
        term: the term's name.
        term_index: the term's position in ``loss.terms``, since names may repeat.
        factor: the factor the gradient is taken with respect to.
        value: the worst entry of the gradient of the unweighted function ``f``
            over all points: a non-finite entry if there is one, else the most
            negative entry.
        index: the position of that entry in the factor.
        point: the random point (counted from 0) where it was found.
        max_abs: the largest finite absolute entry of that gradient, for scale.
    """

    term: str
    term_index: int
    factor: str
    value: float
    index: tuple[int, ...]
    point: int
    max_abs: float

    def __str__(self) -> str:
        if np.isfinite(self.value):
            problem = f"has the negative entry {self.value:.3g}"
        else:
            problem = f"has the non-finite entry {self.value}"
        return (
            f"term {self.term_index} ({self.term!r}): the gradient with respect to "
            f"{self.factor} {problem} at {self.index} (point {self.point}, largest "
            f"absolute entry {self.max_abs:.3g}). A split='sign' term must be "
            "nondecreasing in every factor: move the minus sign into sign=-1 or "
            "declare split='elementwise'."
        )


def _term_gradient(term: Term, block: str):
    """Return a jitted ``values -> ∇_block f``: the gradient of the term's function.

    The gradient is of ``f`` alone, without the term's sign and weight. It is
    compiled once per (term, factor) and reused for every point.
    """

    def value(theta, values):
        arguments = (theta if arg == block else values[arg] for arg in term.args)
        return term.fn(*arguments)

    gradient = jax.grad(value)
    return jax.jit(lambda values: gradient(values[block], values))


def _draw_points(loss: Loss, factors, points: int, seed: int) -> list[dict]:
    """Draw ``points`` sets of factors with i.i.d. U(0, 1) entries."""
    rng = np.random.default_rng(seed)
    shapes = {}
    for name in loss.factors:
        if name not in factors:
            raise ValueError(
                f"factors has no entry for {name!r}, but the loss's factors are "
                f"{list(loss.factors)}"
            )
        shapes[name] = (np.shape(factors[name]), jnp.asarray(factors[name]).dtype)
    return [
        {
            name: jnp.asarray(rng.uniform(size=shape), dtype=dtype)
            for name, (shape, dtype) in shapes.items()
        }
        for _ in range(points)
    ]


def _worst_entry(gradient: np.ndarray, rtol: float):
    """Return ``(value, index, max_abs)`` of the worst entry, or None if all pass.

    An entry fails when it is non-finite, or below ``−rtol · max_abs``.
    """
    finite = np.isfinite(gradient)
    max_abs = float(np.max(np.abs(gradient[finite]), initial=0.0))
    if not finite.all():
        flat = int(np.argmin(finite.ravel()))
    else:
        flat = int(np.argmin(gradient.ravel()))
        if gradient.ravel()[flat] >= -rtol * max_abs:
            return None
    index = tuple(int(i) for i in np.unravel_index(flat, gradient.shape))
    return float(gradient[index]), index, max_abs


def _is_worse(candidate: SignFinding, current: SignFinding | None) -> bool:
    """Order findings: a non-finite entry first, then the most negative entry."""
    if current is None:
        return True
    if not np.isfinite(current.value):
        return False
    return not np.isfinite(candidate.value) or candidate.value < current.value


def check_term_signs(
    loss: Loss,
    factors: Mapping[str, object],
    data: Mapping[str, object],
    *,
    points: int = 5,
    seed: int = 0,
    rtol: float | None = None,
) -> list[SignFinding]:
    """Find the ``split="sign"`` terms whose gradient has entries of the wrong sign.

    For every ``split="sign"`` term and every factor among its arguments, the
    gradient of the term's function ``f`` (without its sign and weight) is
    evaluated at ``points`` random points. Each point draws every factor with
    i.i.d. U(0, 1) entries, in the shape and dtype of ``factors``. The data
    are used as given. A term with weight 0 is still checked. Terms with
    ``split="elementwise"`` are skipped, because their gradients may take
    either sign.

    Args:
        loss: the loss whose terms are checked.
        factors: every factor of ``loss`` by name. Only their shapes and
            dtypes are used.
        data: every data table of ``loss`` by name.
        points: the number of random points, at least 1.
        seed: the seed of the NumPy generator that draws the points.
        rtol: an entry counts as negative when it is below ``−rtol`` times the
            largest absolute entry of the same gradient. The default,
            ``100 · ε`` of the factor's dtype, tolerates round-off in
            functions that cancel terms.

    Returns:
        One :class:`SignFinding` per (term, factor) pair that failed, with the
        worst entry over all points, in the order of ``loss.terms``. An empty
        list means that no point gave a wrong sign, which is evidence but
        not a proof.
    """
    if isinstance(points, bool) or int(points) != points or points < 1:
        raise ValueError(f"points must be a whole number >= 1, got {points!r}")
    samples = _draw_points(loss, factors, int(points), seed)

    findings = []
    for term_index, term in enumerate(loss.terms):
        if term.split != "sign":
            continue
        blocks = [arg for arg in dict.fromkeys(term.args) if arg in loss.factors]
        for block in blocks:
            tolerance = 100 * eps(samples[0][block].dtype) if rtol is None else rtol
            worst = None
            term_gradient = _term_gradient(term, block)
            for point, sample in enumerate(samples):
                merged = {**data, **sample}
                values = {name: merged[name] for name in term.args}
                gradient = np.asarray(term_gradient(values))
                entry = _worst_entry(gradient, tolerance)
                if entry is None:
                    continue
                value, index, max_abs = entry
                finding = SignFinding(
                    term.name, term_index, block, value, index, point, max_abs
                )
                if _is_worse(finding, worst):
                    worst = finding
            if worst is not None:
                findings.append(worst)
    return findings


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Return ``max |actual − expected| / max |expected|`` (0 when both are 0)."""
    difference = float(np.max(np.abs(actual - expected), initial=0.0))
    reference = float(np.max(np.abs(expected), initial=0.0))
    if reference == 0.0:
        return 0.0 if difference == 0.0 else float("inf")
    return difference / reference


def compare_with_rules(
    loss: Loss,
    factors: Mapping[str, object],
    data: Mapping[str, object],
    rules: Mapping[str, tuple[object, object]],
    *,
    scale: float = 1.0,
) -> dict[str, float]:
    """Compare the engine's gradient split with analytic rules, factor by factor.

    For each factor ``θ`` in ``rules``, :func:`chainnmf.split_gradient` gives
    ``(∇⁺, ∇⁻)`` and the rule gives ``(numerator, denominator)``. The error of
    ``θ`` is the larger of the relative errors of ``∇⁻`` against
    ``scale · numerator`` and of ``∇⁺`` against ``scale · denominator``. Each
    relative error is ``max |engine − rule| / max |rule|``, a normwise
    measure, so an entry much smaller than the largest one counts only in
    absolute terms.

    Args:
        loss: the loss, with its terms as the user wrote them.
        factors: every factor of ``loss`` by name.
        data: every data table of ``loss`` by name.
        rules: ``{factor name: (numerator, denominator)}``, as returned by the
            functions of :mod:`chainnmf.oracles`. Only these factors are
            compared.
        scale: the factor between gradient and rule. It is 2 for the
            Frobenius rules of :mod:`chainnmf.oracles` (with the default
            ``frobenius_scale=1``), which omit the factor 2 of the gradient,
            and 1 for KL rules.

    Returns:
        The error of each factor of ``rules``, in the order of ``rules``.

    Raises:
        ValueError: when a factor of ``rules`` is not a factor of ``loss``, or
            a rule's shape differs from the factor's.
    """
    errors = {}
    for name, (numerator, denominator) in rules.items():
        if name not in loss.factors:
            raise ValueError(
                f"rules has an entry for {name!r}, which is not a factor of the "
                f"loss, whose factors are {list(loss.factors)}"
            )
        shape = np.shape(factors[name])
        for part, array in (("numerator", numerator), ("denominator", denominator)):
            if np.shape(array) != shape:
                raise ValueError(
                    f"the {part} of the rule for {name!r} has shape "
                    f"{np.shape(array)}, but the factor has shape {shape}"
                )
        grad_plus, grad_minus = split_gradient(loss, name, factors, data)
        errors[name] = max(
            _relative_error(
                np.asarray(grad_minus, np.float64),
                scale * np.asarray(numerator, np.float64),
            ),
            _relative_error(
                np.asarray(grad_plus, np.float64),
                scale * np.asarray(denominator, np.float64),
            ),
        )
    return errors
