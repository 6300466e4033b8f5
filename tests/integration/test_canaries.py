"""Planted identifiers never reach any byte of any output, log or error message.

Each fixture patient gets unique canary strings in every identifying element (name, MRN,
SSN, phone, e-mail, street address, city, postal code, exact birth date, narrative and
free-text notes).  After a whole release run with full debug logging, no canary may appear
in any file of the release (CSV, Parquet, FHIR NDJSON, model, audit record, evaluation JSON,
both PDFs as bytes and as extracted text) or in anything the run printed.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "cohort"


def _load(path: Path) -> dict:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return json.loads(raw)


def _plant(bundle: dict, i: int) -> list[str]:
    tag = f"{i:04d}"
    canaries = {
        "family": f"Qzcanaryfamily{tag}", "given": f"Qzcanarygiven{tag}",
        "mrn": f"MRN-QZCANARY-{tag}", "ssn": f"999-77-{tag}",
        "phone": f"+1-555-013-{tag}", "email": f"qz.canary.{tag}@example.org",
        "line": f"{tag} Qzcanary Street", "city": f"Qzcanaryville{tag}",
        "postal": f"0{tag}", "note": f"Qzcanary free text {tag} about the patient",
        "birth": f"19{40 + i % 50:02d}-0{1 + i % 9}-{11 + i % 17:02d}",
    }
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res["resourceType"] == "Patient":
            res["name"] = [{"use": "official", "family": canaries["family"],
                            "given": [canaries["given"]]}]
            res["identifier"] = [{"system": "http://hospital.example.org",
                                  "value": canaries["mrn"]},
                                 {"system": "http://hl7.org/fhir/sid/us-ssn",
                                  "value": canaries["ssn"]}]
            res["telecom"] = [{"system": "phone", "value": canaries["phone"]},
                              {"system": "email", "value": canaries["email"]}]
            res["address"] = [{"line": [canaries["line"]], "city": canaries["city"],
                               "state": "MA", "postalCode": canaries["postal"]}]
            res["birthDate"] = canaries["birth"]
            res["text"] = {"status": "generated",
                           "div": f"<div xmlns=\"http://www.w3.org/1999/xhtml\">"
                                  f"{canaries['note']}</div>"}
        elif res["resourceType"] == "Condition":
            res["note"] = [{"text": canaries["note"]}]
    # the postal code is too short to be distinctive on its own: it is planted, not checked
    return [v for k, v in canaries.items() if k != "postal"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    src = tmp_path_factory.mktemp("planted")
    canaries: list[str] = []
    for i, path in enumerate(sorted(FIXTURES.iterdir())):
        bundle = _load(path)
        canaries += _plant(bundle, i)
        (src / f"patient-{i:03d}.json").write_text(json.dumps(bundle))
    return src, canaries


def test_no_canary_in_any_output_or_log(planted, tmp_path):
    src, canaries = planted
    out = tmp_path / "release"
    proc = subprocess.run(
        [sys.executable, "-m", "fhirsynth", "-vv", "run", str(src), "--epsilon", "2",
         "--out", str(out), "--ledger", str(tmp_path / "ledger.sqlite"), "--seed", "5"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = proc.stdout + proc.stderr
    blobs: dict[str, str] = {"console output": printed}
    for f in sorted(p for p in out.rglob("*") if p.is_file()):
        blobs[str(f.relative_to(out))] = f.read_bytes().decode("latin-1")
        if f.suffix == ".pdf":
            from pypdf import PdfReader

            text = "\n".join(page.extract_text() or "" for page in PdfReader(f).pages)
            blobs[f"{f.relative_to(out)} (text)"] = text
    assert len(blobs) >= 10
    leaks = [(name, c) for name, blob in blobs.items() for c in canaries if c in blob]
    assert not leaks, leaks[:10]
    # the run really read the planted patients
    assert "120" in printed


def test_no_canary_in_the_error_of_a_broken_input(planted, tmp_path):
    src, canaries = planted
    bad = tmp_path / "bad"
    bad.mkdir()
    text = (src / "patient-000.json").read_text()
    (bad / "broken.json").write_text(text[: len(text) // 2])
    proc = subprocess.run(
        [sys.executable, "-m", "fhirsynth", "-vv", "run", str(bad), "--epsilon", "1",
         "--out", str(tmp_path / "o"), "--ledger", str(tmp_path / "l.sqlite")],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "broken.json" in proc.stderr and "Traceback" not in proc.stderr
    assert not [c for c in canaries if c in proc.stderr + proc.stdout]
    assert not (tmp_path / "o").exists()


def test_input_file_names_and_per_file_hashes_never_reach_shareable_outputs(planted, tmp_path):
    # Synthea names each bundle after its patient; passed as files, the names, one hash per
    # file (a membership test for anyone holding one record) and their count must stay out
    import hashlib

    src, _ = planted
    named = tmp_path / "named"
    named.mkdir()
    files = []
    for i, p in enumerate(sorted(src.iterdir())[:70]):
        q = named / f"Zorblat{i:03d}_Quenty_{i:03d}.json"
        q.write_bytes(p.read_bytes())
        files.append(q)
    out = tmp_path / "release"
    proc = subprocess.run(
        [sys.executable, "-m", "fhirsynth", "run", *map(str, files), "--epsilon", "2",
         "--out", str(out), "--ledger", str(tmp_path / "l.sqlite"), "--seed", "5",
         "--holdout", "0"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from pypdf import PdfReader

    shareable = {"audit.json": (out / "audit.json").read_text(encoding="utf-8"),
                 "report.pdf": "\n".join(pg.extract_text() or ""
                                         for pg in PdfReader(out / "report.pdf").pages),
                 "console": proc.stdout + proc.stderr}
    digests = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    for name, text in shareable.items():
        assert "Zorblat" not in text and "Quenty" not in text, name
        assert not any(d in text for d in digests), name
    audit = json.loads(shareable["audit.json"])
    assert len(audit["inputs"]) == 1 and audit["inputs"][0]["hmac_sha256"] == \
        audit["source_commitment"]
    from fhirsynth.privacy.ledger import source_fingerprint

    plain = source_fingerprint(files)  # an exact function of the private input (trial 11)
    assert not any(plain in text.replace("\n", "") for text in shareable.values())
