"""Consistency checks of a FHIR feature spec when it loads."""

from __future__ import annotations

import pytest
import yaml

from fhirsynth.errors import SpecError
from fhirsynth.ingest.features import default_spec_path, load_feature_spec


def test_moving_reference_date_without_birth_year_bounds_is_refused(tmp_path) -> None:
    raw = yaml.safe_load(default_spec_path().read_text(encoding="utf-8"))
    raw["reference_date"] = "2210-01-01"  # as a MIMIC user might try
    path = tmp_path / "moved.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(SpecError, match=r"moved\.yaml.*birth_year.*\[2121, 2210\]"):
        load_feature_spec(path)
    for col in raw["columns"]:
        if col["name"] == "birth_year":
            col["bounds"] = [2121, 2210]
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert load_feature_spec(path).reference_date is not None
