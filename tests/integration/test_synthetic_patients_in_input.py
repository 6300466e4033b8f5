"""Synthetic Patients carry the HL7 security label HTEST, and the reader leaves such Patients out
of its input (trial 13: a release's synthetic/fhir/*.ndjson copied into the input folder was
read as 159 more real patients)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.ingest import read_input
from fhirsynth.ingest.features import load_feature_spec
from fhirsynth.pipeline import RunConfig, run_release

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "cohort"


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("rel")
    return run_release(RunConfig(inputs=[FIXTURES], out=tmp / "o", epsilon=1.0,
                                 ledger=tmp / "l.sqlite", rows=150)).out


def test_every_synthetic_patient_is_labelled_test_data(release: Path) -> None:
    from fhir.resources.R4B.patient import Patient

    lines = (release / "synthetic" / "fhir" / "Patient.ndjson").read_text().splitlines()
    assert len(lines) == 150
    for line in lines:
        p = json.loads(line)
        assert p["meta"]["security"] == [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HTEST",
            "display": "test health data"}]
        Patient.model_validate(p)


def test_synthetic_patients_mixed_into_an_input_are_left_out(release: Path, tmp_path) -> None:
    spec = load_feature_spec()
    real, _ = read_input([FIXTURES], spec)
    mixed = tmp_path / "mixed"
    shutil.copytree(FIXTURES, mixed)
    for f in (release / "synthetic" / "fhir").iterdir():
        shutil.copy(f, mixed / f"synthetic-{f.name}")
    table, report = read_input([mixed], spec)
    assert len(table) == len(real) and report["test_patients_left_out"] == 150
    assert any("150 Patient(s) labelled as test data" in w for w in report["warnings"])
    # reading a synthetic export back on purpose
    back, report = read_input([release / "synthetic" / "fhir"], spec, keep_test_patients=True)
    assert len(back) == 150 and report["test_patients_left_out"] == 0
    r = CliRunner().invoke(app, ["ingest", str(release / "synthetic" / "fhir"), "--out",
                                 str(tmp_path / "t.csv"), "--keep-test-patients", "--ledger",
                                 str(tmp_path / "l.sqlite")])
    assert r.exit_code == 0, r.output
    assert len((tmp_path / "t.csv").read_text(encoding="utf-8").splitlines()) == 151
