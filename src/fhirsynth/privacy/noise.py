"""How a share of the budget becomes noise: pure epsilon-DP Laplace, or Gaussian under zCDP.

The fit plans every step as a share of the release's epsilon.  Under pure epsilon-DP
(``delta`` 0) a share is that step's epsilon: Laplace noise for counts, the exponential
mechanism at that epsilon for selections, and the shares add up (basic composition).
With ``delta`` > 0 the fit can run under zero-concentrated DP instead (Bun & Steinke 2016):
the total is converted to ``rho``, each step gets the same share of ``rho``, counts get
Gaussian noise and selections an exponential mechanism with ``eps0 = sqrt(8 rho_i)``
(bounded range, Cesar & Rogers 2021); the ``rho_i`` add up to ``rho``, which implies the
declared (epsilon, delta).  Many small measurements then cost far less noise: a share s of
the budget gives a noise standard deviation proportional to 1/sqrt(s) instead of 1/s.
Noise is drawn by diffprivlib's mechanisms in both cases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from diffprivlib.mechanisms import Gaussian, Laplace

from fhirsynth.errors import ConfigError
from fhirsynth.privacy.budget import PrivacyBudget

__all__ = ["Noise", "describe_noise", "zcdp_rho"]

#: smallest Gaussian scale diffprivlib's ``Gaussian`` reaches (epsilon 1, delta 1)
_MIN_SIGMA = math.sqrt(2.0 * math.log(1.25))
#: sigma * epsilon used to parametrise diffprivlib's Gaussian for large scales
_SIGMA_EPS = 3.0


def zcdp_rho(epsilon: float, delta: float) -> float:
    """The largest rho whose rho-zCDP implies (epsilon, delta)-DP by Bun & Steinke's bound.

    rho-zCDP implies ``(rho + 2 sqrt(rho ln(1/delta)), delta)``-DP (their Proposition 1.3);
    solving for rho gives ``(sqrt(ln(1/delta) + epsilon) - sqrt(ln(1/delta)))**2``.
    """
    if not (epsilon > 0 and 0 < delta < 1):
        raise ConfigError(f"zCDP needs epsilon > 0 and 0 < delta < 1 (got {epsilon!r}, "
                          f"{delta!r})")
    lg = math.log(1.0 / delta)
    return (math.sqrt(lg + epsilon) - math.sqrt(lg)) ** 2


def describe_noise(kind: str, rho: float | None = None) -> str:
    """How a fit's noise reads on the console: ``kind`` from ``model.info["noise"]``."""
    if kind == "gaussian":
        return "Gaussian noise under zCDP" + (f", rho {rho:.4g}" if rho is not None else "")
    return "Laplace noise, pure epsilon-DP"


def _gaussian(sigma: float, random_state: object) -> Gaussian:
    """diffprivlib's Gaussian mechanism (L2 sensitivity 1) with scale ``sigma``.

    diffprivlib parametrises it by (epsilon <= 1, delta) with scale
    ``sqrt(2 ln(1.25 / delta)) / epsilon``; the pair is chosen to give ``sigma``.  The
    privacy of the step is accounted by its rho, not by that pair.
    """
    e = 1.0 if sigma < _SIGMA_EPS else _SIGMA_EPS / sigma
    d = min(1.0, 1.25 * math.exp(-0.5 * (sigma * e) ** 2))
    return Gaussian(epsilon=e, delta=d, sensitivity=1.0, random_state=random_state)


