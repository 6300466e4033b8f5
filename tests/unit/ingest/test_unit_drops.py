"""Observation values dropped for their unit are never silent (QA trial 24).

A value in a unit its column does not convert (creatinine in mmol/L for a mg/dL column, a
BMI in ``[fur_us]``) or without a unit is dropped: ``run`` and ``ingest`` print one warning
line per column with the count, the reason, the first place and the units the column
converts; ``--strict`` refuses naming file, line or entry, and the element.  A rule can
declare a conversion of its own (``factors:``).  The unit found is never quoted.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from cohort_copy import edited_cohort, resources
from fhirsynth.cli import app
from fhirsynth.errors import FHIRValidationError, SpecError
from fhirsynth.ingest import read_input
from fhirsynth.ingest.features import load_feature_spec

CREATININE, BMI = "2160-0", "39156-5"
ODD_UNIT = "[fur_us]"  # input text: never quoted


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _spec(tmp_path: Path, factors: str = "") -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(f"""
name: units
reference_date: "2025-01-01"
columns:
  - {{name: gender, type: categorical, categories: [female, male, other, unknown],
     source: {{from: patient, field: gender}}}}
  - {{name: bmi, type: numeric, bounds: [10, 80], unit: kg/m2, nullable: true,
     source: {{from: observation, loinc: [{BMI}], unit: kg/m2}}}}
  - {{name: creatinine, type: numeric, bounds: [0, 20], unit: mg/dL, nullable: true,
     source: {{from: observation, loinc: [{CREATININE}], unit: mg/dL{factors}}}}}
