"""CLI: ``fhirsynth inspect`` shows long column and step names in full on a narrow terminal."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app

LONG_NUM = "average_glucose_level_in_milligrams_per_decilitre_at_admission"
LONG_CAT = "smoking_status_reported_by_patient_or_family_member"
runner = CliRunner()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("inspect")
    rng = np.random.default_rng(0)
    n = 200
    pd.DataFrame({
        LONG_NUM: np.where(rng.random(n) < 0.2, np.nan, rng.uniform(60, 250, n).round(1)),
        LONG_CAT: rng.choice(["never", "former", "current"], n),
        "stroke": rng.choice(["0", "1"], n),
    }).to_csv(d / "t.csv", index=False)
    # the declared parent gives the nullable column its own "(missing or not)" table
    (d / "t.schema.json").write_text(json.dumps({
        "target": "stroke", "structure": {LONG_NUM: ["stroke"]}, "columns": {
        LONG_NUM: {"type": "numeric", "bounds": [50, 300], "nullable": True},
        LONG_CAT: {"type": "categorical", "domain": ["never", "former", "current"],
                   "nullable": False},
        "stroke": {"type": "categorical", "domain": ["0", "1"], "nullable": False}}}))
    r = runner.invoke(app, ["fit", str(d / "t.csv"), "--schema", str(d / "t.schema.json"),
                            "--epsilon", "1", "--seed", "2", "--out", str(d / "m.json")])
    assert r.exit_code == 0, r.output
    return d / "m.json"


def _first_cells(output: str) -> str:
    """The text of every table's first column, line fragments joined, spaces removed."""
    cells = [ln.split("│")[1] for ln in output.splitlines()
             if ln.startswith("│") and ln.count("│") >= 3]
    return "".join(c.strip() for c in cells).replace(" ", "")


@pytest.mark.parametrize("width", [60, 80])
def test_inspect_keeps_long_names(model, width) -> None:
    r = runner.invoke(app, ["inspect", str(model)], env={"COLUMNS": str(width)})
    assert r.exit_code == 0, r.output
    assert "…" not in r.output and "..." not in r.output
    assert max(len(ln) for ln in r.output.splitlines()) <= width
    steps = [s["name"] for s in json.loads(model.read_text())["budget"]["steps"]]
    assert any(LONG_NUM in s and "missing" in s for s in steps)
    text = _first_cells(r.output)
    for name in [LONG_NUM, LONG_CAT, *steps]:
        assert name.replace(" ", "") in text, name


def test_inspect_says_a_seeded_model_is_a_test_model(model) -> None:
    r = runner.invoke(app, ["inspect", str(model)])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert "drawn from a fixed seed" in said and "a test model, not for sharing" in said
    unseeded = json.loads(model.read_text())
    unseeded["info"]["reproducible_noise"] = False
    (model.parent / "u.json").write_text(json.dumps(unseeded))
    r = runner.invoke(app, ["inspect", str(model.parent / "u.json")])
    assert r.exit_code == 0 and "fixed seed" not in r.output
