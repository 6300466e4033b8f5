"""A resource type the spec reads but the input lacks entirely is named in one warning.

A trial ran a Bulk export without Observation files: bmi, blood pressure and cholesterol
were modelled from nothing, and the release held 416 Observations of pure noise, silently.
"""

from __future__ import annotations

from cohort_copy import edited_cohort
from fhirsynth.ingest import read_input
from fhirsynth.ingest.coverage import absent_type_warnings
from fhirsynth.ingest.features import column_types, load_feature_spec


def _drop(rtype: str):
    def edit(_: int, bundle: dict) -> None:
        bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != rtype]
    return edit


def _absent(report: dict) -> list[str]:
    return [w for w in report["warnings"] if w.startswith("the input holds no")]


def test_no_observations_in_the_input_names_the_type_and_its_columns(tmp_path) -> None:
    spec = load_feature_spec()
    table, report = read_input([edited_cohort(tmp_path / "c", 12, _drop("Observation"))],
                               spec)
    (line,) = _absent(report)
    assert line.startswith("the input holds no Observation resources, so 8 column(s)")
    assert "bmi" in line and "systolic_bp" in line and "--spec" in line
    assert table["bmi"].isna().all()


def test_a_complete_cohort_gets_no_such_warning(tmp_path) -> None:
    _, report = read_input([edited_cohort(tmp_path / "c", 12)], load_feature_spec())
    assert _absent(report) == []


def test_a_column_read_from_several_types_needs_all_of_them_absent() -> None:
    types = column_types(load_feature_spec())
    meds = [c for c, ts in types.items() if "MedicationRequest" in ts]
    assert meds and all(len(types[c]) > 1 for c in meds)
    # MedicationStatement alone keeps the medication columns fed
    assert not any(c in w for w in absent_type_warnings(types, {"MedicationStatement": 3})
                   for c in meds)
    (line,) = [w for w in absent_type_warnings({c: types[c] for c in meds}, {})]
    assert "Medication, MedicationRequest or MedicationStatement" in line
