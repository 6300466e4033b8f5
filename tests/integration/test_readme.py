"""The README's Python example runs as written (paths pointed at real files)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_python_example_runs(shared_data, tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has a Python example"
    shutil.copytree(ROOT / "fixtures" / "cohort", tmp_path / "fixtures" / "cohort")
    for name in ("stroke.csv", "stroke.schema.json"):
        shutil.copy(shared_data / "tabular" / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "demo-api" / "report.pdf").is_file()
    assert (tmp_path / "stroke-model.json").is_file()
    synthetic = namespace["synthetic"]
    assert len(synthetic) == 1000 and (synthetic["age"] >= 60).all()
