"""Values extracted from FHIR outside their column's bounds are counted and said, not silent.

Encoding clips them to the bounds before any DP step (as for CSV); the import report counts
them per column (below / above) and one warning line names the column, the counts and the
public bounds, never a value.  The CLI's ``ingest`` prints that line at default verbosity.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from cohort_copy import edited_cohort, resources
from fhirsynth.cli import app
from fhirsynth.ingest import read_input
from fhirsynth.ingest.coverage import out_of_bounds
from fhirsynth.ingest.features import load_feature_spec

BMI = "39156-5"


def _cohort_with_bmi(tmp_path: Path, values: dict[int, float]) -> Path:
    """The first bundles of the fixture cohort, every BMI of bundle i set to values[i]."""
    def edit(i: int, bundle: dict) -> None:
        for res in resources(bundle, "Observation"):
            if i in values and any(c.get("code") == BMI for c in res["code"]["coding"]):
                res["valueQuantity"]["value"] = values[i]

    return edited_cohort(tmp_path / "in", 6, edit)


def test_fhir_values_outside_bounds_are_counted_and_warned(tmp_path):
    src = _cohort_with_bmi(tmp_path, {0: 95.25, 1: 4.75, 2: 80.0})
    table, rep = read_input([src], load_feature_spec(None))
    assert (table["bmi"] == 95.25).sum() == 1  # kept here; encoding clips it
    assert rep["out_of_bounds"] == {
        "bmi": {"bounds": [10, 80], "below": 1, "above": 1, "top_coded": 0, "bottom_coded": 0}}
    lines = [w for w in rep["warnings"] if "outside" in w]
    assert len(lines) == 1
    assert "bmi 1 below and 1 above [10, 80]" in lines[0]
    assert "95.25" not in lines[0] and "4.75" not in lines[0]


def test_in_bounds_fhir_input_reports_nothing(tmp_path):
    src = _cohort_with_bmi(tmp_path, {0: 80.0, 1: 10.0})
    _, rep = read_input([src], load_feature_spec(None))
    assert rep["out_of_bounds"] == {}
    assert not [w for w in rep["warnings"] if "outside" in w]


def test_top_coded_column_counts_top_coded_not_above():
    spec = load_feature_spec(None)
    table = pd.DataFrame({"age": [30, 95, None], "bmi": [25.0, None, 81.0]})
    found = out_of_bounds(table, spec)
    assert found["age"] == {"bounds": [0, 90], "below": 0, "above": 0, "top_coded": 1,
                            "bottom_coded": 0}
    assert found["bmi"]["above"] == 1


def test_ingest_prints_the_clipping_line(tmp_path):
    src = _cohort_with_bmi(tmp_path, {3: 123.5})
    res = CliRunner().invoke(app, ["ingest", str(src), "--out", str(tmp_path / "t.csv")])
    assert res.exit_code == 0, res.output
    assert "bmi 1 above [10, 80]" in " ".join(res.output.split())
    assert "123.5" not in res.output
