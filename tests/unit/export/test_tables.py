import csv
import os

import pandas as pd
import pytest

from fhirsynth.errors import ConfigError
from fhirsynth.export.tables import write_table

TRICKY = ["line1\nline2", 'quote " inside', "comma, inside", "RTL \u202etext\u202c", "周雨桐",
          "tab\tinside", "crlf\r\nend", ""]


def _frame():
    return pd.DataFrame({
        "text": pd.Series(TRICKY, dtype="string"),
        "n": pd.Series([1, 2, None, 4, 5, 6, 7, 8], dtype="Int64"),
        "x": [0.5, 1.25, float("nan"), 3.0, 4.0, 5.0, 6.0, 7.0],
        "flag": pd.Series([True, False, None, True, True, False, True, False], dtype="boolean"),
    })


def test_csv_is_rfc4180_and_round_trips(tmp_path):
    path = write_table(_frame(), tmp_path / "out.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"text,n,x,flag\r\n")
    assert b'"quote "" inside"' in raw
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert [r[0] for r in rows[1:]] == [t for t in TRICKY]
    back = pd.read_csv(path, dtype={"text": "string"}, keep_default_na=False)
    assert back["text"].tolist() == TRICKY


def test_parquet_round_trips_types(tmp_path):
    df = _frame()
    path = write_table(df, tmp_path / "out.parquet", format=None)
    back = pd.read_parquet(path)
    assert back["text"].tolist() == TRICKY
    assert back["n"].dtype == "Int64" and back["flag"].dtype == "boolean"
    assert back["n"].isna().tolist() == df["n"].isna().tolist()


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    dest = tmp_path / "out.csv"
    dest.write_text("old\n")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    df = _frame()
    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(RuntimeError):
        write_table(df, dest)
    assert dest.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_unknown_format(tmp_path):
    with pytest.raises(ConfigError, match="format"):
        write_table(_frame(), tmp_path / "o.xlsx", format="xlsx")


def test_fresh_ids_replace_a_key_column():
    import uuid

    from fhirsynth.export.tables import with_fresh_ids

    df = _frame().assign(Id=[f"orig-{i}" for i in range(8)])
    out = with_fresh_ids(df, "Id", rng_or_seed=3)
    assert list(out.columns)[0] == "Id" and len(out.columns) == len(df.columns)
    assert not set(out["Id"]) & set(df["Id"])
    assert len(set(out["Id"])) == 8 and all(uuid.UUID(i).version == 4 for i in out["Id"])
    assert out["Id"].tolist() == with_fresh_ids(df, "Id", rng_or_seed=3)["Id"].tolist()
