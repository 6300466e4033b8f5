"""Ingest messages a new user acts on: which file was skipped as not FHIR, which folder is
empty, which spec lacks a reference date, one CSV per run, nested files named by their path
relative to the input folder.  No message quotes a patient value."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.errors import ConfigError, InputError, SpecError
from fhirsynth.ingest import read_input
from fhirsynth.ingest.features import default_spec_path, load_feature_spec

ROOT = Path(__file__).resolve().parents[2]
COHORT = ROOT / "fixtures" / "cohort"


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _export(tmp_path: Path) -> Path:
    root = tmp_path / "export"
    (root / "sub" / "deeper").mkdir(parents=True)
    for src in sorted(COHORT.glob("patient-00[0-2].json")):
        shutil.copy(src, root / "sub" / src.name)
    (root / "sub" / "deeper" / "notes.json").write_text('{"comment": "Jane Roe 1931"}',
                                                        "utf-8")
    return root


def test_a_skipped_non_fhir_file_is_named_in_the_warnings(tmp_path, caplog) -> None:
    root = _export(tmp_path)
    with caplog.at_level(logging.INFO, logger="fhirsynth.ingest.fhir"):
        table, report = read_input([root], load_feature_spec(None))
    assert len(table) == 3
    expected = "skipping sub/deeper/notes.json: not a FHIR resource or Bundle"
    assert any(expected in w for w in report["warnings"]), report["warnings"]
    assert any(expected in r.getMessage() for r in caplog.records)
    assert report["files_skipped"] == {"not FHIR (no resourceType)": 1}
    assert "Jane" not in str(report["warnings"])
    # the shareable form of the import report keeps no file name
    assert "notes.json" not in str({k: v for k, v in report.items() if k != "warnings"})


def test_cli_ingest_prints_the_skipped_file_as_a_warning(tmp_path) -> None:
    root = _export(tmp_path)
    result = CliRunner().invoke(app, ["ingest", str(root), "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 0, result.output
    assert "warning: skipping sub/deeper/notes.json" in _flat(result.output)
    # once, as the other warnings read, not also as a raw "WARNING fhirsynth..." log line
    assert _flat(result.output).count("skipping sub/deeper/notes.json") == 1


def test_errors_inside_nested_exports_name_the_relative_path(tmp_path) -> None:
    root = _export(tmp_path)
    (root / "sub" / "deeper" / "notes.json").write_text('{"resourceType": "Patient",', "utf-8")
    with pytest.raises(InputError, match=r"^sub/deeper/notes\.json: malformed JSON"):
        read_input([root], load_feature_spec(None))
    (root / "sub" / "deeper" / "notes.json").unlink()
    (root / "sub" / "deeper" / "part.ndjson").write_text('{"resourceType": "Patient"}\n{oops\n',
                                                         "utf-8")
    with pytest.raises(InputError, match=r"^sub/deeper/part\.ndjson: line 2: malformed JSON"):
        read_input([root], load_feature_spec(None))


def test_an_empty_input_folder_is_named(tmp_path) -> None:
    empty = tmp_path / "empty-export"
    empty.mkdir()
    result = CliRunner().invoke(app, ["run", str(empty), "--epsilon", "1", "--out",
                                      str(tmp_path / "rel"), "--ledger",
                                      str(tmp_path / "l.sqlite")])
    assert result.exit_code == 2
    assert str(empty) in _flat(result.output) and "holds no files" in result.output
    assert not (tmp_path / "rel").exists() and not (tmp_path / "l.sqlite").exists()


@pytest.mark.parametrize("line", ['reference_date: "2026-01"', ""])
def test_a_bad_or_missing_reference_date_names_the_spec_file(tmp_path, line) -> None:
    text = default_spec_path().read_text("utf-8")
    text = re.sub(r"(?m)^reference_date: .*$", line, text)
    spec = tmp_path / "my-spec.yaml"
    spec.write_text(text, "utf-8")
    with pytest.raises(SpecError) as err:
        load_feature_spec(spec)
    msg = str(err.value)
    assert msg.startswith(f"{spec}: ") and "reference_date" in msg
    assert "YYYY-MM-DD" in msg


def test_two_csv_inputs_say_one_csv_per_run(tmp_path) -> None:
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("age\n40\n", "utf-8")
    (tmp_path / "s.json").write_text(
        '{"name": "t", "columns": {"age": {"type": "numeric", "bounds": [0, 89]}}}', "utf-8")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"),
                                      "--schema", str(tmp_path / "s.json"), "--epsilon", "1",
                                      "--out", str(tmp_path / "rel"), "--ledger",
                                      str(tmp_path / "l.sqlite")])
    assert result.exit_code == 2
    out = _flat(result.output)
    assert "only one CSV file is accepted per run" in out and "FHIR" not in out
    with pytest.raises(ConfigError, match="inputs mix CSV and FHIR"):
        read_input([tmp_path / "a.csv", COHORT / "patient-000.json"],
                   load_feature_spec(None))
