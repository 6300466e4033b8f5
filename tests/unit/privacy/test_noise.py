"""The noise of a fit: Laplace under pure epsilon-DP, Gaussian under zCDP (privacy/noise.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fhirsynth.errors import ConfigError
from fhirsynth.privacy.budget import PrivacyBudget
from fhirsynth.privacy.noise import Noise, zcdp_rho


@pytest.mark.parametrize("eps,delta", [(0.1, 1e-9), (1.0, 1e-9), (1.0, 1e-5), (10.0, 1e-6)])
def test_rho_converts_back_to_the_declared_epsilon(eps, delta) -> None:
    rho = zcdp_rho(eps, delta)
    assert rho > 0
    # Bun & Steinke, Proposition 1.3: rho-zCDP implies (rho + 2 sqrt(rho ln 1/delta), delta)
    assert rho + 2 * math.sqrt(rho * math.log(1 / delta)) == pytest.approx(eps, rel=1e-12)
    assert zcdp_rho(eps * 1.01, delta) > rho and zcdp_rho(eps, delta * 10) > rho


def test_auto_picks_gaussian_only_with_delta() -> None:
    assert Noise.for_budget(PrivacyBudget(epsilon=1.0), "auto").kind == "laplace"
    g = Noise.for_budget(PrivacyBudget(epsilon=1.0, delta=1e-9), "auto")
    assert g.zcdp and g.rho == pytest.approx(zcdp_rho(1.0, 1e-9))
    assert Noise.for_budget(PrivacyBudget(epsilon=1.0, delta=1e-9), "laplace").kind == "laplace"
    with pytest.raises(ConfigError, match="delta"):
        Noise.for_budget(PrivacyBudget(epsilon=1.0), "gaussian")
    with pytest.raises(ConfigError, match="mechanism"):
        Noise.for_budget(PrivacyBudget(epsilon=1.0), "uniform")


def test_auto_chooses_gaussian_only_for_enough_measurements() -> None:
    b = PrivacyBudget(epsilon=1.0, delta=1e-9)
    g = Noise.for_budget(b, "gaussian", reserved=0.02)
    # the zCDP part covers what the pure eps-DP count leaves
    assert g.epsilon == pytest.approx(0.98) and g.rho == pytest.approx(zcdp_rho(0.98, 1e-9))
    threshold = g.epsilon**2 / (4 * g.rho)
    assert 20 < threshold < 23  # about ln(1 / delta) = 20.7
    few = Noise.choose(b, "auto", reserved=0.02, measurements=int(threshold))
    many = Noise.choose(b, "auto", reserved=0.02, measurements=int(threshold) + 1)
    assert few.kind == "laplace" and many.kind == "gaussian"
    # at the threshold the two variances per cell are equal (equal shares)
    m = threshold
    assert 2 * m**2 / g.epsilon**2 == pytest.approx(m / (2 * g.rho))
    # an explicit choice is kept whatever the count
    assert Noise.choose(b, "gaussian", reserved=0.02, measurements=2).kind == "gaussian"
    assert Noise.choose(b, "laplace", reserved=0.02, measurements=500).kind == "laplace"


def test_shares_of_epsilon_are_shares_of_rho() -> None:
    g = Noise.for_budget(PrivacyBudget(epsilon=2.0, delta=1e-7), "gaussian")
    shares = [0.04, 0.5, 0.36, 1.1]
    assert math.fsum(g.rho_of(s) for s in shares) == pytest.approx(g.rho, rel=1e-12)
    for s in shares:
        # a count: sigma^2 = 1 / (2 rho_i); the Laplace epsilon of equal variance
        assert g.sigma(s) ** 2 == pytest.approx(1 / (2 * g.rho_of(s)))
        assert 2 / g.effective(s) ** 2 == pytest.approx(g.sigma(s) ** 2)
        # a selection: the exponential mechanism at eps0 is eps0^2 / 8-zCDP
        assert g.selection_epsilon(s) ** 2 / 8 == pytest.approx(g.rho_of(s))
        # without bounded range (permute-and-flip) an eps0-DP selection is eps0^2 / 2-zCDP
        assert g.selection_epsilon(s, bounded_range=False) ** 2 / 2 == pytest.approx(
            g.rho_of(s))
    lap = Noise("laplace", 2.0)
    assert lap.effective(0.3) == lap.selection_epsilon(0.3) == 0.3
    assert lap.sigma(0.5) == pytest.approx(math.sqrt(2) / 0.5)


def test_many_small_measurements_cost_less_noise_under_zcdp() -> None:
    # 50 equal measurements of a budget eps = 1, delta = 1e-9
    lap = Noise("laplace", 1.0)
    g = Noise.for_budget(PrivacyBudget(epsilon=1.0, delta=1e-9), "gaussian")
    # variance 2 m^2 / eps^2 (Laplace) against m / (2 rho) (Gaussian): 0.42 of it here
    assert g.sigma(1 / 50) ** 2 < 0.5 * lap.sigma(1 / 50) ** 2
    assert g.sigma(1 / 5) > lap.sigma(1 / 5)  # few measurements: Laplace is better


@pytest.mark.parametrize("kind,share", [("laplace", 0.05), ("gaussian", 0.05),
                                        ("gaussian", 0.9)])
def test_drawn_noise_has_the_planned_variance(kind, share) -> None:
    noise = (Noise("laplace", 1.0) if kind == "laplace"
             else Noise.for_budget(PrivacyBudget(epsilon=1.0, delta=1e-6), "gaussian"))
    n = 20_000
    x = noise.add(np.zeros(n), share, np.random.RandomState(7))
    sigma = noise.sigma(share)
    # sample variance: relative sd sqrt((kurtosis - 1) / n), kurtosis 3 (normal), 6 (Laplace)
    rel_sd = math.sqrt((6 - 1 if kind == "laplace" else 2) / n)
    assert abs(x.var() / sigma**2 - 1) < 5 * rel_sd
    assert abs(x.mean()) < 5 * sigma / math.sqrt(n)


def test_a_huge_share_never_gets_less_noise_than_diffprivlib_can_draw() -> None:
    g = Noise.for_budget(PrivacyBudget(epsilon=1000.0, delta=1e-3), "gaussian")
    sigma = g.sigma(1000.0)
    assert sigma >= math.sqrt(2 * math.log(1.25)) - 1e-12
    x = g.add(np.zeros(20_000), 1000.0, np.random.RandomState(3))
    assert abs(x.var() / sigma**2 - 1) < 5 * math.sqrt(2 / 20_000)
