"""report.pdf's table of public domains says what a top- or bottom-coded column's extreme
value stands for, in the words of the release's README (a trial's report showed age
"[0, 90]" and a birth year "[1937, 2026]" where the README said "90 or older" and "1937 or
earlier")."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirsynth.domain import TableSpec
from fhirsynth.report.readme import release_readme
from fhirsynth.report.shareable import ShareableContext, shareable_story

SPEC = TableSpec.from_dict({"name": "s", "columns": {
    "age": {"type": "numeric", "bounds": [0, 90], "integer": True,
            "source": {"top_code": 90}},
    "birth_year": {"type": "numeric", "bounds": [1937, 2026], "integer": True,
                   "source": {"column": "date_of_birth", "transform": "year"}},
    "bmi": {"type": "numeric", "bounds": [10, 80]}}})


def _pdf_text(tmp_path: Path) -> str:
    from fhirsynth.report.pdf import build_pdf

    pypdf = pytest.importorskip("pypdf")
    bt = {"epsilon_total": 1.0, "delta_total": 0.0, "epsilon_spent": 1.0, "delta_spent": 0.0,
          "composition": "basic", "steps": [{"name": "table age", "epsilon": 1.0}]}
    ctx = ShareableContext(
        dataset="d", created="2026-01-01", run_id="r", version="0", budget_table=bt,
        spec=SPEC, synthetic_stats=[], synthetic_columns=["age", "birth_year", "bmi"],
        n_synthetic=10, safe_harbor={"passed": True, "findings": []}, software={}, hashes={},
        config={}, limitations="", model_summary={})
    pdf = build_pdf(tmp_path / "r.pdf", shareable_story(ctx), title="t", footer="f")
    return " ".join("\n".join(p.extract_text() for p in pypdf.PdfReader(str(pdf)).pages)
                    .split())


def test_the_report_states_top_and_bottom_codes_as_the_readme_does(tmp_path: Path) -> None:
    text = _pdf_text(tmp_path)
    readme = release_readme(spec=SPEC, dataset="d", run_id="r", created="2026-01-01",
                            version="0", budget_table={"epsilon_total": 1.0, "steps": []},
                            config={}, files=[], columns=["age", "birth_year", "bmi"])
    for words in ("90 means 90 or older (top-coded)",
                  "1937 means 1937 or earlier (bottom-coded: no birth year may imply an age "
                  "over 89)"):
        assert words in " ".join(readme.split())  # the README's own words ...
        assert words in text                       # ... in the report's public domains
    assert text.count("or older") == 1 and text.count("or earlier") == 1  # not for bmi
