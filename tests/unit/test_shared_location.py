"""FHIRSYNTH_SHARED locates the shared data; when it is absent the skip count is printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "tests" / "unit" / "test_domain.py"  # one test there takes shared_data


def _collect(shared: Path) -> str:
    env = {**os.environ, "FHIRSYNTH_SHARED": str(shared)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         str(PROBE)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_absent_shared_data_prints_how_many_tests_skip_and_why(tmp_path):
    out = _collect(tmp_path / "nowhere")
    lines = [ln for ln in out.splitlines() if "will skip" in ln]
    assert len(lines) == 1, out
    assert lines[0].startswith("fhirsynth: 1 test(s) will skip")
    assert str(tmp_path / "nowhere" / "data") in lines[0] and "FHIRSYNTH_SHARED" in lines[0]


def test_shared_folder_from_the_environment_is_used_and_nothing_is_printed(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "cases").mkdir()
    assert "will skip" not in _collect(tmp_path)
    # the probe test now reads the (empty) folder named by the variable: it fails there,
    # naming that folder, instead of reading ../shared or skipping
    env = {**os.environ, "FHIRSYNTH_SHARED": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k",
         "test_shared_schema_json_loads", str(PROBE)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout
    assert str(tmp_path / "data" / "tabular" / "stroke.schema.json") in done.stdout


def test_benchmarks_read_the_same_variable(tmp_path):
    code = "import benchmarks.data as d; print(d.SHARED_TABULAR); print(d.SHARED_SYNTHEA)"
    env = {**os.environ, "FHIRSYNTH_SHARED": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(tmp_path / "data" / "tabular"),
                                   str(tmp_path / "data" / "fhir" / "synthea-r4" / "bundles")]
