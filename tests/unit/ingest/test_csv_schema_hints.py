"""Schema mistakes name their fix (trial 22): a misspelt column name gets a "did you mean"
from the header (never a name that looks like a value), and a ZIP5 column the zip3 transform."""

from pathlib import Path

import pytest

from fhirsynth.domain import TableSpec
from fhirsynth.errors import SpecError, TableInputError
from fhirsynth.evaluate.safe_harbor_spec import check_spec_safe_harbor
from fhirsynth.ingest.csv import read_csv_table

SMOKING = {"type": "categorical", "domain": ["never", "former", "current"]}


def _csv(tmp_path: Path, header: str) -> Path:
    p = tmp_path / "t.csv"
    p.write_text(header + "\n" + ",".join(["never"] * len(header.split(","))) + "\n", "utf-8")
    return p


def test_a_misspelt_schema_column_gets_the_closest_header_name(tmp_path):
    spec = TableSpec.from_dict({"name": "t", "columns": {"smoking_stauts": SMOKING}})
    with pytest.raises(TableInputError) as err:
        read_csv_table(_csv(tmp_path, "sex,smoking_status"), spec)
    assert str(err.value).endswith("the header lacks schema column(s) ['smoking_stauts'] "
                                   "(did you mean 'smoking_status'?)")


def test_several_misspelt_columns_are_each_paired_with_their_header_name(tmp_path):
    spec = TableSpec.from_dict({"name": "t", "columns": {"smoking_stauts": SMOKING,
                                                         "diabetis": SMOKING}})
    with pytest.raises(TableInputError, match=r"did you mean 'diabetes' for 'diabetis', "
                       r"'smoking_status' for 'smoking_stauts'\?"):
        read_csv_table(_csv(tmp_path, "diabetes,smoking_status"), spec)


def test_a_header_name_that_looks_like_a_value_is_never_suggested(tmp_path):
    spec = TableSpec.from_dict({"name": "t", "columns": {"2024-03-05x": SMOKING}})
    with pytest.raises(TableInputError) as err:
        read_csv_table(_csv(tmp_path, "sex,2024-03-05"), spec)
    assert "did you mean" not in str(err.value)
    assert "'2024-03-05'" not in str(err.value)


def test_a_zip5_column_is_refused_naming_the_zip3_transform():
    spec = TableSpec.from_dict({"name": "t", "columns": {"zip_code": {
        "type": "categorical", "domain": ["02139", "60614"]}}})
    with pytest.raises(SpecError) as err:
        check_spec_safe_harbor(spec, "s.json")
    assert '"source": {"transform": "zip3"}' in str(err.value)
    assert "02139" not in str(err.value)
