"""The whole job, end to end, through the Python API and the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from fhirsynth.errors import BudgetExhaustedError, ConfigError, PrivacyBudgetError
from fhirsynth.pipeline import RunConfig, run_release
from fhirsynth.privacy.ledger import Ledger, source_fingerprint

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "cohort"
CLI = [sys.executable, "-m", "fhirsynth"]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("release")
    cfg = RunConfig(inputs=[FIXTURES], out=tmp / "out", epsilon=1.0, seed=11,
                    ledger=tmp / "ledger.sqlite")
    return run_release(cfg), tmp


def test_run_writes_the_documented_layout(release):
    result, _ = release
    out = result.out
    for rel in ("synthetic/patients.csv", "synthetic/patients.parquet", "model.json",
                "report.pdf", "internal/validation.pdf", "audit.json",
                "synthetic/fhir/Patient.ndjson"):
        assert (out / rel).is_file(), rel
    assert not list(out.parent.glob(".out.partial-*"))
    table = pd.read_csv(out / "synthetic" / "patients.csv")
    assert len(table) == result.n_patients_out > 0
    assert result.n_patients_in == 120


def test_audit_budget_adds_up_and_verifies(release):
    result, _ = release
    audit = json.loads((result.out / "audit.json").read_text())
    assert audit["epsilon_total"] == 1.0
    steps = audit["steps"]
    assert sum(s["epsilon"] for s in steps) == pytest.approx(1.0, abs=1e-9)
    assert all({"name", "mechanism", "epsilon", "sensitivity"} <= set(s) for s in steps)
    proc = subprocess.run([*CLI, "verify", str(result.out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    blob = json.dumps(audit)
    assert "seed" not in blob.lower().replace("seeds_removed", "")


def test_second_release_of_the_same_source_is_refused_by_the_ledger(release):
    result, tmp = release
    cfg = RunConfig(inputs=[FIXTURES], out=tmp / "again", epsilon=0.5, seed=1,
                    ledger=tmp / "ledger.sqlite")
    with pytest.raises(BudgetExhaustedError, match="budget exhausted"):
        run_release(cfg)
    assert not (tmp / "again").exists()
    spent = Ledger(tmp / "ledger.sqlite").summary()[0].spent_epsilon
    assert spent == pytest.approx(1.0)


def test_existing_output_directory_is_never_overwritten(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    cfg = RunConfig(inputs=[FIXTURES], out=out, epsilon=1.0, seed=1,
                    ledger=tmp_path / "l.sqlite")
    with pytest.raises(ConfigError, match="already exists"):
        run_release(cfg)
    assert (out / "keep.txt").read_text() == "mine"


def test_seeded_runs_are_reproducible_and_unseeded_runs_differ(tmp_path):
    def table(name, seed):
        cfg = RunConfig(inputs=[FIXTURES], out=tmp_path / name, epsilon=1.0, seed=seed,
                        ledger=tmp_path / f"{name}.sqlite", formats=("csv",), fhir=False)
        return (run_release(cfg).out / "synthetic" / "patients.csv").read_bytes()

    assert table("a", 5) == table("b", 5)
    assert table("c", None) != table("d", None)


def test_csv_input_with_a_schema(shared_data, tmp_path):
    # the shared schema's age bounds [0, 100] are refused by the Safe Harbor pre-check;
    # apply its documented fix (top-code the age at 90, as the default FHIR spec does)
    doc = json.loads((shared_data / "tabular" / "stroke.schema.json").read_text("utf-8"))
    doc["columns"]["age"].update(bounds=[0, 90], source={"top_code": 90})
    schema = tmp_path / "stroke.schema.json"
    schema.write_text(json.dumps(doc), "utf-8")
    cfg = RunConfig(inputs=[shared_data / "tabular" / "stroke.csv"], out=tmp_path / "out",
                    epsilon=1.0, spec=schema, seed=3, ledger=tmp_path / "l.sqlite", rows=500)
    result = run_release(cfg)
    table = pd.read_csv(result.out / "synthetic" / "patients.csv")
    assert len(table) == 500
    assert "id" not in table.columns
    assert not (result.out / "synthetic" / "fhir").exists()
    # the record says what the release wrote (trial 22: "fhir": true for a CSV release)
    audit = json.loads((result.out / "audit.json").read_text())
    assert audit["config"]["fhir"] is False and audit["config"]["fhir_bundles"] is False
    assert set(table["gender"].dropna()) <= {"Female", "Male", "Other"}
    assert result.shareable and table["age"].max() <= 90


def test_cli_bad_epsilon_is_one_clear_error(tmp_path):
    for bad in ("0", "-1", "abc", "nan"):
        proc = subprocess.run([*CLI, "run", str(FIXTURES), "--epsilon", bad, "--out",
                               str(tmp_path / "o"), "--ledger", str(tmp_path / "l.sqlite")],
                              capture_output=True, text=True)
        assert proc.returncode == 2
        assert "epsilon" in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_killing_the_run_leaves_no_complete_looking_output_and_keeps_the_charge(tmp_path):
    out = tmp_path / "out"
    ledger = tmp_path / "ledger.sqlite"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*CLI, "run", str(FIXTURES), "--epsilon", "1", "--out", str(out),
                             "--ledger", str(ledger), "--seed", "2"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # wait until the budget is charged, then kill the run wherever it is
    deadline = time.monotonic() + 120
    charged = False
    while time.monotonic() < deadline and proc.poll() is None:
        if ledger.exists():
            try:
                charged = bool(Ledger(ledger).summary())
            except Exception:  # the ledger may be mid-creation
                charged = False
            if charged:
                break
        time.sleep(0.05)
    assert charged, "the run never charged the ledger"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not out.exists()
    summary = Ledger(ledger).summary()[0]
    assert summary.spent_epsilon == pytest.approx(1.0)
    assert [r.status for r in summary.releases] == ["charged"]


def test_report_command_rebuilds_reports_for_an_existing_release(release, tmp_path):
    result, _ = release
    out = tmp_path / "reports"
    proc = subprocess.run([*CLI, "report", str(result.out / "model.json"),
                           str(result.out / "synthetic" / "patients.csv"), "--real",
                           str(FIXTURES), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for rel in ("report.pdf", "internal/validation.pdf", "audit.json"):
        assert (out / rel).is_file()
    audit = json.loads((out / "audit.json").read_text())
    assert audit["epsilon_total"] == 1.0
    # the read spec's Safe Harbor rules (age 90 = "90 or older") apply to the rebuilt scan
    assert audit["evaluation"]["safe_harbor"]["passed"], audit["evaluation"]["safe_harbor"]
    assert subprocess.run([*CLI, "verify", str(out)], capture_output=True).returncode == 0
    # what the saved model says of its fit is recorded (a trial found only report_only)
    cfg = audit["config"]
    assert cfg["report_only"] is True and cfg["epsilon"] == 1.0 and cfg["delta"] == 0.0
    assert cfg["learn"]["structure_share"] == 0.1 and cfg["noise"] in ("laplace", "gaussian")
    # the internal report says why there is no holdout and no privacy-risk test
    from pypdf import PdfReader

    text = " ".join(" ".join(p.extract_text().split())
                    for p in PdfReader(out / "internal" / "validation.pdf").pages)
    assert "real holdout rows: none" in text and "None" not in text
    assert "Not run: this report was rebuilt from an existing model" in text
    assert "privacy-risk tests are not run" in " ".join(proc.stderr.split() + proc.stdout.split())
    # --overwrite replaces the rebuilt report (the error pointed at it; the option was missing)
    again = subprocess.run([*CLI, "report", str(result.out / "model.json"),
                            str(result.out / "synthetic" / "patients.csv"), "--real",
                            str(FIXTURES), "--out", str(out), "--overwrite"],
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr


def test_report_refuses_real_data_other_than_the_releases_own(release, tmp_path):
    # a trial compared a Synthea release's model with MIMIC patients, silently
    from cohort_copy import edited_cohort

    result, _ = release
    other = edited_cohort(tmp_path / "other", 60)  # a different cohort (a subset)
    out = tmp_path / "reports"
    proc = subprocess.run([*CLI, "report", str(result.out / "model.json"),
                           str(result.out / "synthetic" / "patients.csv"), "--real",
                           str(other), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "--real is not the input of the release" in " ".join(proc.stdout.split()) + \
        " ".join(proc.stderr.split())
    assert not out.exists()


def test_released_marginals_sit_on_the_evaluation_states(release):
    from fhirsynth.evaluate.discretise import _labels
    from fhirsynth.model import FittedModel
    from fhirsynth.pipeline import model_summary

    model = FittedModel.from_json(release[0].out / "model.json")
    summary = model_summary(model)
    assert len(summary["released_marginals"]) == len(model.columns)
    for m in summary["released_marginals"]:
        col = model.spec[m["columns"][0]]
        assert m["states"] == _labels(col, 16)
        assert sum(m["values"]) == pytest.approx(1.0, abs=1e-4)


def test_a_release_with_delta_runs_under_zcdp_and_its_report_says_so(tmp_path):
    from pypdf import PdfReader

    from fhirsynth.privacy.noise import zcdp_rho

    res = run_release(RunConfig(inputs=[FIXTURES], out=tmp_path / "out", epsilon=1.0,
                                delta=1e-9, seed=4, ledger=tmp_path / "l.sqlite", fhir=False))
    audit = json.loads((res.out / "audit.json").read_text())
    assert audit["delta_spent"] == 1e-9 and "zero-concentrated" in audit["composition"]
    count = audit["steps"][0]
    assert count["name"] == "patient count"
    assert audit["rho_total"] == pytest.approx(zcdp_rho(1.0 - count["epsilon"], 1e-9))
    rho_sum = sum(s.get("rho", 0.0) for s in audit["steps"])
    assert rho_sum == pytest.approx(audit["rho_total"], rel=1e-9)
    # 49 columns: zCDP for everything after the (pure eps-DP) patient count
    assert {s["mechanism"] for s in audit["steps"][1:]} <= {"gaussian (diffprivlib)",
                                                            "exponential (diffprivlib)"}
    assert audit["steps"][0]["mechanism"] == "laplace (diffprivlib)"
    text = " ".join(p.extract_text() for p in PdfReader(res.out / "report.pdf").pages)
    assert "zero-concentrated" in text and "(1, 1e-09)-differential privacy" in text


def test_cli_gaussian_without_delta_is_refused_before_anything_is_charged(tmp_path):
    proc = subprocess.run([*CLI, "run", str(FIXTURES), "--epsilon", "1", "--mechanism",
                           "gaussian", "--out", str(tmp_path / "o"), "--ledger",
                           str(tmp_path / "l.sqlite")], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "delta" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "l.sqlite").exists()


def test_synthetic_fhir_reads_back_with_the_utilisation_counts(release):
    from fhirsynth.ingest import read_input
    from fhirsynth.ingest.features import load_feature_spec

    result, _ = release
    spec = load_feature_spec()
    counts = [c.name for c in spec.modelled if (c.source or {}).get("from") == "encounter"]
    synthetic = pd.read_csv(result.out / "synthetic" / "patients.csv")
    back, _ = read_input([result.out / "synthetic" / "fhir"], spec, keep_test_patients=True)
    assert len(back) == len(synthetic) and synthetic[counts].to_numpy().sum() > 0

    # the reader orders patients by their fresh ids: compare the patients as a multiset of
    # (gender, counts) tuples (age reads back from a year-precision birthDate, +-1)
    def rows(t: pd.DataFrame) -> list[tuple]:
        cols = ["gender", *counts]
        return sorted(tuple(r) for r in t[cols].astype("string").fillna("NA").to_numpy())

    assert rows(back) == rows(synthetic)
    audit = json.loads((result.out / "audit.json").read_text())
    assert audit["evaluation"]["safe_harbor"]["passed"]  # the periods are years only


@pytest.mark.slow
def test_sigterm_removes_the_output_in_progress_and_exits_143(tmp_path):
    out = tmp_path / "out"
    ledger = tmp_path / "ledger.sqlite"
    proc = subprocess.Popen([*CLI, "run", str(FIXTURES), "--epsilon", "1", "--out", str(out),
                             "--ledger", str(ledger), "--seed", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if list(tmp_path.glob(".out.partial-*")):
            break  # the release is being written
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be terminated"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".out.partial-*"))


def test_every_file_of_a_release_has_the_same_permissions(release):
    result, _ = release
    modes = {p.stat().st_mode & 0o777 for p in result.out.rglob("*") if p.is_file()}
    assert len(modes) == 1, sorted(oct(m) for m in modes)


def test_the_release_folder_follows_the_umask_and_internal_is_private(tmp_path):
    # the folder was built by mkdtemp (0700) and kept that mode, so colleagues could not
    # read the shareable release while internal/ (real-versus-synthetic) was 0755
    given = tmp_path / "given"
    given.mkdir()
    os.chmod(given, 0o750)
    old = os.umask(0o022)
    try:
        fresh = run_release(RunConfig(inputs=[FIXTURES], out=tmp_path / "out", epsilon=1.0,
                                      seed=3, ledger=tmp_path / "l1.sqlite")).out
        kept = run_release(RunConfig(inputs=[FIXTURES], out=given, epsilon=1.0, seed=3,
                                     ledger=tmp_path / "l2.sqlite")).out
    finally:
        os.umask(old)
    mode = lambda p: p.stat().st_mode & 0o777  # noqa: E731
    assert mode(fresh) == 0o755 and mode(fresh / "synthetic") == 0o755
    assert mode(fresh / "internal") == 0o700 and mode(kept / "internal") == 0o700
    assert mode(kept) == 0o750  # an existing empty folder keeps its own mode


def test_fhir_bundles_are_part_of_the_release_and_verify(tmp_path):
    res = run_release(RunConfig(inputs=[FIXTURES], out=tmp_path / "out", epsilon=1.0, seed=6,
                                ledger=tmp_path / "l.sqlite", fhir_bundles=True))
    bundles = res.out / "synthetic" / "bundles.ndjson"
    patients = res.out / "synthetic" / "fhir" / "Patient.ndjson"
    assert len(bundles.read_text().splitlines()) == len(patients.read_text().splitlines())
    audit = json.loads((res.out / "audit.json").read_text())
    assert any(o["path"].endswith("bundles.ndjson") for o in audit["outputs"])
    assert audit["config"]["fhir_bundles"] is True
    proc = subprocess.run([*CLI, "verify", str(res.out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_declared_delta_that_laplace_does_not_use_is_not_claimed(tmp_path):
    from pypdf import PdfReader

    from fhirsynth.config import LearnConfig

    res = run_release(RunConfig(inputs=[FIXTURES], out=tmp_path / "out", epsilon=1.0,
                                delta=1e-9, seed=4, ledger=tmp_path / "l.sqlite", fhir=False,
                                learn=LearnConfig(mechanism="laplace")))
    text = " ".join(" ".join(p.extract_text().split())
                    for p in PdfReader(res.out / "report.pdf").pages)
    assert "(1, 0)-differential privacy" in text
    assert "A delta of 1e-09 was declared but not needed" in text


def test_cli_large_epsilon_is_refused_before_anything_is_charged(tmp_path):
    proc = subprocess.run([*CLI, "run", str(FIXTURES), "--epsilon", "1e6",
                           "--out", str(tmp_path / "o"), "--ledger", str(tmp_path / "l.sqlite")],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "--allow-large-epsilon" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "l.sqlite").exists()
    with pytest.raises(PrivacyBudgetError, match="epsilon .1e\\+06. is above 10"):
        RunConfig(inputs=[FIXTURES], out=tmp_path / "o", epsilon=1e6)
    RunConfig(inputs=[FIXTURES], out=tmp_path / "o", epsilon=1e6, allow_large_epsilon=True)


def test_cli_large_delta_is_refused_before_anything_is_charged(tmp_path):
    proc = subprocess.run([*CLI, "run", str(FIXTURES), "--epsilon", "1", "--delta", "0.01",
                           "--out", str(tmp_path / "o"), "--ledger", str(tmp_path / "l.sqlite")],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "--allow-large-delta" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "l.sqlite").exists()


@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, 143, "terminated"),
                                             (signal.SIGINT, 130, "interrupted")])
def test_a_signal_while_the_release_moves_into_place_waits_for_it(tmp_path, monkeypatch, sig,
                                                                  code, word):
    # replacing an earlier release renames it aside, then the new one into place: a signal
    # in between must not leave neither; it is reported once the release is whole
    from typer.testing import CliRunner

    import fhirsynth.pipeline as pipeline
    from fhirsynth.cli import app
    from fhirsynth.report.audit import verify_release

    out, ledger = tmp_path / "out", tmp_path / "l.sqlite"
    args = ["run", str(FIXTURES), "--epsilon", "0.5", "--out", str(out), "--ledger",
            str(ledger), "--seed", "1"]
    Ledger(ledger).set_cap(source_fingerprint([FIXTURES]), 2.0)
    assert CliRunner().invoke(app, args).exit_code == 0
    first = (out / "audit.json").read_text()
    move = pipeline._move_into_place

    def interrupted_move(tmp: Path, dest: Path) -> None:
        os.kill(os.getpid(), sig)
        time.sleep(0.05)  # the handler runs here, before the renames
        move(tmp, dest)

    monkeypatch.setattr(pipeline, "_move_into_place", interrupted_move)
    res = CliRunner().invoke(app, [*args, "--overwrite", "--seed", "2"])
    assert res.exit_code == code, res.output
    assert f"{word} after the outputs were complete" in res.output
    assert (out / "audit.json").read_text() != first and verify_release(out).ok
    assert not list(tmp_path.glob(".out.*"))
    (source,) = Ledger(ledger).summary()
    assert [r.status for r in source.releases] == ["completed", "completed"]


def test_a_signal_just_after_the_temporary_folder_is_made_leaves_nothing(tmp_path, monkeypatch):
    # the folder used to be created before the try that removes it: a SIGTERM in between
    # (seen on a loaded machine) left a .out.partial-* folder behind
    import fhirsynth.pipeline as pipeline

    made = pipeline._create_tmp

    def made_then_interrupted(tmp, out):
        made(tmp, out)
        assert tmp.is_dir()
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_create_tmp", made_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_release(RunConfig(inputs=[FIXTURES], out=tmp_path / "out", epsilon=1.0, seed=2,
                              ledger=tmp_path / "l.sqlite"))
    assert list(tmp_path.iterdir()) == []


def test_the_report_says_how_the_patients_were_drawn(release):
    from pypdf import PdfReader

    result, _ = release
    text = " ".join(" ".join(p.extract_text() for p in
                             PdfReader(result.out / "report.pdf").pages).split())
    assert "drawn from the model by balanced sampling" in text
    assert "need a release made with --sampling iid" in text
    assert "[0, 90] years" in text and "[0, 90] a," not in text  # UCUM "a" read as years
    audit = json.loads((result.out / "audit.json").read_text())
    assert audit["config"]["sampling"] == "balanced"


def test_a_sigterm_swallowed_by_a_finaliser_still_stops_the_run_at_once(tmp_path,
                                                                       monkeypatch):
    # trial 16: a SIGTERM that arrived while Python ran a finaliser raised there, where the
    # interpreter only prints "Exception ignored ..."; the run went on until the end of the
    # stage (minutes, in a long fit) before it stopped
    from typer.testing import CliRunner

    from fhirsynth.cli import app
    from fhirsynth.synthesizer import Synthesizer

    class Finaliser:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler raises in here, and the exception is swallowed

    def long_fit(self, *args, **kwargs):
        Finaliser()  # collected at once
        for _ in range(200):  # a 10-second stage
            time.sleep(0.05)
        raise AssertionError("the fit was not stopped")

    monkeypatch.setattr(Synthesizer, "fit", long_fit)
    out = tmp_path / "out"
    t0 = time.monotonic()
    res = CliRunner().invoke(app, ["run", str(FIXTURES), "--epsilon", "0.5", "--out", str(out),
                                   "--ledger", str(tmp_path / "l.sqlite")])
    assert res.exit_code == 143, res.output
    assert time.monotonic() - t0 < 5.0
    assert "terminated: no output was written" in res.output
    assert "Exception ignored" not in res.output
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_report_on_a_copied_model_says_real_is_unchecked_and_how_to_check_it(release,
                                                                              tmp_path):
    # a trial copied model.json out of its release and gave another cohort: exit 0, unnoticed
    import shutil

    from cohort_copy import edited_cohort

    result, _ = release
    other = edited_cohort(tmp_path / "other", 60)
    shutil.copy(result.out / "model.json", tmp_path / "model.json")
    synthetic = str(result.out / "synthetic" / "patients.csv")
    out = tmp_path / "reports"
    proc = subprocess.run([*CLI, "report", str(tmp_path / "model.json"), synthetic, "--real",
                           str(other), "--out", str(out)], capture_output=True, text=True)
    said = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 0, said
    assert said.count("could not be checked against the release's input") == 1
    assert "--commitment" in said and "internal/input-commitment.json" in said
    evaluation = json.loads((out / "internal" / "evaluation.json").read_text())
    assert "could not be checked" in evaluation["real_input_unchecked"]
    from pypdf import PdfReader

    text = " ".join(" ".join(p.extract_text().split())
                    for p in PdfReader(out / "internal" / "validation.pdf").pages)
    assert "Real input not checked:" in text
    assert "real_input_unchecked" not in (out / "audit.json").read_text()  # internal only
    # with the release's key file the other cohort is refused, as in place
    key = str(result.out / "internal" / "input-commitment.json")
    proc = subprocess.run([*CLI, "report", str(tmp_path / "model.json"), synthetic, "--real",
                           str(other), "--out", str(tmp_path / "r2"), "--commitment", key],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "--real is not the input of the release" in " ".join(proc.stderr.split())
    assert not (tmp_path / "r2").exists()
    # and the release's own input passes without the warning
    proc = subprocess.run([*CLI, "report", str(tmp_path / "model.json"), synthetic, "--real",
                           str(FIXTURES), "--out", str(tmp_path / "r3"), "--commitment", key],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "could not be checked" not in proc.stdout + proc.stderr
    # a model that is not the release's is refused with that key file
    blob = json.loads((tmp_path / "model.json").read_text())
    (tmp_path / "m2").mkdir()
    (tmp_path / "m2" / "model.json").write_text(json.dumps(blob, indent=1))
    proc = subprocess.run([*CLI, "report", str(tmp_path / "m2" / "model.json"), synthetic,
                           "--real", str(FIXTURES), "--out", str(tmp_path / "r4"),
                           "--commitment", key], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "is not the model.json of that release" in " ".join(proc.stderr.split())


def test_run_withholds_a_synthea_file_name_in_its_errors(tmp_path):
    # trial 18: `ingest` withheld a patient-named bundle file, but `run` printed it, from the
    # ledger's fingerprint, which reads every file before the reader does
    import gzip
    import shutil

    from typer.testing import CliRunner

    from fhirsynth.cli import app

    folder = tmp_path / "in"
    folder.mkdir()
    for src in sorted(FIXTURES.glob("*.json"))[:3]:
        shutil.copy(src, folder / src.name)
    bad = folder / "Alda_Carter_ee1034c9-cb75-413c-8f36-da7e4268d2b5.json.gz"
    bad.write_bytes(gzip.compress(b'{"resourceType": "Bundle"}')[:20])  # truncated
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["run", str(folder), "--epsilon", "1", "--out", str(out),
                                   "--ledger", str(tmp_path / "l.sqlite")])
    text = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert "truncated or corrupt gzip file" in text
    assert "Alda" not in text and "ee1034c9" not in text
    assert "file 1 of 4 (name withheld" in text and "--which 1" in text
    assert not out.exists() and not (tmp_path / "l.sqlite").exists()


def test_report_refuses_another_csv_for_a_release_made_from_a_csv(tmp_path):
    # trial 18: a 2,000-row subset given as --real to a CSV release was only warned about;
    # a CSV is keyed by its own cells, so another table is another input
    from typer.testing import CliRunner

    from fhirsynth.cli import app

    schema = tmp_path / "t.schema.json"
    schema.write_text(json.dumps({"name": "t", "columns": {
        "age": {"type": "numeric", "bounds": [0, 89], "integer": True, "nullable": False},
        "sex": {"type": "categorical", "domain": ["f", "m"], "nullable": False}}}))
    rows = [f"{20 + i % 60},{'fm'[i % 2]}" for i in range(400)]
    data, subset = tmp_path / "t.csv", tmp_path / "subset.csv"
    data.write_text("age,sex\n" + "\n".join(rows) + "\n")
    subset.write_text("age,sex\n" + "\n".join(rows[:300]) + "\n")
    rel = tmp_path / "rel"
    res = CliRunner().invoke(app, ["run", str(data), "--schema", str(schema), "--epsilon", "1",
                                   "--out", str(rel), "--ledger", str(tmp_path / "l.sqlite")])
    assert res.exit_code == 0, res.output
    args = ["report", str(rel / "model.json"), str(rel / "synthetic" / "patients.csv"),
            "--schema", str(schema), "--out"]
    res = CliRunner().invoke(app, [*args, str(tmp_path / "r1"), "--real", str(subset)])
    assert res.exit_code == 2, res.output
    assert "--real is not the input of the release" in " ".join(res.output.split())
    assert not (tmp_path / "r1").exists()
    res = CliRunner().invoke(app, [*args, str(tmp_path / "r2"), "--real", str(data)])
    assert res.exit_code == 0, res.output


def test_report_on_a_fhir_release_with_its_ingested_table_warns_once_and_records_it(tmp_path):
    from typer.testing import CliRunner

    from fhirsynth.cli import app

    rel, table = tmp_path / "rel", tmp_path / "table.csv"
    ledger = str(tmp_path / "l.sqlite")
    res = CliRunner().invoke(app, ["run", str(FIXTURES), "--epsilon", "1", "--out", str(rel),
                                   "--ledger", ledger])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["ingest", str(FIXTURES), "--out", str(table),
                                   "--ledger", ledger])
    assert res.exit_code == 0, res.output
    from fhirsynth.ingest.features import default_spec_path

    res = CliRunner().invoke(app, ["report", str(rel / "model.json"),
                                   str(rel / "synthetic" / "patients.csv"), "--real",
                                   str(table), "--spec", str(default_spec_path()),
                                   "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert text.count("could not be checked against the release's input") == 1
    ev = json.loads((tmp_path / "r" / "internal" / "evaluation.json").read_text())
    assert "fhirsynth ingest" in ev["real_input_unchecked"]
