"""``fhirsynth run`` refuses, before reading data or charging the ledger, a schema whose
outputs could fail the Safe Harbor scan (an age column above 89 without top-coding), and
runs with the documented fix."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from fhirsynth.cli import app


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _inputs(tmp_path: Path, age: dict) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    n = 300
    pd.DataFrame({"age": rng.integers(80, 110, n),
                  "sex": rng.choice(["f", "m"], n)}).to_csv(tmp_path / "p.csv", index=False)
    schema = {"name": "old", "columns": {
        "age": {"type": "numeric", "integer": True, "nullable": False, **age},
        "sex": {"type": "categorical", "domain": ["f", "m"], "nullable": False}}}
    (tmp_path / "p.schema.json").write_text(json.dumps(schema), "utf-8")
    return tmp_path / "p.csv", tmp_path / "p.schema.json"


def _run(tmp_path: Path, data: Path, schema: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["run", str(data), "--schema", str(schema), "--epsilon",
                                      "1", "--out", str(tmp_path / "rel"), "--ledger",
                                      str(tmp_path / "l.sqlite")])
    return result.exit_code, _flat(result.output)


def test_age_bounds_above_89_are_refused_before_anything_is_read_or_charged(
        tmp_path, monkeypatch) -> None:
    data, schema = _inputs(tmp_path, {"bounds": [0, 120]})

    def no_read(*args, **kwargs):
        raise AssertionError("the data was read")

    monkeypatch.setattr("fhirsynth.pipeline.read_input", no_read)
    code, console = _run(tmp_path, data, schema)
    assert code != 0
    assert str(schema) in console and "column 'age'" in console
    assert "top_code" in console and "bounds at 89" in console
    assert "Traceback" not in console
    assert not (tmp_path / "rel").exists()
    assert not (tmp_path / "l.sqlite").exists()
    assert set(tmp_path.iterdir()) == {data, schema}  # nothing written, not even a temp dir


def test_the_documented_fix_runs_and_the_release_passes_the_scan(tmp_path) -> None:
    data, schema = _inputs(tmp_path, {"bounds": [0, 90], "source": {"top_code": 90}})
    code, console = _run(tmp_path, data, schema)
    assert code == 0, console
    audit = json.loads((tmp_path / "rel" / "audit.json").read_text("utf-8"))
    assert audit["evaluation"]["safe_harbor"]["passed"] is True
    table = pd.read_csv(tmp_path / "rel" / "synthetic" / "patients.csv")
    assert table["age"].max() == 90  # 90 means 90 or older; most input ages are above it
    assert "may be shared" in console


def test_lowering_the_bound_to_89_runs(tmp_path) -> None:
    data, schema = _inputs(tmp_path, {"bounds": [0, 89]})
    code, console = _run(tmp_path, data, schema)
    assert code == 0, console
    assert (tmp_path / "l.sqlite").exists()
