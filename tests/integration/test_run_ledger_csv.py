"""`run` and `fit` on one CSV patient table charge one ledger source, whatever its bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.privacy.budget import PrivacyBudget
from fhirsynth.privacy.ledger import Ledger, fingerprint_csv
from fhirsynth.report.release import input_commitment

runner = CliRunner()


def test_run_and_fit_on_one_csv_share_its_cap(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 400
    table = pd.DataFrame({"age": rng.integers(20, 89, n), "sex": rng.choice(["f", "m"], n),
                          "smoker": rng.choice(["no", "yes"], n, p=[0.8, 0.2])})
    data = tmp_path / "p.csv"
    table.to_csv(data, index=False)
    schema = tmp_path / "p.schema.json"
    schema.write_text(json.dumps({"name": "cohort", "columns": {
        "age": {"type": "numeric", "bounds": [18, 89], "integer": True, "nullable": False},
        "sex": {"type": "categorical", "domain": ["f", "m"], "nullable": False},
        "smoker": {"type": "categorical", "domain": ["no", "yes"], "nullable": False}}}))
    led = tmp_path / "l.sqlite"
    r = runner.invoke(app, ["ledger", "set-cap", str(data), "--epsilon", "1.5", "--ledger",
                            str(led)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["run", str(data), "--schema", str(schema), "--epsilon", "1",
                            "--out", str(tmp_path / "rel"), "--ledger", str(led), "--seed", "0"])
    assert r.exit_code == 0, r.output
    audit = json.loads((tmp_path / "rel" / "audit.json").read_text("utf-8"))
    key = bytes.fromhex(json.loads((tmp_path / "rel" / "internal" / "input-commitment.json")
                                   .read_text("utf-8"))["key"])
    assert audit["source_commitment"] == input_commitment(fingerprint_csv(data), key)
    # the same table re-saved (rows shuffled, CRLF): the run's source, 1 of 1.5 spent
    again = tmp_path / "again.csv"
    table.sample(frac=1.0, random_state=2).to_csv(again, index=False, lineterminator="\r\n")
    r = runner.invoke(app, ["fit", str(again), "--schema", str(schema), "--epsilon", "1",
                            "--ledger", str(led), "--out", str(tmp_path / "m.json")])
    assert r.exit_code == 2 and "spent epsilon 1 of cap 1.5" in r.output
    assert not (tmp_path / "m.json").exists()
    r = runner.invoke(app, ["fit", str(again), "--schema", str(schema), "--epsilon", "0.5",
                            "--ledger", str(led), "--out", str(tmp_path / "m.json")])
    assert r.exit_code == 0, r.output
    (source,) = Ledger(led).summary()
    assert source.spent_epsilon == 1.5 and len(source.releases) == 2


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cohort"
SPEC = Path(__file__).resolve().parents[2] / "compliance" / "feature-spec.yaml"


def test_a_table_from_ingest_spends_the_budget_of_its_fhir(tmp_path: Path) -> None:
    # before, `fit` of the ingested table opened a second budget for the same patients
    led, table = tmp_path / "l.sqlite", tmp_path / "t.csv"
    r = runner.invoke(app, ["ingest", str(FIXTURES), "--out", str(table), "--ledger", str(led)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["fit", str(table), "--schema", str(SPEC), "--epsilon", "0.6",
                            "--out", str(tmp_path / "m.json"), "--ledger", str(led),
                            "--seed", "1"])
    assert r.exit_code == 0, r.output
    # fit prints the utility warnings run prints (120 patients, 49 columns, eps 0.6)
    assert "warning: noise is likely to dominate" in " ".join(r.output.split())
    # the fit set the FHIR source's cap (0.6): a run on the FHIR itself is now refused
    r = runner.invoke(app, ["run", str(FIXTURES), "--epsilon", "0.5", "--out",
                            str(tmp_path / "rel"), "--ledger", str(led), "--seed", "1"])
    assert r.exit_code == 2 and "budget exhausted" in r.output
    (only,) = Ledger(led).summary()
    assert only.spent_epsilon == 0.6
    # a copy of the table with its rows shuffled is the same source; ledger show finds it
    copy = tmp_path / "copy.csv"
    header, *rows = table.read_text().splitlines()
    np.random.default_rng(3).shuffle(rows)
    copy.write_text("\n".join([header, *rows]) + "\n")
    r = runner.invoke(app, ["ledger", "show", str(copy), "--ledger", str(led)])
    assert r.exit_code == 0 and only.fingerprint in r.output and "epsilon 0.6" in r.output


def test_ingest_keeps_apart_a_table_already_charged_on_its_own(tmp_path: Path) -> None:
    led, table = tmp_path / "l.sqlite", tmp_path / "t.csv"
    assert runner.invoke(app, ["ingest", str(FIXTURES), "--out", str(table)],
                         env={"FHIRSYNTH_LEDGER": str(tmp_path / "other.sqlite")}).exit_code == 0
    Ledger(led).charge(fingerprint_csv(table), PrivacyBudget(epsilon=0.3))
    r = runner.invoke(app, ["ingest", str(FIXTURES), "--out", str(table), "--overwrite",
                            "--ledger", str(led)])
    assert r.exit_code == 0 and "stay apart" in " ".join(r.output.split())
    own = fingerprint_csv(table)
    assert Ledger(led).source_of(own) == own
    assert [(s.fingerprint, s.spent_epsilon) for s in Ledger(led).summary()] == [(own, 0.3)]


def test_ledger_show_of_an_unknown_table_says_it_is_another_source(tmp_path: Path) -> None:
    led = tmp_path / "l.sqlite"
    Ledger(led).charge("b" * 64, PrivacyBudget(epsilon=0.5))
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    r = runner.invoke(app, ["ledger", "show", str(other), "--ledger", str(led)])
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "no release of this source" in text
    assert "`fhirsynth ledger show` lists every source" in text
