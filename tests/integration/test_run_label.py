"""A release label names the dataset in the release and the ledger (trial 8: every FHIR
release of the bundled spec was called fhir-default)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pypdf import PdfReader

from fhirsynth.errors import ConfigError
from fhirsynth.pipeline import RunConfig, run_release
from fhirsynth.privacy.ledger import Ledger
from fhirsynth.report import verify_release

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cohort"


def test_the_label_names_the_dataset_everywhere_and_verifies(tmp_path) -> None:
    res = run_release(RunConfig(inputs=[FIXTURES], out=tmp_path / "r", epsilon=1.0, seed=3,
                                ledger=tmp_path / "l.sqlite", label="North cohort, 2026"))
    audit = json.loads((res.out / "audit.json").read_text())
    assert audit["dataset"] == "North cohort, 2026" == audit["config"]["label"]
    model = json.loads((res.out / "model.json").read_text())
    assert model["spec"]["name"] == "North cohort, 2026"
    first = PdfReader(res.out / "report.pdf").pages[0].extract_text()
    assert "North cohort, 2026" in first
    assert verify_release(res.out).ok
    assert Ledger(tmp_path / "l.sqlite").summary()[0].label == "North cohort, 2026"


@pytest.mark.parametrize("label", ["", " ", "x" * 81, "ward 2026-01-05",
                                   "call 555-201-3344", "a@b.example", "MRN 12345678",
                                   "Boston 02134 cohort", "March 14, 2026 pull",
                                   "pulled 14th March"])
def test_a_label_that_is_empty_long_or_holds_an_identifier_is_refused(tmp_path, label) -> None:
    with pytest.raises(ConfigError, match="label") as err:
        RunConfig(inputs=[FIXTURES], out=tmp_path / "r", epsilon=1.0, label=label)
    if label.strip():
        assert label.strip() not in str(err.value)


@pytest.mark.parametrize("label,shown", [("North cohort 2026", "North cohort 2026"),
                                         ("Cohort 2020-2024", "Cohort 2020-2024"),
                                         ("Q3 2025 extract", "Q3 2025 extract"),
                                         ("line1\nline2", "line1 line2")])
def test_plain_labels_pass_on_one_line(tmp_path, label, shown) -> None:
    assert RunConfig(inputs=[FIXTURES], out=tmp_path / "r", epsilon=1.0,
                     label=label).label == shown
