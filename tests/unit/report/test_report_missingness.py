"""The report's per-column account of missingness and the warning for missingness that the
model holds independent of everything else (case 010 without a declared structure)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from fhirsynth.config import LearnConfig
from fhirsynth.domain import Column, TableSpec
from fhirsynth.errors import ReproducibleNoiseWarning
from fhirsynth.report.summary import (
    missingness_by_column,
    model_summary,
    structure_searched,
    utility_notes,
)
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


def _fit(spec: TableSpec, config: LearnConfig | None = None, *, n: int = 3000,
         epsilon: float = 1.0, seed: int = 0) -> Synthesizer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Synthesizer(spec, epsilon=epsilon, random_state=seed, config=config).fit(
            _data(n))


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
    # structure_share 0: no search ran, and the reason is the configuration, not the data
    assert "no structure search ran" in notes[0]
    alone = [n for n in utility_notes(model) if n.startswith("every column was sampled")]
    assert len(alone) == 1 and "structure_share or degree 0" in alone[0]


def test_no_structure_search_says_columns_are_independent() -> None:
    # 60 patients at epsilon 0.2: noisy count x budget too small for any table with parents,
    # so the fit skips the structure search (learn: "fitting without structure")
    model = _fit(TableSpec(name="t", columns=COLS), n=60, epsilon=0.2).model
    assert not structure_searched(model) and model.info["degree_used"] == 0
    assert all(not p for p in model.graph().values())
    notes = utility_notes(model)
    alone = [n for n in notes if n.startswith("every column was sampled independently")]
    assert len(alone) == 1
    assert "no association between columns is kept" in alone[0]
    assert "signal" in alone[0] and "larger epsilon" in alone[0] and "larger cohort" in alone[0]
    miss = [n for n in notes if n.startswith("the missingness of death_year")]
    assert len(miss) == 1 and "no structure search ran" in miss[0]
    assert "gave no parent" not in miss[0]
    # the same notes reach the shareable report's model summary
    assert alone[0] in model_summary(model, notes=notes)["notes"]


def test_structure_search_without_parent_keeps_its_wording() -> None:
    # a real search that happens to leave death_year first in the order (fixed seed)
    model = _fit(TableSpec(name="t", columns=COLS), seed=1).model
    assert structure_searched(model) and model.info["degree_used"] >= 1
    assert missingness_by_column(model)[0]["source"] == "none"
    notes = utility_notes(model)
    assert not any(n.startswith("every column was sampled") for n in notes)
    miss = [n for n in notes if n.startswith("the missingness of death_year")]
    assert len(miss) == 1 and "the structure search gave no parent" in miss[0]


def test_a_long_list_of_independent_missingness_is_cut_to_five_names() -> None:
    cols = tuple(Column(name=f"lab{i}", kind="numeric", bounds=(0.0, 10.0), bins=4,
                        nullable=True) for i in range(7))
    rng = np.random.default_rng(0)
    df = pd.DataFrame({f"lab{i}": np.where(rng.random(400) < 0.3, np.nan, rng.uniform(0, 10, 400))
                       for i in range(7)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Synthesizer(TableSpec(name="t", columns=cols), epsilon=1.0, random_state=0,
                            config=LearnConfig(structure_share=0.0)).fit(df).model
    note = next(n for n in utility_notes(model) if n.startswith("the missingness of"))
    assert "lab0, lab1, lab2, lab3, lab4 and 2 more nullable columns" in note
    assert "lab5" not in note and "lab6" not in note


def test_the_python_api_warns_what_the_cli_prints() -> None:
    # a trial: Synthesizer.fit said nothing where `fhirsynth fit` and `run` warned that
    # every column was sampled independently; the notes now come as LowUtilityWarnings
    import pytest

    from fhirsynth.errors import LowUtilityWarning

    synth = Synthesizer(TableSpec(name="t", columns=COLS), epsilon=0.2, random_state=0)
    with pytest.warns(LowUtilityWarning) as got:
        synth.fit(_data(60))
    said = [str(w.message) for w in got if issubclass(w.category, LowUtilityWarning)]
    assert synth.notes_ == utility_notes(synth.model) and synth.notes_
    assert all(note in said for note in synth.notes_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the CLI's own route: notes kept, not warned
        warnings.simplefilter("ignore", ReproducibleNoiseWarning)  # (the seed is said)
        quiet = Synthesizer(TableSpec(name="t", columns=COLS), epsilon=0.2, random_state=0)
        quiet.fit(_data(60), _warn_notes=False)
    assert quiet.notes_ == synth.notes_


def test_columns_left_with_one_value_are_named() -> None:
    # a trial: 16 of 50 columns of a noise-bound release came out constant and nothing said
    # so; the notes name them, from the released tables alone
    from fhirsynth.report.summary import single_value_columns

    spec = TableSpec(name="t", columns=(*COLS, Column(name="country", categories=("US",),
                                                      nullable=False)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Synthesizer(spec, epsilon=1.0, random_state=0).fit(
            _data().assign(country="US")).model
    assert single_value_columns(model) == []  # "country" has one public state: not counted
    assert not any("a single state" in n for n in utility_notes(model))
    sex = model.by_name["sex"]
    sex.cpd[:] = 0.0
    sex.cpd[1] = 1.0  # "m" under every parent configuration
    assert single_value_columns(model) == ["sex"]
    (note,) = [n for n in utility_notes(model) if "a single state" in n]
    assert note.startswith("1 of 4 columns") and "(sex)" in note
