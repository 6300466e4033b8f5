"""A DataFrame that does not fit its spec: one error listing every column's problem (trial 25)."""

from __future__ import annotations

import pandas as pd
import pytest

from fhirsynth.domain import Column, TableSpec
from fhirsynth.encode import encode, encode_column
from fhirsynth.errors import TableInputError
from fhirsynth.synthesizer import Synthesizer

SPEC = TableSpec(name="t", columns=(
    Column(name="age", kind="numeric", bounds=(0, 89), integer=True),
    Column(name="work_type", categories=("Private", "Govt_job")),
    Column(name="smoker", kind="boolean"),
    Column(name="sex", categories=("f", "m"), nullable=False)))


def _table() -> pd.DataFrame:
    return pd.DataFrame({
        "age": [50, "MRN-0042", 61, "Jane", 70, 40, float("inf"), 33],
        "work_type": ["Private", "Private", "Govt_job", "Private", "Unemployed", "Private",
                      "Govt_job", "Private"],
        "smoker": ["yes", "no", "no", "yes", "no", "perhaps", "no", "no"],
        "sex": ["f", "m", "f", None, "m", "f", "m", "f"]})


def test_every_column_problem_is_an_issue_with_its_count_and_first_rows():
    # trial 25: only "column 'age': 2 value(s) are not finite numbers", issues == (),
    # no row positions
    with pytest.raises(TableInputError) as err:
        encode(SPEC, _table())
    assert [str(i) for i in err.value.issues] == [
        "column 'age': 2 value(s) are not numbers (first rows: [1, 3])",
        "column 'age': 1 value(s) are not finite numbers (first rows: [6])",
        "column 'work_type': 1 value(s) are not in the declared category list (2 categories) "
        "and the column has no 'other: true' (first rows: [4])",
        "column 'smoker': 1 value(s) are not true/false/yes/no/1/0 (first rows: [5])",
        "column 'sex': 1 missing value(s), and the column is declared not nullable "
        "(first rows: [3])",
    ]
    msg = str(err.value)
    assert msg.startswith("the table does not fit its spec: 5 problem(s) in 4 column(s)")
    for value in ("MRN-0042", "Jane", "Unemployed", "perhaps"):
        assert value not in msg


def test_row_positions_count_every_row_not_only_the_present_ones():
    # a bad value after missing cells is found at its own position in the table
    col = Column(name="age", kind="numeric", bounds=(0, 100))
    with pytest.raises(TableInputError, match=r"1 value\(s\) are not numbers "
                                              r"\(first rows: \[3\]\)") as err:
        encode_column(col, pd.Series([None, None, 5, "x"]))
    assert len(err.value.issues) == 1


def test_synthesizer_fit_reports_every_problem_of_a_dataframe():
    with pytest.raises(TableInputError) as err:
        Synthesizer(SPEC, epsilon=1.0).fit(_table())
    assert {i.where for i in err.value.issues} == {"column 'age'", "column 'work_type'",
                                                   "column 'smoker'", "column 'sex'"}
