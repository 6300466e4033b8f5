"""An input that yields no or too few patients says why in its one error.

A Bundle whose resourceType is misspelt loses every resource in it: the custodian is told.

The import names the place and the number of entries dropped with it, and when the cohort
is then too small to fit, the one error carries that line too (no release, and so no warning
line after it, follows).
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cohort_copy import edited_cohort
from fhirsynth.cli import app
from fhirsynth.ingest import read_input
from fhirsynth.ingest.features import load_feature_spec


def _cohort(tmp_path: Path, n: int) -> tuple[Path, int]:
    """The first n bundles, the first with its resourceType misspelt; and its entry count."""
    entries = []

    def edit(i: int, bundle: dict) -> None:
        if i == 0:
            bundle["resourceType"] = "Bundel"
            entries.append(len(bundle["entry"]))

    return edited_cohort(tmp_path / "in", n, edit), entries[0]


def test_misspelt_bundle_is_named_with_its_entries(tmp_path):
    src, entries = _cohort(tmp_path, 5)
    table, rep = read_input([src], load_feature_spec(None))
    assert len(table) == 4
    hit = [w for w in rep["warnings"] if "resourceType is not Bundle" in w]
    assert hit and f"{entries:,} entries, all dropped with it" in hit[0]
    assert "patient-000.json" in hit[0]


def test_too_small_cohort_error_carries_the_import_warning(tmp_path):
    src, entries = _cohort(tmp_path, 30)
    out = tmp_path / "rel"
    res = CliRunner().invoke(app, ["run", str(src), "--epsilon", "1", "--out", str(out),
                                   "--ledger", str(tmp_path / "l.sqlite")])
    assert res.exit_code != 0
    text = " ".join(res.output.split())
    assert "need at least 50 rows" in text
    assert f"{entries:,} entries, all dropped with it" in text
    assert not out.exists()


def test_header_only_csv_names_the_file(tmp_path):
    csv = tmp_path / "empty-cohort.csv"
    csv.write_text("age,sex\n", "utf-8")
    spec = tmp_path / "s.schema.json"
    spec.write_text(json.dumps({"name": "t", "columns": {
        "age": {"type": "numeric", "bounds": [0, 89], "integer": True},
        "sex": {"type": "categorical", "categories": ["f", "m"]}}}), "utf-8")
    res = CliRunner().invoke(app, ["run", str(csv), "--schema", str(spec), "--epsilon", "1",
                                   "--out", str(tmp_path / "rel"),
                                   "--ledger", str(tmp_path / "l.sqlite")])
    assert res.exit_code != 0
    assert "no patients found in empty-cohort.csv" in " ".join(res.output.split())
