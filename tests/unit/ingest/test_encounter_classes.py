"""Encounter counts: v3 sub-codes of IMP count as inpatient, and counts that stay 0 because
the export's classes are local codes or its dates lie after the reference date are said."""

from __future__ import annotations

from pathlib import Path

from cohort_copy import edited_cohort, resources
from fhirsynth.ingest import read_input
from fhirsynth.ingest.features import load_feature_spec

V3 = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def _cohort(tmp_path: Path, cls: dict | None, n: int = 6, shift_years: int = 0) -> Path:
    def edit(_: int, bundle: dict) -> None:
        for r in resources(bundle, "Encounter"):
            if cls is not None:
                r["class"] = dict(cls)
            if shift_years:
                for k in ("start", "end"):
                    if k in r.get("period", {}):
                        y = int(r["period"][k][:4]) + shift_years
                        r["period"][k] = f"{y}{r['period'][k][4:]}"

    return edited_cohort(tmp_path / "in", n, edit)


def _encounter_warnings(rep: dict) -> list[str]:
    return [w for w in rep["warnings"] if w.startswith(("column encounters_",
                                                          "columns encounters_"))]


def test_acute_counts_as_inpatient(tmp_path):
    spec = load_feature_spec(None)
    base, _ = read_input([_cohort(tmp_path / "a", None)], spec)
    acute, rep = read_input([_cohort(tmp_path / "b", {"system": V3, "code": "ACUTE"})], spec)
    total = (base[["encounters_ambulatory_10y", "encounters_emergency_10y",
                   "encounters_inpatient_10y"]].sum().sum())
    assert total > 0
    assert int(acute["encounters_inpatient_10y"].sum()) == int(total)
    assert not _encounter_warnings(rep)


def test_local_classes_leave_counts_at_zero_and_say_so(tmp_path):
    spec = load_feature_spec(None)
    table, rep = read_input(
        [_cohort(tmp_path, {"system": "http://example.org/admission-class", "code": "EW EMER."})],
        spec)
    assert int(table["encounters_emergency_10y"].sum()) == 0
    # the three counts have the same issue and advice: one warning names them all
    [found] = _encounter_warnings(rep)
    assert found.startswith("columns encounters_ambulatory_10y, encounters_emergency_10y and "
                            "encounters_inpatient_10y are 0 for all 6 input patients")
    assert "local code system" in found and "noise alone" not in found


def test_encounters_after_the_reference_date_are_said(tmp_path):
    spec = load_feature_spec(None)
    table, rep = read_input([_cohort(tmp_path, None, shift_years=150)], spec)
    assert int(table["encounters_ambulatory_10y"].sum()) == 0
    found = _encounter_warnings(rep)
    assert found and all("dated after the spec's reference_date" in w for w in found)
