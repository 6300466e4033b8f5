"""`fhirsynth ingest` refuses what `run` refuses and warns as `run` warns (QA trial 16):
no patients is one clear error, rows that did not fit the schema are a warning, and the
table of real patients it writes is the custodian's alone (0600)."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app

ROOT = Path(__file__).resolve().parents[3]
COHORT = ROOT / "fixtures" / "cohort"


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _schema(tmp_path: Path) -> Path:
    spec = tmp_path / "s.schema.json"
    spec.write_text(json.dumps({"name": "t", "columns": {
        "age": {"type": "numeric", "bounds": [0, 89], "integer": True},
        "sex": {"type": "categorical", "categories": ["f", "m"]}}}), "utf-8")
    return spec


def _ingest(tmp_path: Path, *args: str) -> tuple[int, str, Path]:
    out = tmp_path / "table.csv"
    res = CliRunner().invoke(app, ["ingest", *args, "--out", str(out), "--ledger",
                                   str(tmp_path / "l.sqlite")])
    return res.exit_code, _flat(res.output), out


@pytest.mark.parametrize("kind", ["header-only csv", "no FHIR in the folder",
                                  "every row outside the schema"])
def test_ingest_refuses_zero_patients_with_one_error(tmp_path, kind):
    if kind == "header-only csv":
        (tmp_path / "cohort.csv").write_text("age,sex\n", "utf-8")
        args = [str(tmp_path / "cohort.csv"), "--schema", str(_schema(tmp_path))]
        said = "no patients found in cohort.csv"
    elif kind == "no FHIR in the folder":
        (tmp_path / "in").mkdir()
        (tmp_path / "in" / "notes.json").write_text('{"comment": "x"}', "utf-8")
        args = [str(tmp_path / "in")]
        said = ("no patients found in in (no Patient resources, or no rows). The import also "
                "said: skipping notes.json: not a FHIR resource or Bundle")
    else:
        (tmp_path / "cohort.csv").write_text("age,sex\n40,q\n50,z\n", "utf-8")
        args = [str(tmp_path / "cohort.csv"), "--schema", str(_schema(tmp_path))]
        said = "2 of 2 rows do not fit the schema"
    code, output, out = _ingest(tmp_path, *args)
    assert code == 2, output
    assert said in output and output.count("error:") == 1
    assert not out.exists() and not any(tmp_path.glob(".table.csv*"))


def test_ingest_warns_of_rows_that_did_not_fit_the_schema_as_run_does(tmp_path):
    rows = "".join(f"{30 + i},{'f' if i % 2 else 'm'}\n" for i in range(30))
    (tmp_path / "cohort.csv").write_text("age,sex\n" + rows + "41,q\n", "utf-8")
    code, output, out = _ingest(tmp_path, str(tmp_path / "cohort.csv"), "--schema",
                                str(_schema(tmp_path)))
    assert code == 0, output
    assert ("warning: 1 row(s) did not fit the schema and were dropped; first: cohort.csv "
            "line 32: sex") in output
    # more than run accepts (5 %): run refuses; ingest (no release) writes and says it
    (tmp_path / "cohort.csv").write_text("age,sex\n" + rows + "41,q\n" * 5, "utf-8")
    out.unlink()
    code, output, out = _ingest(tmp_path, str(tmp_path / "cohort.csv"), "--schema",
                                str(_schema(tmp_path)))
    assert code == 0 and out.is_file(), output
    assert ("warning: 5 of 35 rows do not fit the schema (14%); the schema is probably "
            "wrong. First: cohort.csv line 32: sex") in output


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_the_ingested_table_is_written_0600(tmp_path, suffix):
    old = os.umask(0o022)
    try:
        out = tmp_path / f"table.{suffix}"
        res = CliRunner().invoke(app, ["ingest", str(COHORT), "--out", str(out), "--ledger",
                                       str(tmp_path / "l.sqlite")])
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
