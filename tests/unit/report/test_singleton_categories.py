"""The internal report's singleton categories show public labels only, never a raw cell."""

from __future__ import annotations

import json

import pandas as pd

from fhirsynth.domain import OTHER, Column, TableSpec
from fhirsynth.report.release import singleton_categories

CANARY = "CANARY-WORKTYPE"
SPEC = TableSpec(name="t", columns=[
    Column(name="work_type", categories=("Private", "Self-employed", "Govt_job"), other=True),
    Column(name="sex", categories=("f", "m")),
])


def test_an_out_of_domain_singleton_is_shown_as_other():
    real = pd.DataFrame({
        "work_type": pd.Series(["Private"] * 5 + ["Self-employed"] + [CANARY], dtype="string"),
        "sex": pd.Series(["f", "m"] * 3 + ["f"], dtype="string")})
    found = singleton_categories(SPEC, real)
    assert found == [{"column": "work_type", "category": OTHER},
                     {"column": "work_type", "category": "Self-employed"}]
    assert CANARY not in json.dumps(found)


def test_several_out_of_domain_values_count_together_as_other():
    real = pd.DataFrame({
        "work_type": pd.Series(["Private", "Private", f"{CANARY}-1", f"{CANARY}-2", None],
                               dtype="string"),
        "sex": pd.Series(["f", "m", "f", "m", "f"], dtype="string")})
    found = singleton_categories(SPEC, real)
    assert found == []  # "<other>" occurs twice: not a singleton, and no raw value is listed
