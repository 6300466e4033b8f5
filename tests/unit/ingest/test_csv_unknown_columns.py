"""CSV columns the schema does not declare are left out, and the custodian is told so."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from fhirsynth.ingest import read_input
from fhirsynth.sample import sample_model
from learn_nets import SPEC, known_model


def test_columns_not_in_the_schema_are_named_in_a_warning(tmp_path) -> None:
    df, _ = sample_model(known_model(), 60, rng=np.random.default_rng(0))
    df["shift"] = "x"
    df["ward"] = "w1"
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    table, report = read_input([path], SPEC)
    assert "shift" not in table.columns and "ward" not in table.columns
    # (the other warning says that without a key column every row is one patient)
    (warning,) = [w for w in report["warnings"] if "not in the schema" in w]
    assert "t.csv: 2 column(s) not in the schema" in warning
    assert "shift" in warning and "ward" in warning
    # the values never appear, only the header names
    assert json.dumps(report).count('"x"') == 0


def test_repeated_rows_count_only_with_an_identifying_field_the_model_does_not_read() -> None:
    # a patient written twice repeats its id too; few coarse columns repeat by nature
    from fhirsynth.ingest.csv import rows_repeated

    rows = pd.DataFrame([["f", "1"], ["m", "2"], ["f", "3"], ["f", "1"]], columns=["sex", "id"])
    assert rows_repeated(rows, {"sex"}) == 1          # the id repeats
    assert rows_repeated(rows, {"sex", "id"}) == 0    # all columns modelled
    const = pd.DataFrame([["f", "x"], ["f", "x"], ["m", "x"]], columns=["sex", "ward"])
    assert rows_repeated(const, {"sex"}) == 0         # a constant extra field
