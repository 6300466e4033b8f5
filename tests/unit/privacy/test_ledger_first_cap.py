"""A first release that sets its source's cap says so, and how to raise it (a trial's first
run at epsilon 0.001 set the cap to 0.001 in silence, and every later release was refused).
The semantics are unchanged: the first release's budget still becomes the cap."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.errors import BudgetExhaustedError
from fhirsynth.privacy.budget import PrivacyBudget
from fhirsynth.privacy.ledger import Ledger, first_cap_note

runner = CliRunner()
FP = "b" * 64


def test_only_the_charge_that_sets_the_cap_has_the_note(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    first = led.charge(FP, PrivacyBudget(epsilon=0.001), run_id="r1")
    note = first_cap_note(first, tmp_path / "l.sqlite")
    assert note is not None and "(epsilon 0.001, delta 0) is now its cap" in note
    assert "fhirsynth ledger set-cap INPUT --epsilon E" in note
    assert FP[:8] not in note  # the fingerprint is a membership test: never on a console
    assert f"--ledger {tmp_path / 'l.sqlite'}" in note
    assert led.summary(FP)[0].cap_epsilon == 0.001  # the semantics stay
    with pytest.raises(BudgetExhaustedError, match="fhirsynth ledger set-cap"):
        led.charge(FP, PrivacyBudget(epsilon=0.001), run_id="r2")
    led.set_cap(FP, 1.0)
    assert first_cap_note(led.charge(FP, PrivacyBudget(epsilon=0.5), run_id="r3")) is None
    # a custodian's cap set before the first release: no note either
    other = "c" * 64
    led.set_cap(other, 1.0)
    assert first_cap_note(led.charge(other, PrivacyBudget(epsilon=0.5), run_id="r4")) is None


def _table(tmp_path: Path) -> tuple[Path, Path]:
    rng = __import__("random").Random(7)
    data = tmp_path / "t.csv"
    data.write_text("sex,smoker\n" + "".join(
        f"{'FM'[rng.randrange(2)]},{'yn'[rng.randrange(2)]}\n" for _ in range(80)),
        encoding="utf-8")
    schema = tmp_path / "t.schema.json"
    schema.write_text(json.dumps({"name": "t", "columns": {
        "sex": {"type": "categorical", "domain": ["F", "M"], "nullable": False},
        "smoker": {"type": "categorical", "domain": ["y", "n"], "nullable": False}}}))
    return data, schema


@pytest.mark.filterwarnings("ignore::fhirsynth.errors.LowUtilityWarning")
def test_fit_and_run_say_the_first_release_set_the_cap(tmp_path: Path) -> None:
    data, schema = _table(tmp_path)
    ledger = tmp_path / "l.sqlite"
    fit = ["fit", str(data), "--schema", str(schema), "--ledger", str(ledger)]
    r = runner.invoke(app, [*fit, "--epsilon", "0.001", "--out", str(tmp_path / "m.json")])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert said.count("is now its cap") == 1
    assert "(epsilon 0.001, delta 0) is now its cap: a further release of the same data " \
           "will be refused" in said
    command = re.search(r"fhirsynth ledger set-cap (INPUT) --epsilon E \[--delta D\] "
                        r"--ledger (\S+)", said)
    assert command is not None and command.group(2) == str(ledger)
    # the refusal at the cap names set-cap too
    r = runner.invoke(app, [*fit, "--epsilon", "0.5", "--out", str(tmp_path / "m2.json")])
    assert r.exit_code != 0 and "fhirsynth ledger set-cap" in " ".join(r.output.split())
    # the command the note gives raises the cap; the next fit says nothing of a cap
    r = runner.invoke(app, ["ledger", "set-cap", str(data), "--epsilon", "2",
                            "--ledger", str(ledger)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*fit, "--epsilon", "0.5", "--out", str(tmp_path / "m2.json")])
    assert r.exit_code == 0 and "is now its cap" not in r.output, r.output
    # run: a new source (another ledger), the note once, in the console only
    r = runner.invoke(app, ["run", str(data), "--schema", str(schema), "--epsilon", "0.001",
                            "--out", str(tmp_path / "o"), "--ledger", str(tmp_path / "r.sqlite"),
                            "--holdout", "0"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert said.count("note: the ledger had no cap for this source") == 1
    assert "fhirsynth ledger set-cap" in said and str(tmp_path / "r.sqlite") in said