@dataclass(frozen=True)
class Noise:
    """The noise of one fit: ``kind`` "laplace" or "gaussian" over a total ``epsilon``.

    Every step is planned as a ``share`` of ``epsilon``; the methods say what that share
    buys.  ``rho`` is the zCDP total (Gaussian only).
    """

    kind: str
    epsilon: float
    rho: float = 0.0

    @classmethod
    def for_budget(cls, budget: PrivacyBudget, mechanism: str, *,
                   reserved: float = 0.0) -> Noise:
        """The noise ``mechanism`` asks for over ``budget`` less ``reserved`` epsilon.

        "laplace" (or any mechanism with delta 0 under "auto"): pure epsilon-DP.  "gaussian"
        (and "auto" with delta > 0): zCDP over the epsilon left after ``reserved`` (spent
        by pure epsilon-DP steps elsewhere; basic composition adds the two).  "auto" is
        refined by :func:`choose`; here it only validates.
        """
        if mechanism not in ("auto", "laplace", "gaussian"):
            raise ConfigError(f"mechanism ({mechanism!r}) must be 'auto', 'laplace' or "
                              "'gaussian'")
        if mechanism == "gaussian" and budget.delta <= 0:
            raise ConfigError("mechanism 'gaussian' needs delta > 0 (zCDP converts to "
                              "(epsilon, delta)-DP); give --delta, e.g. 1e-9")
        if mechanism == "laplace" or budget.delta <= 0:
            return cls("laplace", budget.epsilon)
        rest = budget.epsilon - reserved
        return cls("gaussian", rest, zcdp_rho(rest, budget.delta))

    @classmethod
    def choose(cls, budget: PrivacyBudget, mechanism: str, *, reserved: float,
               measurements: int) -> Noise:
        """The noise of the steps after a ``reserved`` pure epsilon-DP part.

        "auto" takes Gaussian noise under zCDP only where it is the smaller: for m
        measurements sharing epsilon e equally, Laplace variance per cell is 2 m^2 / e^2 and
        Gaussian m / (2 rho), so zCDP pays when m > e^2 / (4 rho) (about ln(1/delta)
        measurements, some 21 at delta = 1e-9).  ``measurements`` is the planned number
        (from the spec, the budget and released values only).
        """
        noise = cls.for_budget(budget, mechanism, reserved=reserved)
        if mechanism == "auto" and noise.zcdp and \
                measurements <= noise.epsilon ** 2 / (4.0 * noise.rho):
            return cls("laplace", budget.epsilon)
        return noise

    @property
    def zcdp(self) -> bool:
        return self.kind == "gaussian"

    def rho_of(self, share: float) -> float:
        """The share's part of rho (zCDP), proportional to its share of epsilon."""
        return self.rho * share / self.epsilon

    def sigma(self, share: float) -> float:
        """Standard deviation of the noise on one count measured with ``share``."""
        if share <= 0:
            return math.inf
        if not self.zcdp:
            return math.sqrt(2.0) / share
        return max(1.0 / math.sqrt(2.0 * self.rho_of(share)), _MIN_SIGMA)

    def effective(self, share: float) -> float:
        """Epsilon of a Laplace count with the same noise variance (for post-processing).

        The estimators that weigh noisy counts by their variance (``2 / eps**2`` per cell)
        then hold for both kinds of noise.
        """
        return share if not self.zcdp else math.sqrt(2.0) / self.sigma(share)

    def selection_epsilon(self, share: float, bounded_range: bool = True) -> float:
        """Epsilon of the selection mechanism a selection with ``share`` may use.

        Under zCDP an eps0-DP mechanism is eps0^2 / 2-zCDP, and eps0^2 / 8-zCDP when it has
        bounded range eps0 (the exponential mechanism: Cesar & Rogers 2021);
        ``bounded_range`` False (permute-and-flip) gets ``sqrt(2 rho_i)``.
        """
        if not self.zcdp:
            return share
        return math.sqrt((8.0 if bounded_range else 2.0) * self.rho_of(share))

    def mechanism_name(self) -> str:
        return "gaussian (diffprivlib)" if self.zcdp else "laplace (diffprivlib)"

    def add(self, counts: np.ndarray, share: float, random_state: object) -> np.ndarray:
        """``counts`` (L1 and L2 sensitivity 1) with noise bought by ``share``, cell by cell."""
        if self.zcdp:
            mech = _gaussian(self.sigma(share), random_state)
        else:
            mech = Laplace(epsilon=share, sensitivity=1.0, random_state=random_state)
        return np.fromiter((mech.randomise(float(v)) for v in counts), float, counts.size)

    def composition(self, reserved: float = 0.0) -> str:
        """How the steps compose; ``reserved``: epsilon of pure epsilon-DP steps before."""
        if not self.zcdp:
            return "basic sequential composition (epsilons and deltas add)"
        head = (f"the patient count is pure epsilon-DP (Laplace, epsilon {reserved:.6g}); the "
                "other steps are " if reserved > 0 else "")
        return (head + "zero-concentrated DP (Bun & Steinke 2016): each step's rho is its "
                f"share of rho = {self.rho:.6g}; the rhos add, and rho-zCDP implies "
                f"(epsilon {self.epsilon:.6g}, delta)-DP with epsilon = rho + 2 sqrt(rho "
                "ln(1/delta))" + ("; basic composition adds the two" if reserved > 0 else ""))
