"""CSV columns the schema does not declare are left out, and the custodian is told so."""

from __future__ import annotations

import json

import numpy as np

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
    (warning,) = report["warnings"]
    assert "t.csv: 2 column(s) not in the schema" in warning
    assert "shift" in warning and "ward" in warning
    # the values never appear, only the header names
    assert json.dumps(report).count('"x"') == 0