""", "utf-8")
    return path


def _obs(oid: str, pid: str, loinc: str, value: float, unit: str | None) -> dict:
    quantity: dict = {"value": value}
    if unit is not None:
        quantity |= {"unit": unit, "code": unit, "system": "http://unitsofmeasure.org"}
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2020-01-01",
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
            "valueQuantity": quantity}


def _input(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    patients = [{"resourceType": "Patient", "id": f"p{i}", "gender": "female",
                 "birthDate": "1970"} for i in range(4)]
    obs = [_obs("o1", "p0", CREATININE, 1.1, "mg/dL"),
           _obs("o2", "p1", CREATININE, 0.09, "mmol/L"),
           _obs("o3", "p2", CREATININE, 0.08, "mmol/L"),
           _obs("o4", "p3", BMI, 24.5, ODD_UNIT),
           _obs("o5", "p0", BMI, 22.0, None)]
    for name, docs in (("Patient.ndjson", patients), ("Observation.ndjson", obs)):
        (folder / name).write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    return folder


def test_values_dropped_for_their_unit_are_one_warning_per_column(tmp_path):
    table, rep = read_input([_input(tmp_path)], load_feature_spec(_spec(tmp_path)))
    assert table["creatinine"].notna().sum() == 1 and table["bmi"].notna().sum() == 0
    lines = [w for w in rep["warnings"] if "dropped for their unit" in w]
    assert lines == [
        "column bmi: 2 Observation value(s) dropped for their unit (1 in a unit it does not "
        "convert to kg/m2, 1 without a unit); one of them at Observation.ndjson line 4 "
        "(valueQuantity.code); it converts kg/m2 only: convert the values in the export, or "
        "declare the conversion in the column's rule (`factors: {UNIT: multiplier}`, "
        "docs/feature-spec.md); every valueQuantity needs a UCUM code or unit; --strict fails "
        "on them instead",
        "column creatinine: 2 Observation value(s) dropped for their unit (2 in a unit it "
        "does not convert to mg/dL); one of them at Observation.ndjson line 3 "
        "(valueQuantity.code); it converts mg/dL only: convert the values in the export, or "
        "declare the conversion in the column's rule (`factors: {UNIT: multiplier}`, "
        "docs/feature-spec.md); --strict fails on them instead"]
    assert not any(ODD_UNIT in w or "mmol" in w for w in rep["warnings"])


def test_a_value_dropped_for_its_unit_fails_strict_naming_file_line_and_element(tmp_path):
    with pytest.raises(FHIRValidationError) as info:
        read_input([_input(tmp_path)], load_feature_spec(_spec(tmp_path)), strict=True)
    msg = str(info.value)
    # the first column of the spec with such values, and its first value
    assert msg.startswith("Observation.ndjson line 4: Observation: valueQuantity.code: column "
                          "bmi: unit not convertible to kg/m2 (converted: kg/m2) (strict "
                          "mode); 4 Observation value(s) dropped for their unit in all"), msg
    assert ODD_UNIT not in msg


def test_a_unit_given_only_as_text_is_named_as_valuequantity_unit(tmp_path):
    folder = _input(tmp_path)
    lines = (folder / "Observation.ndjson").read_bytes().splitlines()
    first = orjson.loads(lines[1])
    del first["valueQuantity"]["code"]
    (folder / "Observation.ndjson").write_bytes(orjson.dumps(first) + b"\n")
    _, rep = read_input([folder], load_feature_spec(_spec(tmp_path)))
    (line,) = [w for w in rep["warnings"] if "dropped for their unit" in w]
    assert "one of them at Observation.ndjson line 1 (valueQuantity.unit)" in line


def test_a_rule_can_declare_a_conversion_factor(tmp_path):
    spec = load_feature_spec(_spec(tmp_path, ", factors: {mmol/L: 11.31}"))
    table, rep = read_input([_input(tmp_path)], spec)
    assert sorted(table["creatinine"].dropna().round(3)) == [0.905, 1.018, 1.1]
    assert not [w for w in rep["warnings"] if w.startswith("column creatinine: ")]
    (bmi,) = [w for w in rep["warnings"] if w.startswith("column bmi: ")]
    assert "it converts kg/m2 only" in bmi
    # the units a column converts are listed, its declared ones too
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "Patient.ndjson").write_bytes(orjson.dumps(
        {"resourceType": "Patient", "id": "q", "gender": "male"}) + b"\n")
    (folder / "Observation.ndjson").write_bytes(orjson.dumps(
        _obs("x", "q", CREATININE, 3, "g/L")) + b"\n")
    _, rep = read_input([folder], spec)
    (line,) = [w for w in rep["warnings"] if w.startswith("column creatinine: ")]
    assert "it converts mg/dL, mmol/L: convert" in line


@pytest.mark.parametrize(("factors", "said"), [
    (", factors: {mmol/L: 0}", "the factor of 'mmol/L' must be a number > 0"),
    (", factors: {mmol/L: x}", "the factor of 'mmol/L' must be a number > 0"),
    (", factors: 11.31", "'factors' must map units to numbers"),
])
def test_a_bad_factor_is_a_spec_error_naming_file_column_and_key(tmp_path, factors, said):
    with pytest.raises(SpecError) as info:
        load_feature_spec(_spec(tmp_path, factors))
    msg = str(info.value)
    assert msg.startswith(str(tmp_path / "spec.yaml")) and "column 'creatinine'" in msg
    assert said in msg


def test_cli_ingest_prints_the_unit_lines_and_strict_refuses_without_output(tmp_path):
    args = ["ingest", str(_input(tmp_path)), "--spec", str(_spec(tmp_path)), "--out",
            str(tmp_path / "t.csv"), "--ledger", str(tmp_path / "l.sqlite")]
    res = CliRunner().invoke(app, args)
    out = _flat(res.output)
    assert res.exit_code == 0, out
    assert "warning: column bmi: 2 Observation value(s) dropped for their unit" in out
    assert "warning: column creatinine: 2 Observation value(s) dropped for their unit" in out
    (tmp_path / "t.csv").unlink()
    res = CliRunner().invoke(app, [*args, "--strict"])
    out = _flat(res.output)
    assert res.exit_code == 2, out
    assert "Observation.ndjson line 4: Observation: valueQuantity.code: column bmi" in out
    assert "Traceback" not in out and not (tmp_path / "t.csv").exists()


def test_cli_run_warns_of_and_strict_refuses_values_dropped_for_their_unit(tmp_path):
    def edit(i: int, bundle: dict) -> None:
        for res in resources(bundle, "Observation"):
            if i < 3 and any(c.get("code") == BMI for c in res["code"]["coding"]):
                res["valueQuantity"]["code"] = res["valueQuantity"]["unit"] = ODD_UNIT

    src = edited_cohort(tmp_path / "in", 60, edit)
    base = ["run", str(src), "--epsilon", "1", "--ledger", str(tmp_path / "l.sqlite"),
            "--seed", "3", "--holdout", "0"]
    res = CliRunner().invoke(app, [*base, "--strict", "--out", str(tmp_path / "strict")])
    out = _flat(res.output)
    assert res.exit_code == 2, out
    assert re.search(r"entry\[\d+\]: Observation: valueQuantity\.code: column bmi: unit not "
                     r"convertible to kg/m2", out), out
    assert not (tmp_path / "strict").exists()
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "rel")])
    out = _flat(res.output)
    assert res.exit_code == 0, out
    assert re.search(r"warning: column bmi: \d+ Observation value\(s\) dropped for their unit "
                     r"\(\d+ in a unit it does not convert to kg/m2\)", out), out
    assert ODD_UNIT not in out
