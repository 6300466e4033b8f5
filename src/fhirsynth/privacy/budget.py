"""One validated privacy budget, and the accountant that records how a run spends it.

:class:`PrivacyBudget` is the only place (epsilon, delta) are validated: the CLI, config
files and the Python API all build one.  :class:`Accountant` records every noisy step of a
run (name, mechanism, sensitivity, epsilon, delta) under basic sequential composition: a
step is *checked* before the data is touched and *spent* after, and the recorded steps can
never add up to more than the declared total.  Its :meth:`Accountant.table` is the budget
table of the audit record and the PDF.
"""

from __future__ import annotations

import logging
import math
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any

from fhirsynth.errors import PrivacyBudgetError

__all__ = ["LARGE_DELTA", "LARGE_EPSILON", "MIN_EPSILON", "Accountant", "PrivacyBudget",
           "Step"]

logger = logging.getLogger(__name__)

#: float slack when comparing sums of shares with the total
_TOL = 1e-9
#: the largest delta a release accepts without an explicit override
LARGE_DELTA = 1e-5
#: the largest epsilon a release accepts without an explicit override (the first release of
#: a source also sets its ledger cap, so a mistyped epsilon would stay as the cap)
LARGE_EPSILON = 10.0
#: the smallest epsilon accepted.  Below it every noise scale is astronomically large (a
#: Laplace count at epsilon 1e-6 has a standard deviation of 1.4 million), so the output is
#: noise whatever the data; far below it (1e-320, a subnormal float) shares of the budget
#: underflow to 0 and the fit cannot even run.
MIN_EPSILON = 1e-6


def _check_real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise PrivacyBudgetError(
            f"{name} ({value!r}) must be a real number, not {type(value).__name__}"
        )
    x = float(value)
    if math.isnan(x):
        raise PrivacyBudgetError(f"{name} ({value!r}) must be a number, not NaN")
    return x


@dataclass(frozen=True, kw_only=True)
class PrivacyBudget:
    """A total privacy loss for one release.

    Parameters
    ----------
    epsilon : float, finite and at least :data:`MIN_EPSILON` (1e-6)
        Total privacy loss of the release, per patient.  A smaller epsilon is refused: its
        output would be pure noise, and its shares of the budget underflow.
    delta : float, in [0, 1)
        Probability with which the epsilon bound may fail; 0 for pure epsilon-DP.
    """

    epsilon: float
    delta: float = 0.0

    def __post_init__(self) -> None:
        eps = _check_real("epsilon", self.epsilon)
        if not (eps > 0 and math.isfinite(eps)):
            raise PrivacyBudgetError(f"epsilon ({self.epsilon!r}) must be a finite number > 0")
        if eps < MIN_EPSILON:
            raise PrivacyBudgetError(
                f"epsilon ({eps:g}) is below {MIN_EPSILON:g}: the noise would drown any "
                "signal (a Laplace count then has a standard deviation above a million); "
                "values of 0.1 to 4 are usual")
        delta = _check_real("delta", self.delta)
        if not 0 <= delta < 1:
            raise PrivacyBudgetError(f"delta ({self.delta!r}) must lie in [0, 1)")
        object.__setattr__(self, "epsilon", eps)
        object.__setattr__(self, "delta", delta)

    @classmethod
    def parse(cls, epsilon: object, delta: object = 0.0) -> PrivacyBudget:
        """Build from user text (CLI, YAML): ``"1.5"`` is accepted, ``"abc"`` names the field."""
        return cls(epsilon=_parse_number("epsilon", epsilon), delta=_parse_number("delta", delta))

    def check_release(self, *, allow_large_epsilon: bool = False,
                      allow_large_delta: bool = False, cap: bool = False) -> None:
        """Refuse, for a release or a charged fit, an epsilon above :data:`LARGE_EPSILON`
        or a delta above :data:`LARGE_DELTA` unless allowed.

        Above epsilon 10 the formal guarantee says little (a factor e^10 = 22,000 on any
        patient's influence), and the first charge of a source sets its ledger cap, so a
        typo such as ``--epsilon 1e6`` would spend and cap a dataset for good.  delta is
        the probability that the epsilon bound fails for any one patient; above about
        1 / (number of patients) a mechanism may publish a patient's record outright.  The
        cohort size is private, so the rule is a public bound.  ``cap``: the budget is a
        ledger cap (``ledger set-cap``), the total a source's releases may spend together;
        the same bounds hold, since a mistyped cap would let releases pile up.
        """
        if self.epsilon > LARGE_EPSILON and not allow_large_epsilon:
            why = ("releases up to it together would give a weak guarantee" if cap else
                   "the guarantee is then weak, and the first release of a source sets its "
                   "ledger cap")
            raise PrivacyBudgetError(
                f"{'a cap of ' if cap else ''}epsilon ({self.epsilon:g}) is above "
                f"{LARGE_EPSILON:g}: {why}; values of 0.1 to 4 are usual. Pass "
                "--allow-large-epsilon to use it anyway")
        if self.delta > LARGE_DELTA and not allow_large_delta:
            raise PrivacyBudgetError(
                f"{'a cap of ' if cap else ''}delta ({self.delta:g}) is above "
                f"{LARGE_DELTA:g}: the guarantee may then fail for a patient with that "
                "probability; keep delta far below 1 / (number of patients), e.g. 1e-9, or "
                "pass --allow-large-delta to use it anyway")

    def plausibility(self) -> list[str]:
        """Notes on valid but unusual values (for the log and the report; never blocking)."""
        notes = []
        if self.epsilon > 10:
            notes.append(
                f"epsilon = {self.epsilon:g} is very large: the formal guarantee is weak "
                "(values of 0.1 to 4 are usual for a public release)"
            )
        elif self.epsilon > 4:
            notes.append(f"epsilon = {self.epsilon:g} is above the usual range of 0.1 to 4")
        if self.delta > 1e-5:
            notes.append(
                f"delta = {self.delta:g} is large: keep delta well below 1 / (number of patients)"
            )
        return notes


