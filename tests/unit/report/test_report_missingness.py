"""The report's per-column account of missingness and the warning for missingness that the
model holds independent of everything else (case 010 without a declared structure)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from fhirsynth.config import LearnConfig
from fhirsynth.domain import Column, TableSpec
from fhirsynth.report.summary import missingness_by_column, model_summary, utility_notes
from fhirsynth.synthesizer import Synthesizer

COLS = (
    Column(name="deceased", categories=("no", "yes"), nullable=False),
    Column(name="death_year", kind="numeric", bounds=(2010.0, 2025.0), integer=True,
           nullable=True),
    Column(name="sex", categories=("f", "m"), nullable=False),
)


def _data(n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    dead = rng.random(n) < 0.3
    year = np.where(dead, rng.integers(2010, 2026, n), np.nan)
    return pd.DataFrame({"deceased": np.where(dead, "yes", "no"), "death_year": year,
                         "sex": rng.choice(["f", "m"], n)})


def _fit(spec: TableSpec, config: LearnConfig | None = None) -> Synthesizer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Synthesizer(spec, epsilon=1.0, random_state=0, config=config).fit(_data())


def test_declared_missingness_is_stated_and_not_warned() -> None:
    spec = TableSpec(name="t", columns=COLS,
                     options={"structure": {"death_year": ["deceased"]}})
    model = _fit(spec).model
    assert missingness_by_column(model) == [
        {"column": "death_year", "parents": ["deceased"], "source": "declared"}]
    line = model_summary(model)["missingness_by_column"][0]
    assert line == "death_year: missing or not depends on deceased (declared in the schema)"
    assert not any("missingness" in n for n in utility_notes(model))


def test_missingness_without_parents_is_stated_and_warned() -> None:
    # no structure budget: every column is fitted without parents
    model = _fit(TableSpec(name="t", columns=COLS), LearnConfig(structure_share=0.0)).model
    assert missingness_by_column(model)[0]["source"] == "none"
    assert "independent of the other columns" in model_summary(model)["missingness_by_column"][0]
    notes = [n for n in utility_notes(model) if "missingness" in n]
    assert len(notes) == 1 and "death_year" in notes[0] and "'structure'" in notes[0]
