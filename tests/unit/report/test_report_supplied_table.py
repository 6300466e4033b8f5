"""``fhirsynth report`` refuses a "synthetic" table the model did not make (trial 26).

A red team gave ``report`` the real rows as the synthetic table and got a release-shaped
folder: "Synthetic patients · 5108 rows", a Safe Harbor pass, and ``verify --shareable``
said "shareable".
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.domain import TableSpec
from fhirsynth.errors import InputError
from fhirsynth.model import FittedModel
from fhirsynth.report.supplied import check_model_could_produce, check_not_copied, copy_share
from fhirsynth.synthesizer import Synthesizer

runner = CliRunner()

SCHEMA = {"name": "strokeish", "columns": {
    "sex": {"type": "categorical", "domain": ["f", "m"], "nullable": False},
    "smoker": {"type": "categorical", "domain": ["never", "former", "current"],
               "nullable": False},
    "age": {"type": "numeric", "bounds": [18, 89], "integer": True, "nullable": False},
    "bmi": {"type": "numeric", "bounds": [10, 60], "nullable": False},
    "stroke": {"type": "categorical", "domain": ["0", "1"], "nullable": False}}}
SECRET = "Zelda Quux"  # a value no message may quote


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("supplied")
    rng = np.random.default_rng(0)
    n = 1500
    real = pd.DataFrame({"sex": rng.choice(["f", "m"], n),
                         "smoker": rng.choice(["never", "former", "current"], n),
                         "age": rng.integers(18, 90, n),
                         "bmi": np.round(np.clip(rng.normal(27, 5, n), 10, 60), 1),
                         "stroke": rng.choice(["0", "1"], n, p=[0.95, 0.05])})
    real.to_csv(tmp / "real.csv", index=False)
    (tmp / "s.schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    synth = Synthesizer(TableSpec.from_dict(SCHEMA), epsilon=1.0)  # OS noise: not a test model
    synth.fit(pd.read_csv(tmp / "real.csv", dtype=str))
    synth.save(tmp / "model.json")
    synth.sample(n, random_state=2).to_csv(tmp / "genuine.csv", index=False)
    return tmp


def _report(tmp: Path, synthetic: Path, out: Path) -> tuple[int, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the model is not in a release folder: said once
        result = runner.invoke(app, ["report", str(tmp / "model.json"), str(synthetic),
                                     "--real", str(tmp / "real.csv"), "--schema",
                                     str(tmp / "s.schema.json"), "--out", str(out)])
    text = " ".join(result.output.split())
    assert "Traceback" not in text and "internal error" not in text, text
    return result.exit_code, text


def test_values_the_model_cannot_produce_are_refused_by_column_and_count(tables, tmp_path):
    bad = pd.read_csv(tables / "genuine.csv", dtype=str)
    bad.loc[:6, "smoker"] = SECRET            # 7 rows outside the category list
    bad.loc[10:12, "age"] = "97"              # 3 numbers above the bounds
    bad.loc[20:21, "sex"] = ""                # 2 missing, the column is not nullable
    bad.loc[30, "bmi"] = "27.5.1"             # 1 not a number
    bad.loc[40, "age"] = "40.5"               # 1 not whole in an integer column
    bad.to_csv(tmp_path / "bad.csv", index=False)
    code, text = _report(tables, tmp_path / "bad.csv", tmp_path / "rep")
    assert code == 2, text
    assert "bad.csv: not a sample of this model" in text
    assert "column 'smoker': 7 value(s) outside its category list (3 categories)" in text
    assert "column 'age': 3 number(s) outside its bounds [18, 89], 1 number(s) that are " \
        "not whole" in text
    assert "column 'sex': 2 missing value(s) (the column is not nullable)" in text
    assert "column 'bmi': 1 value(s) that are not finite numbers" in text
    assert SECRET not in text and "97" not in text and "27.5.1" not in text
    assert not (tmp_path / "rep").exists()


def test_the_check_accepts_every_state_a_sample_can_hold():
    spec = TableSpec.from_dict({"name": "x", "columns": {
        "c": {"type": "categorical", "domain": ["a", "b"], "other": True},
        "n": {"type": "numeric", "bounds": [0, 5]},
        "b": {"type": "boolean", "nullable": False}}})
    ok = pd.DataFrame({"c": ["a", "other", ""], "n": ["0", "5", ""],
                       "b": ["True", "false", "1"]})
    check_model_could_produce(spec, ok, "t.csv")
    with pytest.raises(InputError, match=r"column 'c': 1 value\(s\) outside its category list "
                                         r"\(2 categories and other\)"):
        check_model_could_produce(spec, ok.assign(c=["a", "b", "c"]), "t.csv")
    with pytest.raises(InputError, match=r"column 'b': 1 value\(s\) that are not true/false"):
        check_model_could_produce(spec, ok.assign(b=["true", "maybe", "0"]), "t.csv")


def test_the_real_rows_and_a_shuffled_copy_are_refused_and_a_genuine_sample_passes(tables,
                                                                                   tmp_path):
    real = pd.read_csv(tables / "real.csv", dtype=str)
    real.sample(frac=1, random_state=3).to_csv(tmp_path / "shuffled.csv", index=False)
    for given in (tables / "real.csv", tmp_path / "shuffled.csv"):
        code, text = _report(tables, given, tmp_path / "rep")
        assert code == 2, text
        assert f"{given.name}: not a sample of this model: 100% of its rows are exact " \
            "copies of rows of --real" in text
        assert "a sample of the same size from the model itself repeats 0%" in text
        assert not (tmp_path / "rep").exists()
    code, text = _report(tables, tables / "genuine.csv", tmp_path / "rep")
    assert code == 0, text
    assert (tmp_path / "rep" / "report.pdf").is_file()


def test_the_rule_is_the_larger_of_half_and_twice_the_models_own_share(tables):
    model = FittedModel.from_json(tables / "model.json")
    real = pd.read_csv(tables / "real.csv", dtype=str)
    genuine = pd.read_csv(tables / "genuine.csv", dtype=str)
    assert copy_share(model.spec, genuine, real) < 0.05
    mostly_real = pd.concat([real.iloc[:900], genuine.iloc[900:]], ignore_index=True)
    with pytest.raises(InputError, match="60% of its rows are exact copies"):
        check_not_copied(model, mostly_real, real, "t.csv")
    # at most half copied: below the floor, not refused (a partial copy is not told apart)
    half = pd.concat([real.iloc[:700], genuine.iloc[700:]], ignore_index=True)
    share, _ = check_not_copied(model, half, real, "t.csv")
    assert share == pytest.approx(700 / 1500, abs=0.01)


def test_a_model_over_a_small_domain_repeating_real_rows_by_chance_passes():
    # every row of a two-column binary table is "a copy" of some real row; so is every row a
    # sample of the model draws: the baseline says so, and the genuine sample passes
    spec = {"name": "tiny", "columns": {
        "a": {"type": "categorical", "domain": ["x", "y"], "nullable": False},
        "b": {"type": "categorical", "domain": ["u", "v"], "nullable": False}}}
    rng = np.random.default_rng(1)
    real = pd.DataFrame({"a": rng.choice(["x", "y"], 400), "b": rng.choice(["u", "v"], 400)})
    synth = Synthesizer(TableSpec.from_dict(spec), epsilon=1.0, random_state=4).fit(real)
    sample = synth.sample(400, random_state=5)
    share, baseline = check_not_copied(synth.model, sample, real, "t.csv")
    assert share > 0.9 and baseline > 0.9


def test_a_folder_made_by_report_is_intact_but_never_shareable(tables, tmp_path):
    code, text = _report(tables, tables / "genuine.csv", tmp_path / "rep")
    assert code == 0, text
    record = json.loads((tmp_path / "rep" / "audit.json").read_text(encoding="utf-8"))
    assert record["config"]["report_only"] is True  # the field verify reads
    shutil.rmtree(tmp_path / "rep" / "internal")
    plain = runner.invoke(app, ["verify", str(tmp_path / "rep")])
    assert plain.exit_code == 0, plain.output
    strict = runner.invoke(app, ["verify", "--shareable", str(tmp_path / "rep")])
    out = " ".join(strict.output.split())
    assert strict.exit_code == 1, out
    assert "NOT SHAREABLE: made by `fhirsynth report` (audit.json config.report_only)" in out
    assert "share the release folder that `fhirsynth run` or `fhirsynth sample` wrote" in out
    assert "shareable:" not in out.replace("NOT SHAREABLE:", "")
