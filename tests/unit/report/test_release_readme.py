"""A release folder explains itself: README.md with the files, the guarantee, how to verify,
and a data dictionary, from public facts only (trial 12: a research partner given the folder
could not tell what each file was, nor how to check it)."""

from __future__ import annotations

import json

import pytest

from fhirsynth.domain import Column, TableSpec
from fhirsynth.ingest.features import load_feature_spec
from fhirsynth.report.readme import release_readme

BUDGET = {"epsilon_total": 1.0, "delta_total": 0.0, "epsilon_spent": 1.0, "delta_spent": 0.0,
          "steps": []}


def _readme(spec: TableSpec, columns: list[str], **kw) -> str:
    args = dict(spec=spec, dataset="Klinik", run_id="abc", created="2026-12-05",
                version="0.1.0", budget_table=BUDGET, config={},
                files=["synthetic/patients.csv", "model.json"], columns=columns)
    args.update(kw)
    return release_readme(**args)


def test_every_synthetic_column_has_a_line_with_its_public_domain_and_rule() -> None:
    spec = load_feature_spec()
    cols = [c.name for c in spec.columns if c.modelled or c.role == "derived"]
    text = _readme(spec, cols, files=["synthetic/patients.csv", "synthetic/fhir/Patient.ndjson",
                                      "synthetic/fhir/Condition.ndjson", "model.json"])
    rows = {line.split("|")[1].strip(" `"): line for line in text.splitlines()
            if line.startswith("| `") and not line.startswith("| `synthetic")}
    assert set(cols) <= set(rows)
    assert "0 to 90 years" in rows["age"] and "90 or older" in rows["age"]
    # every code of a condition rule, not their number
    assert all(code in rows["diabetes_type2"] for code in ("44054006", "E11", "25092"))
    assert "LOINC 39156-5" in rows["bmi"] and "kg/m²" in rows["bmi"]
    assert "(1, 0)-differential privacy" in text and "fhirsynth verify" in text
    assert "| `synthetic/fhir/` (2 files) |" in text and "internal/" in text
    assert "reference date 2026-01-01" in text
    assert "TEST RELEASE" not in text
    # trial 14: two decimals of a value drawn inside a 4.5-year bin suggest more than it holds
    assert "drawn inside the model's bins" in text and "`body_weight` bins of 10 kg" in text
    assert "`age` bins" not in text  # one state per year: its values are exact


def test_a_csv_schema_and_a_seeded_zcdp_release() -> None:
    spec = TableSpec(name="s", columns=(
        Column(name="id", role="key"),
        Column(name="stroke", categories=("0", "1"), nullable=False, role="target"),
        Column(name="born", kind="numeric", bounds=(1930, 2020), integer=True,
               source={"column": "BIRTHDATE", "transform": "year"}),
        Column(name="bmi", kind="numeric", bounds=(10, 80), unit="kg/m2", nullable=True,
               description="Body mass index")))
    budget = dict(BUDGET, delta_total=1e-9, rho_total=0.02)
    text = _readme(spec, ["id", "stroke", "born", "bmi"], budget_table=budget,
                   config={"reproducible_noise": True},
                   ledger_history={"releases": 3, "epsilon_spent_total": 2.5,
                                   "delta_spent_total": 3e-9})
    assert text.splitlines()[2].startswith("**TEST RELEASE, not for sharing")
    assert "(1, 1e-09)-differential privacy" in text
    assert "charged 3 releases in all" in text and "(2.5, 3e-09)" in text
    # a charge that ended without a release is spent all the same, and said so
    text = _readme(spec, ["id", "stroke", "born", "bmi"], budget_table=budget, config={},
                   ledger_history={"releases": 2, "charges": 3, "epsilon_spent_total": 2.5,
                                   "delta_spent_total": 0.0})
    assert ("charged 3 runs (2 releases; 1 ended without one, their budget spent all the "
            "same) in all") in " ".join(text.split())
    assert "fresh random UUID" in text
    assert "from the input column BIRTHDATE: the year of a date" in text
    assert "`0`, `1`" in text and "dtype=str" in text
    assert "Body mass index; may be missing" in text


