"""Input faults from QA trial 16: NDJSON read as NDJSON whatever its first line, encodings
named, over-long lines refused, and no input string echoed in a message."""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import orjson
import pytest

from fhirsynth.errors import FHIRValidationError, InputError
from fhirsynth.ingest import sources
from fhirsynth.ingest.fhir import ImportReport, iter_patients


def patient(pid: str) -> dict:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1970-05"}


def ndjson(path: Path, *docs: object) -> Path:
    data = b"".join(orjson.dumps(d) + b"\n" for d in docs)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


# -- item 1: an NDJSON file is NDJSON whatever its first line --------------------------------

@pytest.mark.parametrize("first", [{"id": "x"}, {"resourceType": 42}])
@pytest.mark.parametrize("name", ["Patient.ndjson", "Patient.jsonl.gz"])
def test_a_bad_first_ndjson_line_skips_that_line_only(tmp_path, first, name):
    folder = tmp_path / "in"
    folder.mkdir()
    ndjson(folder / name, first, patient("p1"), patient("p2"))
    # a file without a single resource (a Bulk export's log) is still skipped as not FHIR
    ndjson(folder / "log.ndjson", {"eventId": "kickoff"}, {"eventId": "done"})
    report = ImportReport()
    records = list(iter_patients(folder, report=report))
    assert sorted(r.patient_id for r in records) == ["p1", "p2"]
    assert report.files_skipped == {"not FHIR (no resourceType)": 1}
    assert report.skipped == {"NDJSON line without resourceType": 1}
    assert [(i.where, i.field) for i in report.issues] == [(f"{name} line 1", "resourceType")]
    assert any(w.startswith(f"{name}: 1 line(s) skipped") for w in report.warnings)


def test_a_bad_first_ndjson_line_fails_strict_naming_file_line_and_field(tmp_path):
    f = ndjson(tmp_path / "Patient.ndjson", {"resourceType": 42}, patient("p1"))
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(f, strict=True))
    assert "Patient.ndjson line 1: resourceType: line is not a FHIR resource" in str(info.value)


# -- item 7: encodings named -----------------------------------------------------------------

def test_a_non_utf8_byte_in_an_ndjson_line_is_named_as_such(tmp_path):
    f = tmp_path / "Patient.ndjson"
    f.write_bytes(orjson.dumps(patient("p1")) + b"\n"
                  + b'{"resourceType": "Patient", "id": "\xe9"}\n')
    with pytest.raises(InputError, match=r"^Patient\.ndjson: line 2: not UTF-8 at byte 36"):
        list(iter_patients(f))


@pytest.mark.parametrize("name", ["Patient.ndjson", "bundle.json"])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_utf16_input_says_utf16_is_not_supported(tmp_path, name, encoding):
    f = tmp_path / name
    f.write_bytes(orjson.dumps(patient("p1")).decode().encode(encoding) + "\n".encode(encoding))
    with pytest.raises(InputError) as info:
        list(iter_patients(f))
    assert "UTF-16" in str(info.value) and "malformed JSON" not in str(info.value)
    assert str(info.value).startswith(name)


# -- item 6: over-long lines and documents ---------------------------------------------------

def test_an_ndjson_line_over_the_cap_is_refused_naming_file_and_line(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_LINE_BYTES", 1000)
    f = tmp_path / "Patient.ndjson.gz"
    f.write_bytes(gzip.compress(orjson.dumps(patient("p1")) + b"\n" + b" " * 5000 + b"\n"))
    with pytest.raises(InputError, match=r"^Patient\.ndjson\.gz: line 2: longer than"):
        list(iter_patients(f))


def test_a_json_document_over_the_cap_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_JSON_BYTES", 1000)
    f = tmp_path / "b.json.gz"
    f.write_bytes(gzip.compress(b" " * 5000 + orjson.dumps(patient("p1"))))
    with pytest.raises(InputError, match=r"^b\.json\.gz: larger than"):
        list(iter_patients(f))


# -- item 2: no string of the input in a message ---------------------------------------------

CANARY_TYPE = "ZqxcanaryWobblefoot"
CANARY_KEY = "MRN-CANARY-771"


def _bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]}


