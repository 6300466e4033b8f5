"""CLI: the global options read as flags in --help, and -v / -vv raise the log level."""

from __future__ import annotations

import logging

import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app

runner = CliRunner()


@pytest.fixture
def restore_logging():
    log = logging.getLogger("fhirsynth")
    level, handlers = log.level, list(log.handlers)
    yield log
    log.setLevel(level)
    log.handlers = handlers


def _option_line(output: str, option: str) -> str:
    lines = [ln for ln in output.splitlines() if option in ln]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize("width", [80, 140])
def test_help_shows_verbose_and_version_as_flags(width) -> None:
    r = runner.invoke(app, ["--help"], terminal_width=width, env={"COLUMNS": str(width)})
    assert r.exit_code == 0, r.output
    verbose = _option_line(r.output, "--verbose")
    assert "-v" in verbose.replace("--verbose", "")
    # no value placeholder (typer renders <int> / INTEGER for count options by default)
    for placeholder in ("<int>", "INTEGER", "<bool>", "default: 0"):
        assert placeholder not in verbose
    assert "<bool>" not in _option_line(r.output, "--version")


@pytest.mark.parametrize(("flags", "level"), [([], logging.WARNING), (["-v"], logging.INFO),
                                              (["-vv"], logging.DEBUG),
                                              (["-v", "--verbose"], logging.DEBUG)])
def test_verbose_counts(tmp_path, restore_logging, flags, level) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a,b\n1,2\n", encoding="utf-8")
    r = runner.invoke(app, [*flags, "columns", str(csv)])
    assert r.exit_code == 0, r.output
    assert restore_logging.level == level


def test_verbose_takes_no_value(tmp_path, restore_logging) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a,b\n1,2\n", encoding="utf-8")
    r = runner.invoke(app, ["-v", "2", "columns", str(csv)])
    assert r.exit_code == 2  # "2" is read as a command name, not as a value of -v


@pytest.mark.parametrize("command", [["fit"], ["ingest"], ["sample"], ["columns"], ["verify"]])
def test_help_paragraphs_wrap_at_the_terminal_not_at_the_source_lines(command) -> None:
    # the docstrings' own line breaks were kept and each line wrapped again, leaving
    # one-word lines ("cells", "`run`") in the middle of a paragraph
    r = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80", "TERM": "dumb"})
    assert r.exit_code == 0
    text = r.output.split("Usage:")[1].split("─")[0]
    lines = [ln.strip() for ln in text.splitlines()[1:] if ln.strip()]
    # every line of a wrapped paragraph but its last is nearly full
    for this, nxt in zip(lines, lines[1:], strict=False):
        if nxt and nxt[0].isalnum() and not nxt[0].isupper():  # a continuation line
            assert len(this) > 55, (this, nxt)
