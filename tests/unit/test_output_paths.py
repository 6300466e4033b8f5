"""--out under a regular file, or a regular file as a release folder: one clear error, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fhirsynth._atomic import check_output_path
from fhirsynth.cli import app
from fhirsynth.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "data" / "learn" / "case018.schema.json"
runner = CliRunner()


def _invoke(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    text = " ".join(result.output.split())  # rich wraps long messages
    assert "Traceback" not in text and "internal error" not in text, text
    return result.exit_code, text


@pytest.fixture
def afile(tmp_path: Path) -> Path:
    p = tmp_path / "afile"
    p.write_text("not a folder\n", encoding="utf-8")
    return p


def _run(tmp_path: Path, out: Path, *extra: str) -> tuple[int, str]:
    src = tmp_path / "input.csv"
    src.write_text("sex\nfemale\n", encoding="utf-8")
    return _invoke("run", src, "--spec", SCHEMA, "--epsilon", "1", "--out", out,
                   "--ledger", tmp_path / "ledger.sqlite", *extra)


def test_run_out_under_a_regular_file_names_the_file(tmp_path, afile):
    code, text = _run(tmp_path, afile / "sub")
    assert code == 2
    assert f"{afile} is a file, not a folder" in text
    assert not (tmp_path / "ledger.sqlite").exists()  # refused before any budget is charged


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_run_out_that_is_a_regular_file_is_not_an_earlier_release(tmp_path, afile, overwrite):
    code, text = _run(tmp_path, afile, *overwrite)
    assert code == 2
    assert "is a file, not an earlier release" in text and "afile" in text
    assert afile.read_text(encoding="utf-8") == "not a folder\n"


def test_sample_out_under_a_regular_file_names_the_file(tmp_path, afile):
    code, text = _invoke("sample", tmp_path / "model.json", "-n", "5",
                         "--out", afile / "s.csv")
    assert code == 2 and f"{afile} is a file, not a folder" in text


def test_sample_out_that_is_a_folder_is_refused(tmp_path):
    (tmp_path / "d.csv").mkdir()
    code, text = _invoke("sample", tmp_path / "model.json", "-n", "5", "--overwrite",
                         "--out", tmp_path / "d.csv")
    assert code == 2 and "is a folder; give a file name" in text


def test_report_out_under_a_regular_file_names_the_file(tmp_path, afile):
    code, text = _invoke("report", tmp_path / "model.json", tmp_path / "s.csv",
                         "--real", tmp_path / "input.csv", "--out", afile / "rep")
    assert code == 2 and f"{afile} is a file, not a folder" in text


def test_report_out_that_is_a_regular_file_is_refused(tmp_path, afile):
    code, text = _invoke("report", tmp_path / "model.json", tmp_path / "s.csv",
                         "--real", tmp_path / "input.csv", "--out", afile)
    assert code == 2 and "is a file, not an earlier release" in text


def test_audit_out_under_a_regular_file_is_refused_before_fitting(tmp_path, afile):
    code, text = _invoke("audit", tmp_path / "t.csv", "--spec", SCHEMA, "--epsilon", "1",
                         "--out", afile / "a.json")
    assert code == 2 and f"{afile} is a file, not a folder" in text


def test_sample_out_in_a_missing_folder_is_refused_and_not_created(tmp_path):
    # `sample -n 10 --out /nonexist/dir/x.csv` used to create /nonexist/dir
    missing = tmp_path / "nonexist" / "dir"
    code, text = _invoke("sample", tmp_path / "model.json", "-n", "10",
                         "--out", missing / "x.csv")
    assert code == 2 and f"the folder {missing} of --out does not exist" in text
    assert not (tmp_path / "nonexist").exists()


def test_audit_out_in_a_missing_folder_is_refused_before_fitting(tmp_path):
    code, text = _invoke("audit", tmp_path / "t.csv", "--spec", SCHEMA, "--epsilon", "1",
                         "--out", tmp_path / "nonexist" / "a.json")
    assert code == 2 and "of --out does not exist" in text


def test_check_output_path_file_needs_its_folder_and_folders_may_be_nested(tmp_path):
    with pytest.raises(ConfigError, match="the folder .*new.*deeper of --out does not exist"):
        check_output_path(tmp_path / "new" / "deeper" / "x.csv", kind="file")
    assert not (tmp_path / "new").exists()
    check_output_path(tmp_path / "x.csv", kind="file")
    check_output_path(tmp_path / "new" / "release", kind="folder")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        (tmp_path / "f").write_text("x")
        check_output_path(tmp_path / "f" / "a" / "b", kind="folder")


def test_run_refuses_rows_that_cannot_fit_before_reading_or_charging(tmp_path, monkeypatch):
    import fhirsynth._memory as memory

    monkeypatch.setattr(memory, "available_memory", lambda: 4 * 10**9)
    out = tmp_path / "rel"
    code, text = _run(tmp_path, out, "--rows", "100000000000")  # input.csv would not fit
    assert code == 2, text
    assert "--rows 100000000000 needs about" in text and "4 GB are available" in text
    assert "choose fewer --rows" in text
    assert not (tmp_path / "ledger.sqlite").exists() and not out.exists()
    # the pure check for the API: RunConfig.rows is refused by run_release too
    from fhirsynth.pipeline import RunConfig, run_release

    with pytest.raises(ConfigError, match="--rows 100000000000 needs about"):
        run_release(RunConfig(inputs=[tmp_path / "input.csv"], spec=SCHEMA, epsilon=1.0, out=out,
                              rows=100_000_000_000, ledger=tmp_path / "ledger.sqlite"))
