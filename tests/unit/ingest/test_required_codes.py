"""A code outside its required value set is invalid FHIR (Patient.gender here).

The FHIR models check a code's form only.  Lenient: the Patient is dropped as invalid, like
one with an invalid birthDate, and counted; ``--strict``: the read fails naming the file, the
resource and the field.  The value itself (input text) is never quoted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cohort_copy import edited_cohort, resources
from fhirsynth.errors import FHIRValidationError, InputError
from fhirsynth.ingest import read_input
from fhirsynth.ingest.features import load_feature_spec

CANARY = "ZZQUOKKA"


@pytest.fixture()
def cohort(tmp_path: Path) -> Path:
    def edit(i: int, bundle: dict) -> None:
        if i == 1:
            for r in resources(bundle, "Patient"):
                r["gender"] = CANARY

    return edited_cohort(tmp_path / "in", 4, edit)


def test_lenient_drops_the_patient_and_counts_it(cohort):
    table, rep = read_input([cohort], load_feature_spec(None))
    assert len(table) == 3
    assert sum(v for k, v in rep["dropped"].items() if k.startswith("Patient")) == 1
    text = json.dumps(rep)
    assert "required value set administrative-gender" in text
    assert CANARY not in text


def test_strict_fails_naming_file_resource_and_field(cohort):
    with pytest.raises((FHIRValidationError, InputError)) as info:
        read_input([cohort], load_feature_spec(None), strict=True)
    msg = str(info.value)
    assert "patient-001.json" in msg and "gender" in msg and "Patient" in msg
    assert "administrative-gender" in msg
    assert CANARY not in msg


def test_an_observation_status_outside_its_value_set_is_invalid(tmp_path):
    # it was kept and its value read as a measurement
    def edit(i: int, bundle: dict) -> None:
        if i == 2:
            for r in resources(bundle, "Observation"):
                r["status"] = CANARY

    folder = edited_cohort(tmp_path / "in", 3, edit)
    spec = load_feature_spec(None)
    table, rep = read_input([folder], spec)
    dropped = sum(v for k, v in rep["dropped"].items() if k.startswith("Observation"))
    assert dropped > 0 and len(table) == 3
    assert {i["field"] for i in rep["issues"] if i["resource"] == "Observation"} == {"status"}
    assert "required value set observation-status" in json.dumps(rep)
    assert CANARY not in json.dumps(rep)
    with pytest.raises((FHIRValidationError, InputError)) as info:
        read_input([folder], spec, strict=True)
    msg = str(info.value)
    assert "Observation: status" in msg and "observation-status" in msg and CANARY not in msg