@pytest.mark.filterwarnings("ignore::fhirsynth.errors.LowUtilityWarning")
def test_a_release_has_its_readme_hashed_and_verified(tmp_path) -> None:
    from pathlib import Path

    from fhirsynth.pipeline import RunConfig, run_release
    from fhirsynth.report import verify_release

    cohort = Path(__file__).resolve().parents[3] / "fixtures" / "cohort"
    res = run_release(RunConfig(inputs=[cohort], out=tmp_path / "o", epsilon=1.0,
                                ledger=tmp_path / "l.sqlite"))
    readme = res.out / "README.md"
    audit = json.loads((res.out / "audit.json").read_text(encoding="utf-8"))
    assert "README.md" in {o["path"] for o in audit["outputs"]}
    assert verify_release(res.out).ok
    text = readme.read_text(encoding="utf-8")
    for f in ("synthetic/patients.csv", "synthetic/patients.parquet", "model.json",
              "report.pdf", "audit.json"):
        assert f"`{f}`" in text
    readme.write_text(text.replace("(1, 0)", "(0.1, 0)"), encoding="utf-8")
    assert not verify_release(res.out).ok


@pytest.mark.filterwarnings("ignore::fhirsynth.errors.LowUtilityWarning")
def test_verify_partial_checks_the_files_a_partner_was_given(tmp_path) -> None:
    # trial 12: a partner given audit.json and the CSV alone was told TAMPERED
    import shutil
    from pathlib import Path

    from typer.testing import CliRunner

    from fhirsynth.cli import app
    from fhirsynth.pipeline import RunConfig, run_release

    cohort = Path(__file__).resolve().parents[3] / "fixtures" / "cohort"
    res = run_release(RunConfig(inputs=[cohort], out=tmp_path / "o", epsilon=1.0,
                                ledger=tmp_path / "l.sqlite", fhir=False))
    part = tmp_path / "part"
    (part / "synthetic").mkdir(parents=True)
    shutil.copy(res.out / "audit.json", part)
    shutil.copy(res.out / "synthetic" / "patients.csv", part / "synthetic")
    runner = CliRunner()
    r = runner.invoke(app, ["verify", str(part)])
    assert r.exit_code == 1 and "verify --partial" in r.output
    r = runner.invoke(app, ["verify", "--partial", str(part)])
    assert r.exit_code == 0, r.output
    assert "intact: 1 file(s) match audit.json" in r.output
    assert "not given (--partial, not checked): model.json" in r.output
    csv = part / "synthetic" / "patients.csv"
    csv.write_text(csv.read_text(encoding="utf-8").replace("\n", "\r\n", 1), encoding="utf-8")
    r = runner.invoke(app, ["verify", "--partial", str(part)])
    assert r.exit_code == 1 and "changed: synthetic/patients.csv" in r.output


def test_verify_partial_with_no_listed_file_is_not_intact(tmp_path) -> None:
    # trial 13: a folder holding audit.json alone said "intact: 0 file(s)"
    import shutil
    from pathlib import Path

    from fhirsynth.pipeline import RunConfig, run_release
    from fhirsynth.report import verify_release

    cohort = Path(__file__).resolve().parents[3] / "fixtures" / "cohort"
    res = run_release(RunConfig(inputs=[cohort], out=tmp_path / "o", epsilon=1.0,
                                ledger=tmp_path / "l.sqlite", fhir=False))
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(res.out / "audit.json", alone)
    result = verify_release(alone, partial=True)
    assert not result.ok and result.checked == 0 and "model.json" in result.missing


def test_a_csv_schema_s_transforms_top_code_and_key_are_explained() -> None:
    # trial 13: the top-coded age, the zip3 and year columns read "-", the key "may be missing"
    spec = TableSpec.from_dict({"name": "s", "columns": {
        "patient_id": {"role": "key"},
        "age": {"type": "numeric", "bounds": [0, 90], "integer": True,
                "source": {"top_code": 90}},
        "zip": {"type": "categorical", "domain": ["021", "100"], "other": True,
                "source": {"transform": "zip3"}},
        "visit_year": {"type": "numeric", "bounds": [2000, 2026], "integer": True,
                       "source": {"column": "visit_date", "transform": "year"}}}})
    text = _readme(spec, ["patient_id", "age", "zip", "visit_year"])
    rows = {line.split("|")[1].strip(" `"): line for line in text.splitlines()
            if line.startswith("| `")}
    assert "text: a UUID" in rows["patient_id"] and "may be missing" not in rows["patient_id"]
    assert "90 means 90 or older" in rows["age"]
    assert "input column zip: the first three digits of a ZIP code" in rows["zip"]
    assert "the year of a date" in rows["visit_year"] and "visit_date" in rows["visit_year"]
