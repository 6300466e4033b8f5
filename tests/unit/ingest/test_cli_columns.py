import gzip
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.ingest.features import load_feature_spec


def test_columns_command_lists_classes(tmp_path):
    p = tmp_path / "p.csv"
    p.write_text("\ufeffId,SSN,ZIP,bmi\n1,999-00-0000,01028,22\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["columns", str(p)])
    assert result.exit_code == 0
    lines = [ln.split("\t")[:3] for ln in result.output.strip().splitlines()]
    assert lines == [["Id", "key", "regenerate"], ["SSN", "identifier", "omit"],
                     ["ZIP", "quasi_identifier", "zip3"], ["bmi", "feature", "model"]]
    assert "999-00-0000" not in result.output


def test_columns_command_missing_file(tmp_path):
    result = CliRunner().invoke(app, ["columns", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2


# ----------------------------------------------------------------------- FHIR input
ROOT = Path(__file__).resolve().parents[3]
BULK = ROOT / "fixtures" / "bulk"


def _fhir_input(kind: str, tmp_path: Path) -> Path:
    if kind == "folder":
        return BULK
    if kind == "ndjson":
        return BULK / "Patient.ndjson"
    if kind == "ndjson.gz":
        p = tmp_path / "Patient.ndjson.gz"
        p.write_bytes(gzip.compress((BULK / "Patient.ndjson").read_bytes()))
        return p
    bundle = ROOT / "fixtures" / "cohort" / "patient-000.json"
    if kind == "bundle":
        return bundle
    p = tmp_path / "export.txt"  # an unknown suffix: told apart by its first byte
    shutil.copy(bundle, p)
    return p


def _private_values(path: Path) -> set[str]:
    """Ids, birth dates and names of the input's patients (none may reach the output)."""
    files = sorted(path.glob("*.ndjson")) if path.is_dir() else [path]
    out: set[str] = set()
    for f in files:
        raw = f.read_bytes()
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()
        docs = ([json.loads(ln) for ln in text.splitlines() if ln.strip()]
                if "ndjson" in f.name else [json.loads(text)])
        for doc in docs:
            for res in ([e["resource"] for e in doc.get("entry", [])] or [doc]):
                if res.get("resourceType") == "Patient":
                    out.add(res["id"])
                    out.update(x for x in [res.get("birthDate")] if x)
                    out.update(n.get("family", "") for n in res.get("name", []))
    return {v for v in out if v}


@pytest.mark.parametrize("kind", ["folder", "ndjson", "ndjson.gz", "bundle", "bundle.txt"])
def test_columns_on_fhir_input_lists_what_the_feature_spec_extracts(tmp_path, kind):
    path = _fhir_input(kind, tmp_path)
    result = CliRunner().invoke(app, ["columns", str(path)])
    assert result.exit_code == 0, result.output
    spec = load_feature_spec()
    lines = [ln.split("\t") for ln in result.stdout.strip().splitlines()]
    assert [ln[0] for ln in lines] == [c.name for c in spec.columns]
    assert all(len(ln) == 4 for ln in lines)
    by_name = {ln[0]: ln for ln in lines}
    assert by_name["age"][1:3] == ["feature", "model"]
    assert by_name["birth_year"][2] == "derived after sampling"
    assert by_name["birth_date_precision"][2] == "omit"
    assert by_name["encounters_inpatient_10y"][3].startswith("integer 0 to 20; Encounter: ")
    assert "class ACUTE, IMP, NONAC" in by_name["encounters_inpatient_10y"][3]
    assert "FHIR input" in result.stderr and "fhir-default" in result.stderr
    private = _private_values(path)
    assert private and not any(v in result.output for v in private)


def test_columns_on_fhir_input_with_another_spec(tmp_path):
    spec = tmp_path / "mine.yaml"
    spec.write_text(json.dumps({"name": "mine", "reference_date": "2020-06-30", "columns": [
        {"name": "sex", "type": "categorical", "categories": ["female", "male"],
         "source": {"from": "patient", "field": "gender"}},
        {"name": "er_visits", "type": "numeric", "bounds": [0, 9], "integer": True,
         "source": {"from": "encounter", "class": ["EMER"], "years": 2}}]}))
    result = CliRunner().invoke(app, ["columns", str(BULK), "--spec", str(spec)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "sex\tfeature\tmodel\tcategorical: female, male; Patient.gender",
        "er_visits\tfeature\tmodel\tinteger 0 to 9; Encounter: how many of class EMER "
        "started in the 2 year(s) up to 2020-06-30"]


def test_columns_on_fhir_input_refuses_a_csv_schema_and_write_schema(tmp_path):
    schema = tmp_path / "t.schema.json"
    schema.write_text(json.dumps({"name": "t", "columns": {"a": {"domain": ["x"]}}}))
    r = CliRunner().invoke(app, ["columns", str(BULK), "--spec", str(schema)])
    assert r.exit_code == 2 and "not a FHIR feature spec" in " ".join(r.output.split())
    out = tmp_path / "s.schema.json"
    r = CliRunner().invoke(app, ["columns", str(BULK), "--write-schema", str(out)])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "is FHIR input" in text and "feature spec" in text
    assert not out.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    r = CliRunner().invoke(app, ["columns", str(empty)])
    assert r.exit_code == 2 and "no FHIR files" in r.output


def test_columns_command_on_csv_with_a_schema_shows_the_treatment(tmp_path):
    p = tmp_path / "p.csv"
    p.write_text("Id,SSN,ZIP,bmi,note\n1,999-00-0000,01028,22,x\n", encoding="utf-8")
    schema = tmp_path / "p.schema.json"
    schema.write_text(json.dumps({"name": "p", "columns": {
        "Id": {"role": "key"}, "bmi": {"type": "numeric", "bounds": [10, 80]},
        "zip3": {"domain": ["010"], "other": True,
                 "source": {"column": "ZIP", "transform": "zip3"}}}}))
    result = CliRunner().invoke(app, ["columns", str(p), "--schema", str(schema)])
    assert result.exit_code == 0, result.output
    rows = [ln.split("\t")[:3] for ln in result.stdout.strip().splitlines()]
    assert rows == [["Id", "key", "regenerated (fresh UUIDv4 per synthetic patient)"],
                    ["SSN", "identifier", "omitted (identifier)"],
                    ["ZIP", "quasi_identifier", "transformed (zip3) as zip3"],
                    ["bmi", "feature", "modelled"],
                    ["note", "identifier", "omitted (identifier)"]]


def test_fhir_columns_spell_out_the_ucum_year(root):
    # a trial read "integer 0 to 90 a" as a typo: "a" is UCUM's year (annum)
    result = CliRunner().invoke(app, ["columns", str(root / "fixtures" / "cohort")])
    assert result.exit_code == 0, result.output
    (age,) = [line for line in result.output.splitlines() if line.startswith("age\t")]
    assert "integer 0 to 90 years (UCUM a);" in age
