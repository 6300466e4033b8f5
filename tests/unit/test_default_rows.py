"""The default number of synthetic rows: the noisy patient count within public bounds (trial 13:
at epsilon 1e-6 the count became 174 million rows and the run failed after its charge)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from fhirsynth.pipeline import (
    MAX_DEFAULT_ROWS,
    UNRELIABLE_COUNT_ROWS,
    RunConfig,
    _default_rows,
)


def _model(noisy: int, eps_count: float) -> SimpleNamespace:
    return SimpleNamespace(info={"n_patients_noisy": noisy}, budget={"steps": [
        {"name": "patient count", "epsilon": eps_count}]})


CFG = RunConfig(inputs=["x"], out="o", epsilon=1.0)


@pytest.mark.parametrize(("noisy", "eps_count", "rows", "noted"), [
    (300, 0.02, 300, False),            # Synthea 300 at epsilon 1: sd 71, reliable
    (120, 0.02, 120, True),             # the fixture cohort: within three sds, said so
    (25, 0.02, 100, True),              # below the floor
    (1, 2e-4, 100, True),               # epsilon 0.01, the noise fell low: said so too
    (1_016_778, 2e-6, UNRELIABLE_COUNT_ROWS, True),   # stroke at epsilon 1e-4: sd 707,107
    (174_373_956, 2e-8, UNRELIABLE_COUNT_ROWS, True),  # stroke at epsilon 1e-6
    (3_000_000, 0.2, MAX_DEFAULT_ROWS, True),          # a reliable count above the cap
    (40_000, 0.02, 40_000, False),
])
def test_default_rows(noisy: int, eps_count: float, rows: int, noted: bool) -> None:
    notes: list[str] = []
    assert _default_rows(_model(noisy, eps_count), CFG, notes) == rows
    assert bool(notes) is noted
    sd = math.sqrt(2) / eps_count
    if noisy < 3 * sd:  # trial 14: a count of 1 at epsilon 0.01 gave 100 rows without a word
        assert "says little of the cohort's size" in notes[0] and f"{sd:,.0f}" in notes[0]
