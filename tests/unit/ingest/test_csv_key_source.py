"""A record-number key read from another column (trial 22): ``"patient_id": {"role": "key",
"source": {"column": "MRN"}}`` refuses repeats, regenerates the ids under its own name, and a
key named as an identifier is refused with exactly that fix."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.domain import TableSpec
from fhirsynth.errors import SpecError, TableInputError
from fhirsynth.evaluate.safe_harbor_spec import check_spec_safe_harbor
from fhirsynth.export.harmonise import with_fresh_keys
from fhirsynth.ingest import read_input
from fhirsynth.ingest.csv import read_csv_table

SEX = {"type": "categorical", "domain": ["F", "M"]}


def _spec(key: dict, name: str = "patient_id") -> TableSpec:
    return TableSpec.from_dict({"name": "t", "columns": {name: key, "sex": SEX}})


def _csv(tmp_path: Path, rows: list[str]) -> Path:
    p = tmp_path / "t.csv"
    p.write_text("MRN,sex\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return p


PID = {"role": "key", "source": {"column": "MRN"}}


def test_a_key_read_from_another_column_refuses_a_repeated_patient(tmp_path):
    p = _csv(tmp_path, ["MRN7300001,F", "MRN7300002,M", "MRN7300001,F"])
    with pytest.raises(TableInputError) as err:
        read_csv_table(p, _spec(PID))
    assert "1 patient id(s) appear on more than one row (first repeat at line 4)" in str(err.value)
    assert "MRN730000" not in str(err.value)


def test_a_key_read_from_another_column_gives_the_ids_and_the_treatment(tmp_path):
    p = _csv(tmp_path, ["MRN7300001,F", "MRN7300002,M"])
    ids: list[str] = []
    table, report = read_csv_table(p, _spec(PID), patient_ids=ids)
    assert ids == ["MRN7300001", "MRN7300002"]  # the ledger's patient digests
    assert list(table.columns) == ["sex"]
    assert report.treatments["MRN"]["output"] == ["patient_id"]
    assert report.treatments["MRN"]["treatment"].endswith("as patient_id")
    out = with_fresh_keys(_spec(PID), table, np.random.default_rng(0))
    assert list(out.columns) == ["patient_id", "sex"]
    assert not set(out["patient_id"]) & set(ids)


def test_fold_applies_to_a_key_read_from_another_column(tmp_path):
    p = _csv(tmp_path, ["A1,F", "A2,M", "A1,M"])
    table, report = read_csv_table(p, _spec(PID), fold="last")
    assert len(table) == 2 and report.rows_folded == 1


def test_a_key_whose_source_column_is_missing_says_which_column_it_reads(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("record,sex\nA1,F\n", encoding="utf-8")
    with pytest.raises(TableInputError, match="lacks the patient id column 'MRN' that the key "
                       "column 'patient_id' reads"):
        read_csv_table(p, _spec(PID))


def test_a_key_source_takes_no_transform(tmp_path):
    p = _csv(tmp_path, ["A1,F"])
    with pytest.raises(SpecError, match="a key column's source takes only the header column"):
        read_csv_table(p, _spec({"role": "key", "source": {"column": "MRN",
                                                           "transform": "year"}}))


def test_a_key_named_as_an_identifier_is_refused_with_the_source_fix():
    with pytest.raises(SpecError) as err:
        check_spec_safe_harbor(_spec({"role": "key"}, name="MRN"), "s.json")
    msg = str(err.value)
    assert "column 'MRN'" in msg
    assert '"patient_id": {"role": "key", "source": {"column": "MRN"}}' in msg
    assert "drop the column" not in msg
    # the fixed schema passes the pre-check
    check_spec_safe_harbor(_spec(PID), "s.json")


def test_no_key_column_is_said_once_naming_the_record_number_column(tmp_path):
    p = _csv(tmp_path, ["MRN7300001,F", "MRN7300002,M"])
    spec = TableSpec.from_dict({"name": "t", "columns": {"MRN": {"role": "drop"}, "sex": SEX}})
    _, rep = read_input([p], spec)
    notes = [w for w in rep["warnings"] if "no key column" in w]
    assert len(notes) == 1
    assert "every row is taken as one patient" in notes[0]
    assert '"source": {"column": "MRN"}' in notes[0]
    _, rep = read_input([p], _spec(PID))
    assert not [w for w in rep["warnings"] if "no key column" in w]


def test_columns_spec_flags_a_schema_without_a_key_and_a_key_named_mrn(tmp_path):
    p = _csv(tmp_path, ["MRN7300001,F"])
    dropped = tmp_path / "dropped.schema.json"
    dropped.write_text(json.dumps({"name": "t", "columns": {"MRN": {"role": "drop"},
                                                            "sex": SEX}}))
    result = CliRunner().invoke(app, ["columns", str(p), "--spec", str(dropped)])
    assert result.exit_code == 0
    assert "declares no key column" in result.output
    named = tmp_path / "named.schema.json"
    named.write_text(json.dumps({"name": "t", "columns": {"MRN": {"role": "key"}, "sex": SEX}}))
    result = CliRunner().invoke(app, ["columns", str(p), "--spec", str(named)])
    flat = " ".join(result.output.split())
    assert "`run` refuses this schema" in flat
    assert '"patient_id": {"role": "key", "source": {"column": "MRN"}}' in flat
    assert "MRN7300001" not in result.output
