"""The spec's free text reaches the shareable files (README title and data dictionary,
report.pdf, audit.json, model.json), so it is held to the label's rules before anything
is read (red-team trial 17: a schema name with a name, MRN, date and phone number, and a
column description with a phone number and an e-mail address, were published)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhirsynth.errors import ConfigError, SpecError
from fhirsynth.pipeline import RunConfig, run_release

CANARIES = ("Zyxq", "00123456", "2024-03-05", "555-123-4567", "jane@zyxq.org")


def _schema(tmp_path: Path, name: str = "cohort", description: str = "",
            unit: str = "", file: str = "s.schema.json") -> Path:
    cols = {"age": {"type": "numeric", "bounds": [0, 89], "integer": True,
                    "nullable": False, "description": description, "unit": unit},
            "sex": {"type": "categorical", "domain": ["f", "m"], "nullable": False}}
    p = tmp_path / file
    p.write_text(json.dumps({"name": name, "columns": cols}))
    return p


def _run(tmp_path: Path, schema: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text("age,sex\n" + "".join(f"{20 + i % 50},{'fm'[i % 2]}\n" for i in range(200)))
    run_release(RunConfig(inputs=[data], out=tmp_path / "out", spec=schema, epsilon=1.0))


@pytest.mark.parametrize("kw,where", [
    ({"name": "stroke cohort John Zyxq MRN 00123456 2024-03-05 555-123-4567"},
     "the schema: its name"),
    ({"description": "call 555-123-4567, jane@zyxq.org"}, "column 'age': its description"),
    ({"unit": "a 2024-03-05"}, "column 'age': its unit"),
])
def test_identifying_spec_text_is_refused_before_anything_is_read(tmp_path, kw, where):
    schema = _schema(tmp_path, **kw)
    with pytest.raises(SpecError) as err:
        _run(tmp_path, schema)
    msg = str(err.value)
    assert where in msg and "looks like it holds an identifier" in msg
    assert "Nothing was read, written or charged" in msg
    assert not any(c in msg for c in CANARIES)
    assert not (tmp_path / "out").exists()


def test_an_identifying_schema_file_name_is_refused_without_quoting_it(tmp_path):
    schema = _schema(tmp_path, file="cohort-MRN-00123456.schema.json")
    with pytest.raises(ConfigError, match="schema's file name looks like it holds") as err:
        _run(tmp_path, schema)
    assert "00123456" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_plain_spec_text_passes(tmp_path):
    schema = _schema(tmp_path, name="North cohort 2026", description="Age in years, top 89",
                     unit="a")
    _run(tmp_path, schema)
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "North cohort 2026" in readme
