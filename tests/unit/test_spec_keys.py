"""Unknown keys in a spec (a typo such as ``nulable``) are one SpecError, never ignored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fhirsynth.domain import PLACEHOLDER_KEY, TableSpec, load_spec
from fhirsynth.errors import SpecError
from fhirsynth.ingest.features import default_spec_path
from fhirsynth.schema_skeleton import skeleton_schema

ROOT = Path(__file__).resolve().parents[2]


def _write_json(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "typo.schema.json"
    p.write_text(json.dumps(data), encoding="utf-8")
    return p


def test_misspelt_nullable_is_refused_naming_file_column_key_and_suggestion(tmp_path):
    p = _write_json(tmp_path, {"columns": {
        "sex": {"type": "categorical", "domain": ["f", "m"], "nulable": False}}})
    with pytest.raises(SpecError) as exc:
        load_spec(p)
    msg = str(exc.value)
    assert str(p) in msg and "column 'sex'" in msg
    assert "unknown key 'nulable'" in msg and "did you mean 'nullable'?" in msg


def test_bound_instead_of_bounds_names_the_key_not_the_missing_bounds(tmp_path):
    p = _write_json(tmp_path, {"columns": {
        "age": {"type": "numeric", "bound": [0, 120], "integer": True}}})
    with pytest.raises(SpecError) as exc:
        load_spec(p)
    msg = str(exc.value)
    assert "column 'age'" in msg and "unknown key 'bound'" in msg
    assert "did you mean 'bounds'?" in msg and "needs public bounds" not in msg


def test_yaml_list_form_typo_is_refused(tmp_path):
    p = tmp_path / "f.yaml"
    p.write_text(yaml.safe_dump({"name": "f", "columns": [
        {"name": "smoker", "type": "categorical", "catgories": ["never", "current"],
         "source": {"from": "patient", "field": "gender"}}]}), encoding="utf-8")
    with pytest.raises(SpecError, match=r"column 'smoker': unknown key 'catgories'.*"
                                        r"did you mean 'categories'\?"):
        load_spec(p)


def test_top_level_typo_is_refused(tmp_path):
    p = _write_json(tmp_path, {"traget": "y", "columns": {
        "y": {"type": "boolean"}}})
    with pytest.raises(SpecError, match=r"the top level: unknown key 'traget'.*"
                                        r"did you mean 'target'\?"):
        load_spec(p)


def test_unknown_key_without_close_match_lists_known_keys_and_counts_the_rest():
    with pytest.raises(SpecError) as exc:
        TableSpec.from_dict({"columns": {"x": {"type": "boolean", "zzz": 1, "qqq": 2}}},
                            origin="in.json")
    msg = str(exc.value)
    assert "unknown key 'zzz' (1 more unknown key(s) after it)" in msg
    assert "known keys:" in msg and "nullable" in msg


def test_opaque_source_keys_and_options_are_kept():
    spec = TableSpec.from_dict({
        "name": "s", "fold": "first", "structure": {"b": ["a"]}, "sensitive": ["b"],
        "columns": [
            {"name": "a", "type": "boolean", "source": {"from": "x", "anything": 1}},
            {"name": "b", "type": "boolean"}]})
    assert spec.options == {"fold": "first", "structure": {"b": ["a"]}, "sensitive": ["b"]}
    assert spec["a"].source == {"from": "x", "anything": 1}


def test_edited_skeleton_with_its_name_hint_left_in_loads():
    data = skeleton_schema(["sex", "mrn"], name="s")
    for entry in data["columns"].values():
        del entry[PLACEHOLDER_KEY]
    data["columns"]["sex"]["domain"] = ["f", "m"]
    data["columns"]["mrn"]["role"] = "identifier"
    spec = TableSpec.from_dict(data)
    assert spec.names == ["sex", "mrn"] and spec["mrn"].role == "identifier"


def test_to_dict_output_reloads_to_the_same_spec():
    spec = load_spec(default_spec_path())
    again = TableSpec.from_dict(spec.to_dict())
    assert again.fingerprint() == spec.fingerprint()


_SHIPPED = sorted(
    [default_spec_path()]
    + [p for p in (ROOT / "tests" / "data").rglob("*")
       if p.name.endswith((".schema.json", ".features.yaml"))]
    + [p for p in (ROOT / "fixtures").rglob("*") if p.name.endswith(".schema.json")])


@pytest.mark.parametrize("path", _SHIPPED, ids=lambda p: p.name)
def test_no_shipped_spec_uses_an_unknown_key(path):
    # a few test specs are refused on purpose (case 016: numeric without bounds)
    try:
        assert load_spec(path).columns
    except SpecError as exc:
        assert "unknown key" not in str(exc)
        assert "needs public bounds" in str(exc)


def test_shared_schemas_still_load(shared_data):
    paths = sorted(shared_data.rglob("*.schema.json"))
    assert paths
    for p in paths:
        assert load_spec(p).columns


def test_json_spec_with_a_raw_line_break_in_a_string_says_where_and_why(tmp_path):
    from fhirsynth.domain import load_spec
    from fhirsynth.errors import SpecError

    p = tmp_path / "broken.schema.json"
    p.write_text('{"name": "t", "note": "two\nlines", "columns": {}}', "utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(p)
    msg = str(info.value)
    assert "line 1 column 27: Invalid control character (a line break or tab" in msg
    assert not msg.endswith(" at")


def test_misspelt_columns_entry_is_named():
    from fhirsynth.domain import TableSpec
    from fhirsynth.errors import SpecError

    with pytest.raises(SpecError, match=r"needs a 'columns' entry \(found 'colums': a typo\?\)"):
        TableSpec.from_dict({"name": "t", "colums": {}})
    with pytest.raises(SpecError, match=r"needs a 'columns' entry$"):
        TableSpec.from_dict({"name": "t"})
