"""The README's Python example runs as written (paths pointed at real files)."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

from fhirsynth.errors import LowUtilityWarning

ROOT = Path(__file__).resolve().parents[2]


def test_readme_python_example_runs(shared_data, tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has a Python example"
    shutil.copytree(ROOT / "fixtures" / "cohort", tmp_path / "fixtures" / "cohort")
    shutil.copy(shared_data / "tabular" / "stroke.csv", tmp_path / "stroke.csv")
    # the schema as the README asks it to be: the age top-coded at 90
    schema = json.loads((shared_data / "tabular" / "stroke.schema.json").read_text("utf-8"))
    schema["columns"]["age"].update(bounds=[0, 90], source={"top_code": 90})
    (tmp_path / "stroke.schema.json").write_text(json.dumps(schema), "utf-8")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no Safe Harbor warning on that schema
        # (the demo model's notes on its noise, and on the conditional sample, are expected)
        warnings.simplefilter("ignore", LowUtilityWarning)
        exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "demo-api" / "report.pdf").is_file()
    assert (tmp_path / "stroke-model.json").is_file()
    synthetic = namespace["synthetic"]
    assert len(synthetic) == 1000 and (synthetic["age"] >= 60).all()
    # the saved release model samples again and writes FHIR with its own spec's rules
    rows = namespace["rows"]
    assert len(rows) == 200 and "birth_year" in rows.columns
    assert {p.stem for p in (tmp_path / "demo-api-fhir").glob("*.ndjson")} >= {
        "Patient", "Condition", "Observation"}


def test_feature_spec_doc_example_runs(monkeypatch):
    # a trial found it used names it never defined
    text = (ROOT / "docs" / "feature-spec.md").read_text(encoding="utf-8")
    block = re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {}
    exec(compile(block, "feature-spec.md", "exec"), namespace)  # noqa: S102
    assert namespace["table"].shape[0] == namespace["import_report"]["patients"] > 0
