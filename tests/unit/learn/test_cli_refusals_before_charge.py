"""fit, run and sample: what the spec alone rules out is refused before anything is charged,
and a sample whose model allows Safe Harbor findings says so (a second new user's trial)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.domain import TableSpec
from fhirsynth.synthesizer import Synthesizer

runner = CliRunner()
FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "cohort"


def _table(tmp_path: Path, age_bounds: list[float], top_code: float | None = None):
    rng = np.random.default_rng(0)
    n = 300
    pd.DataFrame({"age": rng.uniform(0, 99, n).round(1), "sex": rng.choice(["f", "m"], n),
                  "smoker": rng.choice(["no", "yes"], n)}).to_csv(tmp_path / "t.csv",
                                                                   index=False)
    age: dict = {"type": "numeric", "bounds": age_bounds, "nullable": False}
    if top_code is not None:
        age["source"] = {"top_code": top_code}
    schema = {"name": "cohort", "columns": {
        "age": age, "sex": {"type": "categorical", "domain": ["f", "m"], "nullable": False},
        "smoker": {"type": "categorical", "domain": ["no", "yes"], "nullable": False}}}
    (tmp_path / "t.schema.json").write_text(json.dumps(schema))
    return tmp_path / "t.csv", tmp_path / "t.schema.json"


def test_a_degree_too_large_for_the_spec_is_refused_before_the_charge(tmp_path) -> None:
    # it was found only inside the fit, after the ledger had been charged (and capped)
    data, schema = _table(tmp_path, [0, 90], top_code=90)
    led = tmp_path / "l.sqlite"
    r = runner.invoke(app, ["fit", str(data), "--schema", str(schema), "--epsilon", "1",
                            "--degree", "9", "--out", str(tmp_path / "m.json"),
                            "--ledger", str(led)])
    assert r.exit_code == 2 and "degree (9) must be at most" in r.output
    assert not led.exists() and not (tmp_path / "m.json").exists()
    r = runner.invoke(app, ["run", str(FIXTURES), "--epsilon", "1", "--degree", "99",
                            "--out", str(tmp_path / "rel"), "--ledger", str(led)])
    assert r.exit_code == 2 and "degree (99) must be at most" in r.output
    assert not led.exists() and not (tmp_path / "rel").exists()


def test_fit_refuses_a_schema_whose_samples_could_not_be_shared(tmp_path) -> None:
    data, schema = _table(tmp_path, [0, 100])
    led = tmp_path / "l.sqlite"
    r = runner.invoke(app, ["fit", str(data), "--schema", str(schema), "--epsilon", "1",
                            "--out", str(tmp_path / "m.json"), "--ledger", str(led)])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "column 'age'" in text and "top_code" in text
    assert not led.exists() and not (tmp_path / "m.json").exists()


def test_sample_warns_when_its_model_allows_ages_above_89(tmp_path) -> None:
    # a model fitted through the Python API with such a spec: sample scans what it wrote
    data, schema = _table(tmp_path, [0, 100])
    spec = TableSpec.from_dict(json.loads(schema.read_text()))
    Synthesizer(spec, epsilon=5, random_state=1).fit(pd.read_csv(data)).save(tmp_path / "m.json")
    r = runner.invoke(app, ["sample", str(tmp_path / "m.json"), "-n", "400", "--where",
                            "age>=92", "--out", str(tmp_path / "s.csv"), "--seed", "2"])
    text = " ".join(r.output.split())
    assert r.exit_code == 0, text
    assert "Safe Harbor scan of the output failed" in text and "column age" in text
    assert "do not share this table" in text


def test_sample_of_a_top_coded_age_passes_the_scan(tmp_path) -> None:
    data, schema = _table(tmp_path, [0, 90], top_code=90)
    led = tmp_path / "l.sqlite"
    assert runner.invoke(app, ["fit", str(data), "--schema", str(schema), "--epsilon", "5",
                               "--out", str(tmp_path / "m.json"), "--ledger", str(led),
                               "--seed", "1"]).exit_code == 0
    r = runner.invoke(app, ["sample", str(tmp_path / "m.json"), "-n", "400", "--where",
                            "age>=85", "--out", str(tmp_path / "s.csv"), "--seed", "2"])
    assert r.exit_code == 0 and "Safe Harbor" not in r.output, r.output
    assert pd.read_csv(tmp_path / "s.csv")["age"].max() <= 90  # 90 stands for "90 or older"


def test_the_python_api_warns_about_such_a_spec(tmp_path) -> None:
    import pytest

    _, schema = _table(tmp_path, [0, 100])
    spec = TableSpec.from_dict(json.loads(schema.read_text()))
    with pytest.warns(UserWarning, match="could fail the Safe Harbor scan: column 'age'"):
        Synthesizer(spec, epsilon=1)


def test_sample_of_an_older_model_does_not_flag_its_top_code(tmp_path) -> None:
    # a model.json saved before the top codes were kept: 90 still means "90 or older"
    data, schema = _table(tmp_path, [0, 90], top_code=90)
    assert runner.invoke(app, ["fit", str(data), "--schema", str(schema), "--epsilon", "5",
                               "--out", str(tmp_path / "m.json"), "--ledger",
                               str(tmp_path / "l.sqlite"), "--seed", "1"]).exit_code == 0
    blob = json.loads((tmp_path / "m.json").read_text())
    blob.pop("output")
    (tmp_path / "old.json").write_text(json.dumps(blob))
    df = pd.DataFrame({"age": [90.0, 45.0], "sex": ["f", "m"], "smoker": ["no", "no"]})
    from fhirsynth.cli.learn import _scan_sample
    from fhirsynth.model import FittedModel

    assert _scan_sample(FittedModel.from_json(tmp_path / "old.json"), df, "s.csv") == []
    df.loc[0, "age"] = 95.0  # above the top code: a finding
    assert _scan_sample(FittedModel.from_json(tmp_path / "old.json"), df, "s.csv")


def test_sample_flags_the_year_of_a_birth_date_under_its_own_name(tmp_path) -> None:
    # a trial's BIRTHDATE (the `year` of a birth date, bounds [1900, 2026]) passed the scan
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"BIRTHDATE": rng.integers(1900, 2020, 300),
                       "sex": rng.choice(["f", "m"], 300)})
    spec = TableSpec.from_dict({"name": "t", "columns": {
        "BIRTHDATE": {"type": "numeric", "integer": True, "bounds": [1900, 2026],
                      "nullable": False, "source": {"transform": "year"}},
        "sex": {"type": "categorical", "domain": ["f", "m"], "nullable": False}}})
    import pytest

    with pytest.warns(UserWarning, match="column 'BIRTHDATE'.*implies an age over 89"):
        synth = Synthesizer(spec, epsilon=5, random_state=1)
    synth.fit(df).save(tmp_path / "m.json")
    r = runner.invoke(app, ["sample", str(tmp_path / "m.json"), "-n", "200", "--where",
                            "BIRTHDATE<=1920", "--out", str(tmp_path / "s.csv"), "--seed", "2"])
    text = " ".join(r.output.split())
    assert r.exit_code == 0, text
    assert "Safe Harbor scan of the output failed" in text and "column BIRTHDATE" in text
    assert "birth year implies age > 89" in text and "do not share this table" in text


def test_sample_of_a_model_older_than_its_birth_year_list(tmp_path) -> None:
    # a model.json written before `output.birth_years` keeps no source rule: the year of
    # BIRTHDATE is still told by its name; the year of a birth date under another name is not,
    # and sample says that the check could not be applied to it (no value quoted)
    import pytest

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"BIRTHDATE": rng.integers(1900, 2020, 300),
                       "yr": rng.integers(1900, 2020, 300),
                       "admitted": rng.integers(1990, 2020, 300),
                       "sex": rng.choice(["f", "m"], 300)})
    year = {"type": "numeric", "integer": True, "bounds": [1900, 2026], "nullable": False}
    spec = TableSpec.from_dict({"name": "t", "columns": {
        "BIRTHDATE": {**year, "source": {"transform": "year"}},
        "yr": {**year, "source": {"column": "DATEOFBIRTH", "transform": "year"}},
        "admitted": {**year, "bounds": [1990, 2026]},  # no year of it implies an age over 89
        "sex": {"type": "categorical", "domain": ["f", "m"], "nullable": False}}})
    with pytest.warns(UserWarning, match="could fail the Safe Harbor scan"):
        synth = Synthesizer(spec, epsilon=5, random_state=1)
    synth.fit(df).save(tmp_path / "m.json")
    blob = json.loads((tmp_path / "m.json").read_text())
    assert blob["output"]["birth_years"] == ["BIRTHDATE", "yr"]
    del blob["output"]["birth_years"]
    (tmp_path / "old.json").write_text(json.dumps(blob))
    r = runner.invoke(app, ["sample", str(tmp_path / "old.json"), "-n", "200", "--where",
                            "BIRTHDATE<=1920", "--out", str(tmp_path / "s.csv"), "--seed", "2"])
    text = " ".join(r.output.split())
    assert r.exit_code == 0, text
    assert "column BIRTHDATE; rule: birth year implies age > 89" in text
    assert "do not share this table" in text
    # the scan of the written rows speaks; not the load's warning on the spec too (trial 25)
    assert "could fail the Safe Harbor scan" not in text
    assert "birth-year check could not be applied to column 'yr'" in text
    assert "'admitted'" not in text and "column admitted" not in text
    said = text[text.index("could not be applied to column 'yr'"):text.index("must not be shared")]
    # calendar facts only: the earliest birth year allowed this year, and the age limit
    assert re.findall(r"\d+", said) == [str(dt.date.today().year - 89), "89"]
    # the same model with its list: no such warning
    r = runner.invoke(app, ["sample", str(tmp_path / "m.json"), "-n", "50", "--out",
                            str(tmp_path / "s2.csv"), "--seed", "2"])
    assert r.exit_code == 0 and "could not be applied" not in r.output, r.output