def test_an_unknown_resource_type_is_counted_never_named(tmp_path):
    from fhirsynth.ingest.report import drop_warning

    f = tmp_path / "b.json"
    f.write_bytes(orjson.dumps(_bundle(patient("p1"), {"resourceType": CANARY_TYPE,
                                                       "id": "w"})))
    report = ImportReport()
    assert len(list(iter_patients(f, report=report))) == 1
    shown = str(report.to_dict()) + str(drop_warning(report.to_dict()))
    assert CANARY_TYPE not in shown
    assert "1 resource dropped as invalid (1 of an unknown resource type)" in str(
        drop_warning(report.to_dict()))
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(f, strict=True))
    assert CANARY_TYPE not in str(info.value) and "unknown resource type" in str(info.value)


def test_an_unknown_element_key_is_counted_never_named(tmp_path):
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "subject": {"reference": "urn:uuid:p1"},
           "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2",
                                CANARY_KEY: 1}]}}
    f = tmp_path / "b.json"
    f.write_bytes(orjson.dumps(_bundle(dict(patient("p1"), **{CANARY_KEY: "x"}), obs)))
    report = ImportReport()
    assert len(list(iter_patients(f, report=report))) == 1
    assert CANARY_KEY not in str(report.to_dict())
    assert report.unknown_elements["Patient"] == {"(unknown element)": 1}
    assert report.unknown_elements["Observation"] == {"code.coding.(unknown element)": 1}
    with pytest.raises(FHIRValidationError) as info:
        list(iter_patients(f, strict=True))
    assert CANARY_KEY not in str(info.value)
    assert "b.json entry[0]: Patient: unknown element\n" in str(info.value)  # strict: no "dropped"


# -- item 3: file names that may hold an identifier are withheld -----------------------------

SYNTHEA = "Adolfo_Marquardt_50635536-8051-4085-bfd4-511a05062ac2.json"


@pytest.mark.parametrize("name", [
    SYNTHEA, "Alda_Carter_ee1034c9-cb75-413c-8f36-da7e4268d2b5.json.gz",
    "patient-0a1b2c3d4e5f60718293a4b5c6d7e8f9.json", "mrn-1234567.ndjson",
    "export-1931-04-02.json", "jane.roe@example.org.json", "call-555-123-4567.json",
    "Jane_Roe_export.json", "Patient.1931-04-02.ndjson", "Patient.19310402.ndjson",
    "Patient_John_12345.ndjson"])
def test_a_name_that_may_hold_an_identifier_is_withheld(name):
    from fhirsynth.ingest.sources import display_name

    shown = display_name(f"sub/{name}", 3, 12)
    assert shown == ("sub/file 3 of 12 (name withheld: it may hold an identifier; "
                     "`fhirsynth ingest INPUT... --which 3` prints its path)")


@pytest.mark.parametrize("name", [
    # trial 18: Bulk part numbers and Synthea's bookkeeping files were withheld
    "Patient.000001.ndjson", "Patient_part00012.ndjson", "MedicationRequest.000123.ndjson.gz",
    "hospitalInformation1700000000.json", "practitionerInformation1700000000.json",
    "Patient.000.ndjson", "1.Patient.ndjson",
])
def test_export_part_numbers_and_type_names_are_shown(name):
    from fhirsynth.ingest.sources import display_name

    assert display_name(f"sub/{name}", 3, 12) == f"sub/{name}"


