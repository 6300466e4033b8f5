"""What the import dropped or clipped is said at default verbosity, without values.

FHIR: a Patient with an invalid birthDate (dropped with every resource of it) and a Condition
with an invalid code (dropped) give one warning line on the console naming counts and
resource types, and readable issue rows (place, resource type, field, reason) in
``internal/validation.pdf``.  CSV: values outside the schema's bounds are clipped and counted
per column (below / above; values above a declared top code count as top-coded, without a
warning); ``--strict`` refuses them naming the file, line and column.  A planted canary
never reaches the console or any output.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app

pypdf = pytest.importorskip("pypdf")

ROOT = Path(__file__).resolve().parents[2]
COHORT = ROOT / "fixtures" / "cohort"
CANARY = "QZCANARY7731"


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _pdf_text(path: Path) -> str:
    return _flat(" ".join(p.extract_text() or "" for p in pypdf.PdfReader(str(path)).pages))


def _texts(out: Path) -> dict[str, str]:
    """Every file of a release as text (PDFs as their extracted text)."""
    found = {}
    for p in sorted(out.rglob("*")):
        if p.is_file():
            found[p.relative_to(out).as_posix()] = (
                _pdf_text(p) if p.suffix == ".pdf"
                else pd.read_parquet(p).to_csv() if p.suffix == ".parquet"
                else p.read_bytes().decode("utf-8", "replace"))
    return found


def _load(path: Path) -> dict:
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)


@pytest.fixture(scope="module")
def broken_cohort(tmp_path_factory) -> tuple[Path, int]:
    """The fixture cohort with an invalid birthDate in the first Patient and an invalid code
    in one Condition of the second bundle, both holding the canary."""
    src = tmp_path_factory.mktemp("broken")
    lost = 0
    for i, path in enumerate(sorted(COHORT.iterdir())):
        bundle = _load(path)
        for entry in bundle["entry"]:
            res = entry["resource"]
            if i == 0 and res["resourceType"] == "Patient":
                res["birthDate"] = f"{CANARY}-01-01"
            elif i == 0:
                lost += 1
        if i == 1:
            cond = next(e["resource"] for e in bundle["entry"]
                        if e["resource"]["resourceType"] == "Condition")
            cond["code"] = {"coding": CANARY}
        (src / f"b{i:03d}.json").write_text(json.dumps(bundle), "utf-8")
    return src, lost


def test_run_warns_about_dropped_fhir_resources_without_values(broken_cohort, tmp_path):
    src, lost = broken_cohort
    out = tmp_path / "rel"
    result = CliRunner().invoke(app, ["run", str(src), "--epsilon", "1", "--out", str(out),
                                      "--ledger", str(tmp_path / "l.sqlite"), "--seed", "3"])
    assert result.exit_code == 0, result.output
    console = _flat(result.output)
    assert (f"warning: FHIR input: 2 resources dropped as invalid (1 Patient with its {lost} "
            "resources, 1 Condition)") in console
    assert "internal/validation.pdf" in console and "--strict" in console
    assert CANARY not in console
    texts = _texts(out)
    assert not [name for name, text in texts.items() if CANARY in text]
    internal = texts["internal/validation.pdf"]
    # readable rows, not a dict repr; the resource's type, not its id
    assert "place resource type field / column reason" in internal
    assert "file[0] entry[0] Patient birthDate not a FHIR date/dateTime" in internal
    assert re.search(r"file\[1\] entry\[\d+\] Condition code", internal)
    assert "{'where'" not in internal and "Patient/" not in internal
    assert "1 Patient with its" in internal
    stored = json.loads(texts["internal/evaluation.json"])["import_report"]
    assert sum(stored["dropped_with_patient"].values()) == lost
    assert not any("/" in i["resource"] for i in stored["issues"])
    # the shareable outputs say nothing about it
    for name in ("report.pdf", "audit.json"):
        assert "dropped as invalid" not in texts[name]


def test_ingest_warns_about_dropped_fhir_resources(broken_cohort, tmp_path):
    src, lost = broken_cohort
    result = CliRunner().invoke(app, ["ingest", str(src), "--out", str(tmp_path / "t.csv")])
    assert result.exit_code == 0, result.output
    console = _flat(result.output)
    assert (f"warning: FHIR input: 2 resources dropped as invalid (1 Patient with its {lost} "
            "resources, 1 Condition)") in console
    assert CANARY not in console and CANARY not in (tmp_path / "t.csv").read_text("utf-8")


# ------------------------------------------------------------------------------------ CSV
BELOW, ABOVE = "-7777", "987654.321"  # the canaries: values outside the bounds


def _stroke_like(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"age": rng.integers(20, 89, n).astype(str),
                       "avg_glucose_level": rng.uniform(60, 250, n).round(2).astype(str),
                       "sex": rng.choice(["f", "m"], n)})
    df.loc[3, "age"] = BELOW
    df.loc[7, "avg_glucose_level"] = ABOVE
    df.loc[[9, 11, 12], "age"] = ["97", "101", "95"]  # top-coded: expected, no warning
    df.to_csv(tmp_path / "stroke.csv", index=False)
    schema = {"name": "strokeish", "columns": {
        "age": {"type": "numeric", "bounds": [0, 90], "integer": True, "nullable": False,
                "source": {"top_code": 90}},
        "avg_glucose_level": {"type": "numeric", "bounds": [50, 300], "nullable": False},
        "sex": {"type": "categorical", "domain": ["f", "m"], "nullable": False}}}
    (tmp_path / "stroke.schema.json").write_text(json.dumps(schema), "utf-8")
    return tmp_path / "stroke.csv", tmp_path / "stroke.schema.json"


def _run(tmp_path: Path, *extra: str):
    data, schema = _stroke_like(tmp_path)
    return CliRunner().invoke(app, ["run", str(data), "--schema", str(schema), "--epsilon",
                                    "1", "--out", str(tmp_path / "rel"), "--ledger",
                                    str(tmp_path / "l.sqlite"), "--seed", "2", *extra])


def test_run_warns_about_clipped_csv_values_per_column(tmp_path):
    result = _run(tmp_path)
    assert result.exit_code == 0, result.output
    console = _flat(result.output)
    assert ("warning: stroke.csv: 2 value(s) outside the schema's bounds, clipped to them "
            "before any DP step (age 1 below [0, 90]; avg_glucose_level 1 above [50, 300])"
            ) in console
    assert "top-coded" not in console and "top_coded" not in console
    assert BELOW not in console and "987654" not in console
    out = tmp_path / "rel"
    texts = _texts(out)
    assert not [n for n, t in texts.items() if BELOW in t or "987654" in t]
    stored = json.loads(texts["internal/evaluation.json"])["import_report"]["out_of_bounds"]
    assert stored == {
        "age": {"bounds": [0, 90], "below": 1, "above": 0, "top_coded": 3, "bottom_coded": 0},
        "avg_glucose_level": {"bounds": [50, 300], "below": 0, "above": 1, "top_coded": 0,
                              "bottom_coded": 0}}
    internal = texts["internal/validation.pdf"]
    assert "Values outside the schema's bounds" in internal
    assert "age [0, 90] 1 0 3" in internal and "avg_glucose_level [50, 300] 0 1 0" in internal
    # the shareable outputs never carry the counts (case 016)
    for name in ("report.pdf", "audit.json"):
        assert "outside the schema's bounds" not in texts[name]


def test_strict_run_refuses_out_of_bounds_csv_values(tmp_path):
    result = _run(tmp_path, "--strict")
    assert result.exit_code == 2, result.output
    console = _flat(result.output)
    assert "stroke.csv line 5: age: value below the schema's bounds [0, 90]" in console
    assert "stroke.csv line 9: avg_glucose_level: value above the schema's bounds [50, 300]" \
        in console
    assert "line 11" not in console  # a top-coded age is not an error
    assert BELOW not in console and "987654" not in console
    assert not (tmp_path / "rel").exists() and not (tmp_path / "l.sqlite").exists()


def test_fit_warns_about_clipped_csv_values(tmp_path):
    data, schema = _stroke_like(tmp_path)
    result = CliRunner().invoke(app, ["fit", str(data), "--schema", str(schema), "--epsilon",
                                      "1", "--out", str(tmp_path / "m.json"), "--ledger",
                                      str(tmp_path / "l.sqlite"), "--seed", "1"])
    assert result.exit_code == 0, result.output
    console = _flat(result.output)
    assert "warning: stroke.csv: 2 value(s) outside the schema's bounds" in console
    assert BELOW not in console and "987654" not in console
