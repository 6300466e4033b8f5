"""Test helper: PatientRecords built from bundle JSON (stands in for the streaming reader)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fhirsynth.ingest.records import PatientRecord


def _keys(entry: dict[str, Any]) -> list[str]:
    r = entry["resource"]
    keys = [f"{r['resourceType']}/{r.get('id')}"]
    if entry.get("fullUrl"):
        keys.append(entry["fullUrl"])
    return keys


def records_from_bundle(bundle: dict[str, Any], source: str = "test") -> list[PatientRecord]:
    """Group a Bundle's entries by patient (subject/patient reference), like the reader."""
    entries = [e for e in bundle.get("entry", []) if "resource" in e]
    index: dict[str, dict[str, Any]] = {}
    for e in entries:
        for k in _keys(e):
            index[k] = e["resource"]
    patients: dict[int, PatientRecord] = {}
    for e in entries:
        r = e["resource"]
        if r["resourceType"] == "Patient":
            patients[id(r)] = PatientRecord(patient_id=r["id"], patient=r, source=source,
                                            index=index)
    for e in entries:
        r = e["resource"]
        ref = (r.get("subject") or r.get("patient") or {}).get("reference")
        if r["resourceType"] == "Patient" or not ref:
            continue
        target = index.get(ref)
        if target is None and "/Patient/" in ref:
            target = index.get("Patient/" + ref.rsplit("/", 1)[1])
        if target is not None and id(target) in patients:
            patients[id(target)].resources.setdefault(r["resourceType"], []).append(r)
    return list(patients.values())


def load_json(path: Path) -> Any:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture(scope="session")
def bundle_records() -> Callable[..., list[PatientRecord]]:
    return records_from_bundle


@pytest.fixture(scope="session")
def read_json() -> Callable[[Path], Any]:
    return load_json