def test_control_characters_in_a_name_cannot_forge_a_line(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    name = "x\x1b[2K\rerror: forged\n.json"
    (folder / name).write_text('{"resourceType": "Patient",', "utf-8")
    with pytest.raises(InputError) as info:
        list(iter_patients(folder))
    msg = str(info.value)
    assert "\x1b" not in msg and "\r" not in msg and "\n" not in msg
    assert msg.startswith("x\\x1b[2K\\x0derror: forged\\x0a.json: malformed JSON")


def test_errors_warnings_and_the_report_withhold_a_synthea_file_name(tmp_path):
    from fhirsynth.ingest import read_input
    from fhirsynth.ingest.features import load_feature_spec

    folder = tmp_path / "in"
    (folder / "bulk").mkdir(parents=True)
    (folder / "a.json").write_bytes(orjson.dumps(_bundle(patient("p1"))))
    (folder / SYNTHEA).write_text('{"comment": "not FHIR"}', "utf-8")
    # plain names stay as they are
    ndjson(folder / "bulk" / "Patient.000.ndjson", {"id": "x"}, patient("p2"))
    _, rep = read_input([folder], load_feature_spec(None))
    withheld = ("in/file 1 of 3 (name withheld: it may hold an identifier; "  # (A < a < b)
                "`fhirsynth ingest INPUT... --which 1` prints its path)")
    assert any(w.startswith(f"skipping {withheld}: not a FHIR resource or Bundle")
               for w in rep["warnings"]), rep["warnings"]
    assert any(w.startswith("bulk/Patient.000.ndjson: 1 line(s) skipped")
               for w in rep["warnings"]), rep["warnings"]
    assert "Marquardt" not in str(rep) and "50635536" not in str(rep)
    (folder / SYNTHEA).write_text('{"resourceType": "Bundle",', "utf-8")
    with pytest.raises(InputError, match=r"^in/file 1 of 3 \(name withheld"):
        read_input([folder], load_feature_spec(None))


def test_cli_ingest_which_prints_the_path_of_file_n(tmp_path):
    from typer.testing import CliRunner

    from fhirsynth.cli import app

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.json").write_bytes(orjson.dumps(_bundle(patient("p1"))))
    (folder / SYNTHEA).write_bytes(orjson.dumps(_bundle(patient("p2"))))
    result = CliRunner().invoke(app, ["ingest", str(folder), "--which", "1"])  # (A < a)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(folder / SYNTHEA)
    result = CliRunner().invoke(app, ["ingest", str(folder), "--which", "3"])
    assert result.exit_code == 2 and "give N from 1 to 2" in result.output


# -- item 6: inputs passed over in silence, or that hang ------------------------------------

@pytest.fixture
def no_hang():
    """Fail (not hang) when a read blocks: opening a FIFO waits for a writer."""
    import signal

    def stop(*_):
        raise TimeoutError("blocked")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _folder_with_one_patient(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.json").write_bytes(orjson.dumps(_bundle(patient("p1"))))
    return folder


def test_other_compressions_in_a_folder_are_counted_and_warned_once(tmp_path):
    import bz2
    import lzma
    import zipfile

    folder = _folder_with_one_patient(tmp_path)
    data = orjson.dumps(patient("p2"))
    (folder / "Patient.000.ndjson.bz2").write_bytes(bz2.compress(data))
    (folder / "Patient.001.ndjson.bz2").write_bytes(bz2.compress(data))
    (folder / f"{SYNTHEA}.xz").write_bytes(lzma.compress(data))
    with zipfile.ZipFile(folder / "export.zip", "w") as z:
        z.writestr("Patient.ndjson", data)
    report = ImportReport()
    assert len(list(iter_patients(folder, report=report))) == 1
    assert report.files_skipped == {"bzip2-compressed": 2, "xz-compressed": 1,
                                    "zip-compressed": 1}
    notes = [w for w in report.warnings if "compressed file(s)" in w]
    assert len(notes) == 3 and "Marquardt" not in str(report.warnings)
    assert any(w.startswith("skipped 2 bzip2-compressed file(s) in the input folder: only "
                            "gzip (.gz) is read") for w in notes)
    with pytest.raises(InputError, match=r"^export\.zip: zip-compressed: only gzip"):
        list(iter_patients(folder / "export.zip"))


def test_a_zip_file_with_an_ndjson_name_is_named_as_an_archive(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "Patient.ndjson", "w") as z:
        z.writestr("Patient.ndjson", orjson.dumps(patient("p1")))
    with pytest.raises(InputError, match=r"^Patient\.ndjson: line 1: a zip archive"):
        list(iter_patients(tmp_path / "Patient.ndjson"))


def test_a_fifo_in_a_folder_is_skipped_and_one_named_is_refused(tmp_path, no_hang):
    folder = _folder_with_one_patient(tmp_path)
    fifo = folder / "Patient.ndjson"
    os.mkfifo(fifo)
    report = ImportReport()
    assert len(list(iter_patients(folder, report=report))) == 1
    assert report.files_skipped == {"not a regular file (a FIFO, socket or device)": 1}
    assert any("not a regular file" in w and "Patient.ndjson" in w for w in report.warnings)
    with pytest.raises(InputError, match=r"^Patient\.ndjson: not a regular file"):
        list(iter_patients(fifo))


@pytest.mark.parametrize("name", ["fifo.csv", "fifo.json", "fifo"])
def test_cli_columns_and_ingest_refuse_a_fifo(tmp_path, no_hang, name):
    from typer.testing import CliRunner

    from fhirsynth.cli import app

    os.mkfifo(tmp_path / name)
    res = CliRunner().invoke(app, ["columns", str(tmp_path / name)])
    assert res.exit_code == 2 and "not a regular file" in res.output, res.output
    schema = tmp_path / "s.schema.json"
    schema.write_text('{"name": "t", "columns": {"age": {"type": "numeric", "bounds": [0, 9]}}}')
    res = CliRunner().invoke(app, ["ingest", str(tmp_path / name), "--out",
                                   str(tmp_path / "o.csv"), "--ledger", str(tmp_path / "l"),
                                   *(["--schema", str(schema)] if name.endswith("csv") else [])])
    assert res.exit_code == 2 and "not a regular file" in res.output, res.output


def test_a_symlink_loop_is_a_clear_input_error(tmp_path):
    from typer.testing import CliRunner

    from fhirsynth.cli import app

    folder = _folder_with_one_patient(tmp_path)
    (folder / "loop.json").symlink_to(folder / "loop.json")
    report = ImportReport()
    assert len(list(iter_patients(folder, report=report))) == 1
    assert report.files_skipped == {"a symbolic link loop": 1}
    with pytest.raises(InputError, match=r"^loop\.json: a symbolic link loop"):
        list(iter_patients(folder / "loop.json"))
    for args in (["columns", str(folder / "loop.json")],
                 ["ingest", str(folder / "loop.json"), "--out", str(tmp_path / "o.csv"),
                  "--ledger", str(tmp_path / "l")]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2 and "symbolic link loop" in res.output, res.output


def test_a_symlinked_folder_in_the_input_is_read(tmp_path):
    # trial 24: a Bulk export's Condition files linked in as a folder were passed over in
    # silence (os.walk does not follow folder links)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ndjson(elsewhere / "Condition.ndjson", {
        "resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}})
    folder = tmp_path / "in"
    folder.mkdir()
    ndjson(folder / "Patient.ndjson", patient("p1"))
    (folder / "conditions").symlink_to(elsewhere, target_is_directory=True)
    (folder / "again").symlink_to(elsewhere, target_is_directory=True)  # read once
    report = ImportReport()
    (record,) = iter_patients(folder, report=report)
    assert [c["id"] for c in record.of_type("Condition")] == ["c1"]
    assert report.files == ["Patient.ndjson", "again/Condition.ndjson"]
    assert not report.files_skipped and not report.warnings


def test_a_folder_link_back_up_the_tree_is_a_loop_counted_and_warned(tmp_path):
    folder = _folder_with_one_patient(tmp_path)
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder, target_is_directory=True)
    (folder / "self").symlink_to(folder, target_is_directory=True)
    report = ImportReport()
    assert len(list(iter_patients(folder, report=report))) == 1
    assert report.files == ["a.json"]
    assert report.files_skipped == {"a symbolic link loop (a link to a folder it is in)": 2}
    (warning,) = report.warnings
    assert warning == ("skipped 2 folder link(s) in the input folder: a symbolic link loop "
                       "(a link to a folder it is in) (self; sub/up)")


@pytest.mark.parametrize("suffix", [".schema.json", ".yaml"])
def test_a_deeply_nested_spec_is_a_spec_error_naming_the_file(tmp_path, suffix):
    from fhirsynth.domain import load_spec
    from fhirsynth.errors import SpecError

    spec = tmp_path / f"deep{suffix}"
    spec.write_text("[" * 100_000, "utf-8")
    with pytest.raises(SpecError, match=rf"^{re.escape(str(spec))}: nested too deep"):
        load_spec(spec)
