from typer.testing import CliRunner

from fhirsynth.cli import app


def test_columns_command_lists_classes(tmp_path):
    p = tmp_path / "p.csv"
    p.write_text("\ufeffId,SSN,ZIP,bmi\n1,999-00-0000,01028,22\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["columns", str(p)])
    assert result.exit_code == 0
    lines = [ln.split("\t")[:3] for ln in result.output.strip().splitlines()]
    assert lines == [["Id", "key", "regenerate"], ["SSN", "identifier", "omit"],
                     ["ZIP", "quasi_identifier", "zip3"], ["bmi", "feature", "model"]]
    assert "999-00-0000" not in result.output


def test_columns_command_missing_file(tmp_path):
    result = CliRunner().invoke(app, ["columns", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
