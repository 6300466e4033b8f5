"""The report's "mostly noise" flag of a mostly missing column reads the noisy count of an
average non-missing state (a trial's HbA1c, 70 % missing, was read as if every patient had
a value, so the flag stayed off while its values were mostly noise)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirsynth.domain import MISSING, OTHER, Column, TableSpec
from fhirsynth.report.shareable import ShareableContext, shareable_story


def _report_text(tmp_path: Path, missing_share: float) -> str:
    from fhirsynth.report.pdf import build_pdf

    pypdf = pytest.importorskip("pypdf")
    hba1c = Column(name="hba1c", kind="numeric", bounds=(4, 14), bins=5, nullable=True)
    sex = Column(name="sex", categories=("f", "m"))
    assert hba1c.n_states == 6  # five bins and the missing state
    spec = TableSpec(name="s", columns=(sex, hba1c))
    bt = {"epsilon_total": 0.6, "delta_total": 0.0, "epsilon_spent": 0.6, "delta_spent": 0.0,
          "composition": "basic", "steps": [
              {"name": "table sex", "epsilon": 0.3, "mechanism": "Laplace"},
              {"name": "table hba1c", "epsilon": 0.3, "mechanism": "Laplace"}]}
    filled = (1 - missing_share) / 5
    released = [
        {"columns": ["sex"], "states": ["f", "m", OTHER, MISSING], "values": [.5, .5, 0, 0]},
        {"columns": ["hba1c"], "states": ["a", "b", "c", "d", "e", OTHER, MISSING],
         "values": [filled] * 5 + [0.0, missing_share]}]
    ctx = ShareableContext(
        dataset="d", created="2026-01-01", run_id="r", version="0", budget_table=bt,
        spec=spec, synthetic_stats=[], synthetic_columns=["sex", "hba1c"], n_synthetic=10,
        safe_harbor={"passed": True, "findings": []}, software={}, hashes={}, config={},
        limitations="", model_summary={"n_patients_noisy": 60, "released_marginals": released})
    pdf = build_pdf(tmp_path / "r.pdf", shareable_story(ctx), title="t", footer="f")
    return " ".join("\n".join(p.extract_text() for p in pypdf.PdfReader(str(pdf)).pages)
                    .split())


def test_a_mostly_missing_column_is_read_against_its_filled_share(tmp_path: Path) -> None:
    # noise sd sqrt(2) / 0.3 = 4.7 patients; 60 noisy patients, 70 % of them missing:
    # an average non-missing state holds 60 x 0.3 / 5 = 3.6 patients, under the noise
    # (read as if filled, 60 / 6 = 10, it was not flagged)
    text = _report_text(tmp_path, 0.7)
    assert "hba1c 4.7 7.9 % mostly noise" in text
    assert "sex 4.7 7.9 % —" in text
    assert "released (noisy) missing share" in text
    # the same column 10 % missing: 60 x 0.9 / 5 = 10.8 patients per non-missing state,
    # above the noise, so not flagged
    (tmp_path / "filled").mkdir()
    assert "hba1c 4.7 7.9 % —" in _report_text(tmp_path / "filled", 0.1)
