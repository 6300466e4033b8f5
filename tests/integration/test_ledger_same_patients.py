"""The same patients are one ledger source, whatever the file looks like (red-team bypasses).

Each bypass below used to open a fresh source with a fresh cap: a table with a junk column,
ages written ``82.0``, a changed ``drop`` column, an ingested table with a ``drop`` column
deleted.  A table holding most of a charged table's rows is charged to it too; two different
cohorts with the same columns stay apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cohort_copy import edited_cohort
from fhirsynth.cli import app
from fhirsynth.privacy.ledger import Ledger

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "cohort"
SPEC = ROOT / "compliance" / "feature-spec.yaml"

SCHEMA = {"name": "cohort", "drop": ["id"], "columns": {
    "age": {"type": "numeric", "bounds": [18, 89], "integer": True, "nullable": False},
    "sex": {"type": "categorical", "domain": ["f", "m"], "nullable": False},
    "glucose": {"type": "numeric", "bounds": [50, 300], "nullable": False},
    "smoker": {"type": "categorical", "domain": ["no", "yes"], "nullable": False}}}


def _cohort(seed: int, n: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": rng.permutation(100_000)[:n] + 100_000,
        "age": rng.integers(18, 89, n),
        "sex": rng.choice(["f", "m"], n),
        "glucose": np.round(rng.uniform(55, 290, n), 2),
        "smoker": rng.choice(["no", "yes"], n, p=[0.8, 0.2])})


def _fit(table: Path, schema: Path, led: Path, epsilon: str, out: Path) -> str:
    r = runner.invoke(app, ["fit", str(table), "--schema", str(schema), "--epsilon", epsilon,
                            "--ledger", str(led), "--out", str(out), "--seed", "0"])
    text = " ".join(r.output.split())
    return f"exit {r.exit_code}: {text}"


@pytest.fixture
def charged(tmp_path: Path) -> tuple[pd.DataFrame, Path, Path]:
    """An invented cohort whose fit spent its whole cap (epsilon 1), and the schema."""
    table = _cohort(1)
    data, schema, led = tmp_path / "p.csv", tmp_path / "p.schema.json", tmp_path / "l.sqlite"
    table.to_csv(data, index=False)
    schema.write_text(json.dumps(SCHEMA), encoding="utf-8")
    assert _fit(data, schema, led, "1", tmp_path / "m.json").startswith("exit 0")
    return table, schema, led


@pytest.mark.parametrize("change", ["junk column", "ages as 82.0", "changed drop column"])
def test_a_reformatted_table_is_its_source(charged, tmp_path: Path, change: str) -> None:
    table, schema, led = charged
    variant = table.copy()
    if change == "junk column":
        variant.insert(2, "junk", np.arange(len(table)) * 7 % 13)
    elif change == "ages as 82.0":
        variant["age"] = variant["age"].astype(float)
    else:
        variant["id"] = variant["id"] + 1_000_000
    path = tmp_path / "variant.csv"
    variant.sample(frac=1.0, random_state=5).to_csv(path, index=False)
    if change == "ages as 82.0":
        assert ",82.0," in path.read_text() or ".0," in path.read_text()
    out = _fit(path, schema, led, "0.5", tmp_path / "v.json")
    assert out.startswith("exit 2") and "budget exhausted for dataset cohort" in out, out
    assert not (tmp_path / "v.json").exists()
    (only,) = Ledger(led).summary()
    assert only.spent_epsilon == 1


def test_run_on_a_table_with_a_junk_column_is_charged_to_its_source(charged,
                                                                    tmp_path: Path) -> None:
    table, schema, led = charged
    path = tmp_path / "junk.csv"
    table.assign(note=[f"n{i % 3}" for i in range(len(table))]).to_csv(path, index=False)
    r = runner.invoke(app, ["run", str(path), "--schema", str(schema), "--epsilon", "0.5",
                            "--out", str(tmp_path / "rel"), "--ledger", str(led), "--seed", "0"])
    assert r.exit_code == 2 and "budget exhausted" in r.output, r.output
    assert "the input is the ledger source cohort" in " ".join(r.output.split())
    assert len(Ledger(led).summary()) == 1
    # the refused input's file now names its source: `ledger set-cap FILE` raises its cap
    assert runner.invoke(app, ["ledger", "set-cap", str(path), "--epsilon", "2", "--ledger",
                               str(led)]).exit_code == 0
    other = tmp_path / "junk2.csv"
    table.assign(other=1).to_csv(other, index=False)
    r = runner.invoke(app, ["run", str(other), "--schema", str(schema), "--epsilon", "0.5",
                            "--out", str(tmp_path / "rel"), "--ledger", str(led), "--seed", "0"])
    text = " ".join(r.output.split())
    assert r.exit_code == 0, text
    assert "charged to the ledger source cohort" in text
    (only,) = Ledger(led).summary()
    assert only.spent_epsilon == 1.5 and only.cap_epsilon == 2


def test_a_cap_set_on_a_copy_does_not_make_it_a_source_of_its_own(charged,
                                                                  tmp_path: Path) -> None:
    table, schema, led = charged
    path = tmp_path / "copy.csv"
    table.assign(junk=0).to_csv(path, index=False)
    assert runner.invoke(app, ["ledger", "set-cap", str(path), "--epsilon", "3", "--ledger",
                               str(led)]).exit_code == 0
    out = _fit(path, schema, led, "0.5", tmp_path / "v.json")
    assert out.startswith("exit 2") and "budget exhausted for dataset cohort" in out, out
    assert [s.spent_epsilon for s in Ledger(led).summary()] == [1, 0]


def test_an_ingested_table_without_a_drop_column_spends_its_fhir_budget(tmp_path: Path) -> None:
    led, table = tmp_path / "l.sqlite", tmp_path / "t.csv"
    r = runner.invoke(app, ["ingest", str(FIXTURES), "--out", str(table), "--ledger", str(led)])
    assert r.exit_code == 0, r.output
    assert runner.invoke(app, ["ledger", "set-cap", str(FIXTURES), "--epsilon", "0.3",
                               "--ledger", str(led)]).exit_code == 0
    edited = tmp_path / "edited.csv"
    df = pd.read_csv(table, dtype=str, keep_default_na=False)
    df.drop(columns=["birth_date_precision"]).to_csv(edited, index=False)
    out = _fit(edited, SPEC, led, "0.5", tmp_path / "m.json")
    assert out.startswith("exit 2") and "budget exhausted" in out, out
    (only,) = Ledger(led).summary()
    assert only.spent_epsilon == 0


def test_a_fhir_export_of_the_same_patients_is_their_source(tmp_path: Path) -> None:
    # another export: 100 of the 120 patients, one Observation changed (other bytes, other
    # rows): the same Patient ids
    led = tmp_path / "l.sqlite"
    assert runner.invoke(app, ["ingest", str(FIXTURES), "--out", str(tmp_path / "t.csv"),
                               "--ledger", str(led)]).exit_code == 0
    assert runner.invoke(app, ["ledger", "set-cap", str(FIXTURES), "--epsilon", "0.3",
                               "--ledger", str(led)]).exit_code == 0

    def edit(i: int, bundle: dict) -> None:
        if i == 0:
            bundle["entry"] = [e for e in bundle["entry"]
                               if e["resource"]["resourceType"] != "Observation"]
    again = edited_cohort(tmp_path / "again", 100, edit)
    r = runner.invoke(app, ["run", str(again), "--epsilon", "0.5", "--out", str(tmp_path / "r"),
                            "--ledger", str(led), "--seed", "0"])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "budget exhausted" in text, text
    assert "100% of its patients are that source's (by patient ids)" in text
    assert [s.spent_epsilon for s in Ledger(led).summary()] == [0]


def test_a_table_with_most_rows_of_a_charged_one_is_charged_to_it(charged,
                                                                  tmp_path: Path) -> None:
    table, schema, led = charged
    part = table.sample(frac=0.9, random_state=3)
    path = tmp_path / "part.csv"
    part.drop(columns=["id"]).to_csv(path, index=False)
    out = _fit(path, schema, led, "0.5", tmp_path / "v.json")
    assert out.startswith("exit 2") and "budget exhausted for dataset cohort" in out, out
    assert ("the input is the ledger source cohort: 100% of its patients are that source's "
            "(by patients' rows under the schema's columns)") in out
    assert runner.invoke(app, ["ledger", "set-cap", "--ledger", str(led),
                               Ledger(led).summary()[0].fingerprint, "--epsilon",
                               "2"]).exit_code == 0
    assert _fit(path, schema, led, "0.5", tmp_path / "v.json").startswith("exit 0")
    # another part, met for the first time: charged to the source, and the fit says so
    other = tmp_path / "other.csv"
    table.sample(frac=0.8, random_state=4).to_csv(other, index=False)
    out = _fit(other, schema, led, "0.25", tmp_path / "w.json")
    assert out.startswith("exit 0") and "charged to the ledger source cohort" in out, out
    (only,) = Ledger(led).summary()
    assert only.spent_epsilon == 1.75 and len(only.releases) == 3
    # trial 14: fit said "epsilon spent 0.25 of 0.25", never the source's total
    assert "this source has spent epsilon 1.75 (cap 2)" in out, out


@pytest.mark.parametrize("rich", [True, False], ids=["near-unique rows", "few values"])
def test_two_different_cohorts_with_the_same_columns_are_two_sources(tmp_path: Path,
                                                                     rich: bool) -> None:
    schema, led = tmp_path / "p.schema.json", tmp_path / "l.sqlite"
    spec = json.loads(json.dumps(SCHEMA))
    if not rich:  # age, sex, smoker: most rows of one cohort are rows of the other too
        del spec["columns"]["glucose"]
    schema.write_text(json.dumps(spec), encoding="utf-8")
    for seed in (1, 2):
        data = tmp_path / f"c{seed}.csv"
        _cohort(seed).to_csv(data, index=False)
        out = _fit(data, schema, led, "1", tmp_path / f"m{seed}.json")
        assert out.startswith("exit 0") and "charged to the ledger source" not in out, out
    assert [s.spent_epsilon for s in Ledger(led).summary()] == [1, 1]


def test_a_table_holding_two_charged_sources_is_refused(tmp_path: Path) -> None:
    # trial 14: the union of two charged cohorts was charged to one of them once the other's
    # cap was raised, so the first cohort's patients passed their cap
    schema, led = tmp_path / "p.schema.json", tmp_path / "l.sqlite"
    schema.write_text(json.dumps(SCHEMA), encoding="utf-8")
    halves = [_cohort(1), _cohort(2)]
    for i, half in enumerate(halves):
        half.to_csv(tmp_path / f"h{i}.csv", index=False)
        assert _fit(tmp_path / f"h{i}.csv", schema, led, "1",
                    tmp_path / f"m{i}.json").startswith("exit 0")
    for s in Ledger(led).summary():  # room under both caps: the refusal is not a cap's
        Ledger(led).set_cap(s.fingerprint, 5.0)
    pd.concat(halves).to_csv(tmp_path / "both.csv", index=False)
    out = _fit(tmp_path / "both.csv", schema, led, "1", tmp_path / "m.json")
    assert out.startswith("exit 2") and "holds the patients of 2 ledger sources" in out, out
    assert [s.spent_epsilon for s in Ledger(led).summary()] == [1, 1]


def test_a_table_with_every_row_twice_is_warned_about(tmp_path: Path) -> None:
    # trial 14: every patient written twice made a new source and a release whose stated
    # epsilon was half of what its patients spent; the guarantee is per row, so say so
    schema, led = tmp_path / "p.schema.json", tmp_path / "l.sqlite"
    schema.write_text(json.dumps(SCHEMA), encoding="utf-8")
    once = _cohort(1)
    once.to_csv(tmp_path / "once.csv", index=False)
    out = _fit(tmp_path / "once.csv", schema, led, "1", tmp_path / "m1.json")
    assert out.startswith("exit 0") and "repeat an earlier row" not in out, out
    pd.concat([once, once]).to_csv(tmp_path / "twice.csv", index=False)
    out = _fit(tmp_path / "twice.csv", schema, tmp_path / "l2.sqlite", "1", tmp_path / "m.json")
    assert "500 of 1000 rows repeat an earlier row in every column" in out, out
    assert "spends twice the stated epsilon" in out and "role: key" in out


def test_ledger_show_and_set_cap_find_a_copy_with_its_schema(charged, tmp_path: Path) -> None:
    # trial 14: `ledger show COPY.csv` said the ledger had no release of a copy that a fit
    # then found, and `set-cap COPY.csv` capped a nameless key nothing would use
    table, schema, led = charged
    copy = tmp_path / "copy.csv"
    table.assign(junk=1).to_csv(copy, index=False)
    r = runner.invoke(app, ["ledger", "show", str(copy), "--ledger", str(led)])
    assert "no release of this source" in r.output and "--schema" in " ".join(r.output.split())
    r = runner.invoke(app, ["ledger", "show", str(copy), "--schema", str(schema), "--ledger",
                            str(led)])
    assert r.exit_code == 0 and "spent: epsilon 1, delta 0 in 1 release(s)" in r.output, r.output
    r = runner.invoke(app, ["ledger", "set-cap", str(copy), "--schema", str(schema),
                            "--epsilon", "3", "--ledger", str(led)])
    assert r.exit_code == 0, r.output
    (source,) = Ledger(led).summary()
    assert source.cap_epsilon == 3 and source.spent_epsilon == 1


@pytest.mark.shared_data
@pytest.mark.slow
def test_stroke_variants_are_one_source(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "tabular" / "stroke.csv"
    # the schema as the README asks it to be: the age top-coded at 90
    spec = json.loads((shared_data / "tabular" / "stroke.schema.json").read_text("utf-8"))
    spec["columns"]["age"].update(bounds=[0, 90], source={"top_code": 90})
    schema, led = tmp_path / "stroke.schema.json", tmp_path / "l.sqlite"
    schema.write_text(json.dumps(spec), "utf-8")
    assert _fit(src, schema, led, "1", tmp_path / "m.json").startswith("exit 0")
    raw = pd.read_csv(src, dtype=str, keep_default_na=False)
    variants = {
        "junk": raw.assign(junk="x"),
        "ages": raw.assign(age=[a + ".0" if a.isdigit() else a for a in raw["age"]]),
        "id": raw.assign(id=[str(int(i) + 7) for i in raw["id"]]),
    }
    for name, df in variants.items():
        path = tmp_path / f"{name}.csv"
        df.to_csv(path, index=False)
        out = _fit(path, schema, led, "0.5", tmp_path / f"{name}.json")
        assert out.startswith("exit 2") and "budget exhausted" in out, (name, out)
    assert len(Ledger(led).summary()) == 1
