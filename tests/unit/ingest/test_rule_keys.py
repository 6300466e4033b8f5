"""A feature spec's ``source:`` rule refuses keys and values it does not know (QA trial 24):
a typo (``panel:``), an invented key (``onset_within:``) or an analyte without a conversion
(``analyte: creatinine``) loaded in silence and did nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirsynth.errors import SpecError
from fhirsynth.ingest.features import default_spec_path, load_feature_spec
from fhirsynth.ingest.rules import RULE_KEYS


def _spec(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "my-spec.yaml"
    path.write_text(f"""
name: keys
reference_date: "2025-01-01"
columns:
  - {{name: gender, type: categorical, categories: [female, male],
     source: {{from: patient, field: gender}}}}
  - {{name: col_x, type: numeric, bounds: [0, 100], nullable: true, source: {source}}}
""", "utf-8")
    return path


@pytest.mark.parametrize(("source", "said"), [
    ("{from: observation, loinc: [8480-6], panel: [85354-9], unit: 'mm[Hg]'}",
     "unknown key 'panel' in a 'from: observation' rule (did you mean 'panels'?); it takes "
     "analyte, comparator, default, factors, loinc, map, panels, unit, value"),
    ("{from: condition, snomed: [44054006], onset_within: 5}",
     "unknown key 'onset_within' in a 'from: condition' rule; it takes icd10cm, icd9cm, "
     "snomed"),
    ("{from: encounter, class: [AMB], year: 10}",
     "unknown key 'year' in a 'from: encounter' rule (did you mean 'years'?)"),
    ("{from: medication, rxnorm: [314076], stauts: active}",
     "unknown key 'stauts' in a 'from: medication' rule (did you mean 'status'?)"),
    ("{from: patient, field: age, top_cde: 90}",
     "unknown key 'top_cde' in a 'from: patient' rule (did you mean 'top_code'?)"),
    ("{from: observation, loinc: [2160-0], unit: mg/dL, analyte: creatinine}",
     "analyte 'creatinine' has no conversion; the analytes with one are cholesterol, hba1c; "
     "for another, declare its units' factors instead (`factors: {UNIT: multiplier}`)"),
    ("{from: observation, loinc: [2093-3], unit: mg/dL, analyte: cholestrol}",
     "analyte 'cholestrol' has no conversion (did you mean 'cholesterol'?)"),
    ("{from: obsrvation, loinc: [2093-3], unit: mg/dL}",
     "(did you mean 'observation'?)"),
    # the Safe Harbor pre-check's declaration is a key of any rule
    ("{from: encounter, class: [AMB], years: 10, not_a_birth_yaer: true}",
     "unknown key 'not_a_birth_yaer' in a 'from: encounter' rule (did you mean "
     "'not_a_birth_year'?)"),
])
def test_an_unknown_rule_key_or_value_is_one_error_naming_file_column_and_key(
        tmp_path, source, said):
    with pytest.raises(SpecError) as info:
        load_feature_spec(_spec(tmp_path, source))
    msg = str(info.value)
    assert msg.startswith(f"{tmp_path / 'my-spec.yaml'}: column 'col_x': source"), msg
    assert said in msg, msg


def test_every_key_the_shipped_spec_uses_is_known():
    import yaml

    spec = yaml.safe_load(default_spec_path().read_text("utf-8"))
    for col in spec["columns"]:
        source = dict(col["source"])
        kind = source.pop("from")
        assert set(source) <= RULE_KEYS[kind], col["name"]
    load_feature_spec(None)