def _parse_number(name: str, value: object) -> float:
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise PrivacyBudgetError(f"{name} ({value!r}) must be a number") from None
    return _check_real(name, value)


@dataclass(frozen=True, kw_only=True)
class Step:
    """One noisy measurement of the private data, as recorded in the audit."""

    name: str
    mechanism: str
    epsilon: float
    delta: float = 0.0
    sensitivity: float = 1.0
    rho: float | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != ""}


def _at_most_total(spent: float, total: float) -> float:
    """``spent``, or ``total`` when ``spent`` passes it by no more than float rounding."""
    return total if total < spent <= total * (1 + _TOL) + 1e-15 else spent


@dataclass
class Accountant:
    """Records the steps of one run against a declared :class:`PrivacyBudget`.

    Composition is basic sequential composition: the epsilons add, the deltas add.  A step
    that would take the run past its total raises :class:`PrivacyBudgetError` *before* any
    noise is drawn (``check``), and ``spend`` records it after.
    """

    budget: PrivacyBudget
    steps: list[Step] = field(default_factory=list)

    composition: str = "basic sequential composition (epsilons and deltas add)"
    #: zCDP total when the steps are accounted in rho (see fhirsynth.privacy.noise): each
    #: step's ``epsilon`` is then its share of the total, and the delta is spent as a whole
    rho_total: float | None = None

    @property
    def spent_epsilon(self) -> float:
        return math.fsum(s.epsilon for s in self.steps)

    @property
    def spent_delta(self) -> float:
        if self.rho_total is not None:
            return self.budget.delta if self.steps else 0.0
        return math.fsum(s.delta for s in self.steps)

    @property
    def remaining_epsilon(self) -> float:
        return max(0.0, self.budget.epsilon - self.spent_epsilon)

    @property
    def remaining_delta(self) -> float:
        return max(0.0, self.budget.delta - self.spent_delta)

    def check(self, epsilon: float, delta: float = 0.0, *, name: str = "step") -> None:
        """Raise if spending (epsilon, delta) now would pass the total."""
        if not (epsilon >= 0 and math.isfinite(epsilon)) or not 0 <= delta < 1:
            raise PrivacyBudgetError(
                f"step {name!r}: epsilon ({epsilon!r}) must be finite and >= 0, "
                f"delta ({delta!r}) in [0, 1)"
            )
        eps_after = self.spent_epsilon + epsilon
        delta_after = self.spent_delta + delta
        if eps_after > self.budget.epsilon * (1 + _TOL) + _TOL:
            raise PrivacyBudgetError(
                f"step {name!r} needs epsilon {epsilon:g} but only {self.remaining_epsilon:g} "
                f"of {self.budget.epsilon:g} remains"
            )
        if delta_after > self.budget.delta * (1 + _TOL) + 1e-15:
            raise PrivacyBudgetError(
                f"step {name!r} needs delta {delta:g} but only {self.remaining_delta:g} "
                f"of {self.budget.delta:g} remains"
            )

    def spend(self, step: Step) -> None:
        """Record a step whose noise has been drawn (checked again first)."""
        self.check(step.epsilon, step.delta, name=step.name)
        self.steps.append(step)
        logger.debug("spent %s: epsilon=%g delta=%g", step.name, step.epsilon, step.delta)

    def table(self) -> dict[str, Any]:
        """The budget table of the audit record.

        A spent total that passes its total only by float rounding of the shares (within the
        tolerance :meth:`check` allows) is written as the total: the record says spent is
        never above the total, and the steps still add up to it within that tolerance.
        """
        return {
            "epsilon_total": self.budget.epsilon,
            "delta_total": self.budget.delta,
            "epsilon_spent": _at_most_total(self.spent_epsilon, self.budget.epsilon),
            "delta_spent": _at_most_total(self.spent_delta, self.budget.delta),
            "composition": self.composition,
            **({} if self.rho_total is None else {
                "rho_total": self.rho_total,
                "rho_spent": _at_most_total(math.fsum(s.rho or 0.0 for s in self.steps),
                                            self.rho_total)}),
            "steps": [s.to_dict() for s in self.steps],
        }
