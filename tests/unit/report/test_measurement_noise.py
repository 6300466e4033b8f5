"""The noise of each column's released one-way measurement, read off the budget table."""

from __future__ import annotations

import math

import pytest

from fhirsynth.report.summary import measurement_noise


def test_laplace_and_gaussian_noise_per_released_count() -> None:
    bt = {"steps": [
        {"name": "patient count", "epsilon": 0.02},
        {"name": "table age", "epsilon": 0.1},                       # no parents: its table
        {"name": "table sex", "epsilon": 0.2},                       # with parents ...
        {"name": "marginal sex", "epsilon": 0.05},                   # ... its one-way histogram
        {"name": "marginal bmi (coarse)", "epsilon": 0.3},           # not the fine histogram
        {"name": "table bmi", "epsilon": 0.5},
        {"name": "table hba1c (missing or not)", "epsilon": 0.4},    # not the values
        {"name": "table hba1c", "epsilon": 0.04, "rho": 0.0002},     # zCDP: Gaussian
        {"name": "structure 1/3", "epsilon": 0.01},
    ]}
    got = measurement_noise(bt)
    assert set(got) == {"age", "sex", "bmi", "hba1c"}
    assert got["age"] == pytest.approx(math.sqrt(2) / 0.1)
    assert got["sex"] == pytest.approx(math.sqrt(2) / 0.05)
    assert got["bmi"] == pytest.approx(math.sqrt(2) / 0.5)
    assert got["hba1c"] == pytest.approx(1 / math.sqrt(2 * 0.0002))
