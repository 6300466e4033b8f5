"""Evaluation refuses tables it cannot compare instead of measuring something else (trial 25):
a modelled column missing from a table, a table without rows."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from fhirsynth.domain import Column, TableSpec
from fhirsynth.errors import TableInputError
from fhirsynth.evaluate import evaluate_fidelity, evaluate_privacy

SPEC = TableSpec(name="s", target="stroke", positive="1", columns=(
    Column(name="age", kind="numeric", bounds=(0, 89), integer=True, nullable=False),
    Column(name="smoker", categories=("yes", "no")),
    Column(name="stroke", categories=("0", "1"), nullable=False, role="target"),
    Column(name="id", role="drop"),
))


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.integers(0, 90, n), "smoker": rng.choice(["yes", "no"], n),
                         "stroke": rng.choice(["0", "1"], n)})


REAL, SYNTH, HOLD = _table(200, 0), _table(200, 1), _table(60, 2)


def test_a_modelled_column_missing_from_the_synthetic_table_is_an_error_naming_it():
    # the target was left out silently and utility became None
    with pytest.raises(TableInputError) as err:
        evaluate_fidelity(SPEC, REAL, SYNTH.drop(columns=["stroke", "smoker"]))
    assert str(err.value).startswith("evaluate_fidelity: nothing comparable")
    assert [str(i) for i in err.value.issues] == [
        "the synthetic table: lacks modelled column(s) ['smoker', 'stroke'] (the target "
        "among them)"]


def test_every_table_missing_a_column_is_named_in_one_error():
    with pytest.raises(TableInputError) as err:
        evaluate_fidelity(SPEC, REAL.drop(columns=["age"]), SYNTH,
                          real_test=HOLD.drop(columns=["smoker"]))
    assert [str(i) for i in err.value.issues] == [
        "the real table: lacks modelled column(s) ['age']",
        "the real test table: lacks modelled column(s) ['smoker']"]


def test_an_empty_synthetic_table_is_an_error_and_no_numpy_warning_leaks():
    # it returned a TVD of 0.5 with "Mean of empty slice" RuntimeWarnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TableInputError) as err:
            evaluate_fidelity(SPEC, REAL, SYNTH.iloc[:0])
    assert [str(i) for i in err.value.issues] == ["the synthetic table: has no rows"]


def test_privacy_tests_on_an_empty_holdout_or_a_partial_table_are_an_error():
    # an empty holdout returned {'note': 'not run: ...'}
    with pytest.raises(TableInputError) as err:
        evaluate_privacy(SPEC, REAL, HOLD.iloc[:0], SYNTH)
    assert str(err.value).startswith("evaluate_privacy: nothing comparable")
    assert [str(i) for i in err.value.issues] == ["the holdout table: has no rows"]
    with pytest.raises(TableInputError, match=r"the synthetic table: lacks modelled "
                                              r"column\(s\) \['age'\]"):
        evaluate_privacy(SPEC, REAL, HOLD, SYNTH.drop(columns=["age"]))

