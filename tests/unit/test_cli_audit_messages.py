"""`fhirsynth audit` states its number of fits one way: how many per side, how many of them
chose the test and how many measured it, and each note names the count it rests on."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.evaluate.audit import AuditResult


def _result(**kw) -> AuditResult:
    base = dict(claimed_epsilon=1.0, delta=0.0, trials=60, n_eval=30, threshold=0.0,
                direction=1, fpr=0.1, fnr=0.5, epsilon_lower=0.2, epsilon_point=1.6,
                interval_low=0.0, interval_high=float("inf"), confidence=0.95, seconds=1.0)
    return AuditResult(**(base | kw))


@pytest.fixture
def run_audit(monkeypatch, tmp_path):
    import fhirsynth.evaluate.audit_pipeline as pipeline

    spec = tmp_path / "s.schema.json"
    spec.write_text(json.dumps({"columns": {
        "sex": {"type": "categorical", "domain": ["f", "m"], "nullable": False}}}), "utf-8")
    monkeypatch.setattr(pipeline, "read_table", lambda path: pd.DataFrame({"sex": ["f"] * 5}))

    def invoke(result: AuditResult) -> str:
        monkeypatch.setattr(pipeline, "audit_synthesizer", lambda *a, **k: result)
        r = CliRunner().invoke(app, ["audit", str(tmp_path / "t.csv"), "--spec", str(spec),
                                     "--epsilon", "1", "--trials", str(result.trials)])
        assert r.exit_code == 0, r.output
        return " ".join(r.output.split())

    return invoke


def test_fit_counts_are_stated_consistently(run_audit):
    text = run_audit(_result())
    assert "60 fits per side: 30 chose the test, 30 measured it" in text
    # every later count is the measuring one, said as such
    assert "a noisy estimate from the 30 fits per side that measured the test" in text
    assert "no error of one kind in the 30 fits per side that measured it" in text
    counts = re.findall(r"(\d+) fits per side", text)
    assert counts == ["60", "30", "30"], counts


def test_no_power_note_names_the_measuring_fits(run_audit):
    text = run_audit(_result(fpr=0.0, fnr=1.0, epsilon_point=0.0, interval_high=0.5))
    assert "no power at 60 fits per side (30 measured the test)" in text
