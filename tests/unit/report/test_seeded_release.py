"""A release whose noise came from --seed is marked as a test release (trial 11: with the seed,
a candidate table reproduced the published model exactly, so its noise hid nothing)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.domain import Column, TableSpec
from fhirsynth.errors import ReproducibleNoiseWarning
from fhirsynth.pipeline import RunConfig
from fhirsynth.report.shareable import ATTENTION, TEST_RELEASE, ShareableContext, _checks

SPEC = TableSpec(name="s", columns=(Column(name="sex", categories=("f", "m")),))


def _ctx(config: dict) -> ShareableContext:
    bt = {"epsilon_total": 1.0, "delta_total": 0.0, "epsilon_spent": 1.0, "delta_spent": 0.0,
          "composition": "basic", "steps": [{"name": "s", "epsilon": 1.0}]}
    return ShareableContext(
        dataset="d", created="2026-01-01", run_id="r", version="0", budget_table=bt,
        spec=SPEC, synthetic_stats=[], synthetic_columns=["sex"], n_synthetic=10,
        safe_harbor={"passed": True, "findings": []}, software={}, hashes={}, config=config,
        limitations="", model_summary={})


def test_the_public_config_says_whether_a_seed_drew_the_noise() -> None:
    seeded = RunConfig(inputs=["x"], out="o", epsilon=1.0, seed=123456).public()
    assert seeded["reproducible_noise"] is True and "123456" not in json.dumps(seeded)
    assert RunConfig(inputs=["x"], out="o", epsilon=1.0).public()["reproducible_noise"] is False


def test_the_summary_marks_a_seeded_release_and_only_it() -> None:
    rows = {name: (mark, detail) for name, mark, detail in _checks(_ctx(
        {"reproducible_noise": True}))}
    assert rows["Noise from a secret random source"] == (ATTENTION, TEST_RELEASE)
    assert "Noise from a secret random source" not in {
        name for name, _, _ in _checks(_ctx({"reproducible_noise": False}))}


@pytest.mark.filterwarnings("ignore::fhirsynth.errors.LowUtilityWarning")
def test_run_and_verify_say_it(tmp_path: Path) -> None:
    cohort = Path(__file__).resolve().parents[3] / "fixtures" / "cohort"
    runner = CliRunner()
    with warnings.catch_warnings():  # (the suite ignores it: let it through)
        warnings.simplefilter("always", ReproducibleNoiseWarning)
        r = runner.invoke(app, ["run", str(cohort), "--epsilon", "1", "--out",
                                str(tmp_path / "o"), "--ledger", str(tmp_path / "l.sqlite"),
                                "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert "this is a test release" in " ".join(r.output.split())
    # the command's own warning only, not Synthesizer.fit's too (trial 25)
    assert " ".join(r.output.split()).count("guesses it can remove the noise") == 1
    pypdf = pytest.importorskip("pypdf")
    text = " ".join(pypdf.PdfReader(str(tmp_path / "o" / "report.pdf")).pages[0]
                    .extract_text().split())
    assert "TEST RELEASE, not for sharing" in text
    model = json.loads((tmp_path / "o" / "model.json").read_text(encoding="utf-8"))
    assert model["info"]["reproducible_noise"] is True
    v = runner.invoke(app, ["verify", str(tmp_path / "o")])
    assert v.exit_code == 0 and "note: a test release" in v.output
    # trial 13: the closing line said the release may be shared
    said = " ".join(r.output.split())
    assert "may be shared" not in said
    assert "a test release (--seed drew the noise): not for sharing." in said
    # ... a rebuilt report dropped the marking
    rb = runner.invoke(app, ["report", str(tmp_path / "o" / "model.json"),
                             str(tmp_path / "o" / "synthetic" / "patients.csv"), "--real",
                             str(cohort), "--out", str(tmp_path / "rb")])
    assert rb.exit_code == 0, rb.output
    audit = json.loads((tmp_path / "rb" / "audit.json").read_text(encoding="utf-8"))
    assert audit["config"]["reproducible_noise"] is True
    first = " ".join(pypdf.PdfReader(str(tmp_path / "rb" / "report.pdf")).pages[0]
                     .extract_text().split())
    assert "TEST RELEASE" in first and "Rebuilt by fhirsynth report" in first
    # ... and a record edited to hide it (hashes recomputed) passed verify
    from fhirsynth.report.audit import config_hash, record_digest

    rec = json.loads((tmp_path / "o" / "audit.json").read_text(encoding="utf-8"))
    rec["config"]["reproducible_noise"] = False
    rec["config_sha256"] = config_hash(rec["config"])
    rec["record_sha256"] = record_digest(rec)
    (tmp_path / "o" / "audit.json").write_text(json.dumps(rec), encoding="utf-8")
    v = runner.invoke(app, ["verify", str(tmp_path / "o")])
    assert v.exit_code == 1 and "inconsistent: config.reproducible_noise" in v.output


def test_the_noise_table_says_which_columns_are_mostly_noise(tmp_path: Path) -> None:
    # trial 12: columns empty in the input came out as noise and the partner could not tell;
    # the report may only say it from public facts: the noise against an average state
    from fhirsynth.report.pdf import build_pdf
    from fhirsynth.report.shareable import shareable_story

    pypdf = pytest.importorskip("pypdf")
    spec = TableSpec(name="s", columns=(
        Column(name="sex", categories=("f", "m")),
        Column(name="age", kind="numeric", bounds=(0, 90), integer=True)))
    bt = {"epsilon_total": 1.0, "delta_total": 0.0, "epsilon_spent": 1.0, "delta_spent": 0.0,
          "composition": "basic", "steps": [
              {"name": "table sex", "epsilon": 0.5, "mechanism": "Laplace"},
              {"name": "table age", "epsilon": 0.5, "mechanism": "Laplace"}]}
    ctx = ShareableContext(
        dataset="d", created="2026-01-01", run_id="r", version="0", budget_table=bt,
        spec=spec, synthetic_stats=[
            {"column": "sex", "kind": "categorical", "states": ["f", "m"], "shares": [.5, .5],
             "missing": 0.0},
            {"column": "age", "kind": "categorical", "states": ["a", "b"], "shares": [1.0, 0.0],
             "missing": 0.0}],
        synthetic_columns=["sex", "age"], n_synthetic=10,
        safe_harbor={"passed": True, "findings": []}, software={}, hashes={}, config={},
        limitations="", model_summary={"n_patients_noisy": 100, "released_marginals": [
            {"columns": ["sex"], "values": [.5, .5]}, {"columns": ["age"], "values": [1.0]}]})
    pdf = build_pdf(tmp_path / "r.pdf", shareable_story(ctx), title="t", footer="f")
    text = " ".join("\n".join(p.extract_text() for p in pypdf.PdfReader(str(pdf)).pages)
                    .split())
    # noise sd sqrt(2) / 0.5 = 2.8 patients: below 100 / 2 for sex, above 100 / 91 for age
    assert "sex 2.8 2.8 % —" in text and "age 2.8 2.8 % mostly noise" in text
    assert "noisy count of an average non-missing state" in text
