"""Row constraints declared in a schema (fhirsynth.constraints): parsing, the rows they
keep, the structure they imply, and sampling with them (trial 22: discharge before
admission in 29 % of rows; case 010's impossible combinations)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fhirsynth.constraints import implied_parents, parse_rules, rows_meeting
from fhirsynth.domain import TableSpec, load_spec
from fhirsynth.errors import EvidenceError, SpecError
from fhirsynth.synthesizer import Synthesizer

SCHEMAS = Path(__file__).resolve().parents[2] / "data" / "learn"

SPEC = TableSpec.from_dict({"name": "t", "columns": {
    "admit": {"type": "numeric", "integer": True, "bounds": [2000, 2020]},
    "discharge": {"type": "numeric", "integer": True, "bounds": [2000, 2020]},
    "dead": {"type": "categorical", "domain": ["no", "yes"], "nullable": False},
    "death": {"type": "numeric", "integer": True, "bounds": [2000, 2020], "nullable": True},
}})


@pytest.mark.parametrize("rules,message", [
    ("discharge >= admit", "'constraints' must be a list"),
    (["discharge >= admitted"], "'discharge' is numeric, and 'admitted' is not a number"),
    (["dischrge >= admit"], "'dischrge' is not a modelled column"),
    (["dead = maybe -> death is present"], "'maybe' is not in the category list of 'dead'"),
    (["dead > no"], "'dead' is not numeric"),
    (["admit >= soon"], "'admit' is numeric, and 'soon' is not a number"),
    (["dead = no -> death is missing -> admit > 2000"], "at most one '->'"),
    (["dead = admit"], "cannot be compared"),
    ([""], "non-empty string"),
])
def test_a_bad_rule_is_one_error_naming_the_file_and_the_rule(tmp_path, rules, message):
    doc = {"name": "t", "columns": {c.name: c.to_dict() for c in SPEC.columns},
           "constraints": rules}
    for c in doc["columns"].values():
        c.pop("name", None)
    path = tmp_path / "s.schema.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SpecError, match=message) as err:
        load_spec(path)
    assert str(err.value).startswith(f"{path}: ")


def test_rows_meeting_keeps_undecided_comparisons_and_applies_implications():
    rules = parse_rules(SPEC, ["discharge >= admit", "dead = no -> death is missing",
                               "dead == yes -> death is present", "death >= admit"])
    df = pd.DataFrame({
        "admit": [2010, 2010, 2010, 2010, 2010, np.nan],
        "discharge": [2011, 2009, 2010, 2012, 2012, 2001],
        "dead": ["no", "no", "no", "yes", "yes", "no"],
        "death": [np.nan, np.nan, 2015, np.nan, 2009, np.nan],
    })
    # ok; discharge before admit; alive with a death year; dead without one; died before
    # admission; a missing admission decides nothing
    assert rows_meeting(rules, df).tolist() == [True, False, False, False, False, True]


def test_rules_imply_parents_without_cycles_or_overriding_the_declared_structure():
    rules = parse_rules(SPEC, ["discharge >= admit", "dead = no -> death is missing",
                               "admit <= discharge", "death >= admit"])
    assert implied_parents(rules) == {"discharge": ["admit"], "death": ["dead", "admit"]}
    # 'admit <= discharge' would close a cycle with discharge <- admit: left out
    assert implied_parents(rules, {"death": ["discharge"]}) == {"discharge": ["admit"]}


@pytest.fixture(scope="module")
def case010_rules(shared_cases, tmp_path_factory):
    doc = json.loads((SCHEMAS / "case010.schema.json").read_text())
    doc["constraints"] = ["deceased = no -> death_year is missing",
                          "deceased = yes -> death_year is present",
                          "age < 15 -> smoking_status is missing",
                          "diabetes = no -> hba1c_percent is missing"]
    path = tmp_path_factory.mktemp("c") / "case010-rules.schema.json"
    path.write_text(json.dumps(doc))
    df = pd.read_csv(shared_cases / "010-missing-not-at-random" / "input.csv",
                     keep_default_na=False, dtype=str)
    return load_spec(path), df


@pytest.mark.shared_data
def test_case010_with_rules_has_no_impossible_rows_and_keeps_missing_rates(case010_rules,
                                                                          tmp_path):
    spec, df = case010_rules
    rates = []
    for seed in range(4):
        s = Synthesizer(spec, epsilon=1.0, random_state=seed).fit(df)
        # the rules declare the missingness parents: no structure search spends on them
        assert s.model_.graph()["death_year"] == ["deceased"]
        out = s.sample(2000, random_state=seed)
        assert len(out) == 2000
        assert not ((out.deceased == "no") & out.death_year.notna()).any()
        assert not ((out.deceased == "yes") & out.death_year.isna()).any()
        assert not ((out.age < 15) & out.smoking_status.notna()).any()
        assert not ((out.diabetes == "no") & out.hba1c_percent.notna()).any()
        rates.append([out[c].isna().mean() for c in ("death_year", "smoking_status",
                                                      "hba1c_percent")])
    real = [(df[c] == "").mean() for c in ("death_year", "smoking_status", "hba1c_percent")]
    assert np.all(np.abs(np.mean(rates, axis=0) - real) < 0.05)
    # the rules travel with the saved model
    s.save(tmp_path / "m.json")
    again = Synthesizer.load(tmp_path / "m.json").sample(500, random_state=9)
    assert not ((again.deceased == "no") & again.death_year.notna()).any()


def test_rules_the_model_cannot_meet_are_one_clear_error():
    spec = TableSpec.from_dict({"name": "t", "columns": {
        "a": {"type": "numeric", "integer": True, "bounds": [0, 10]},
        "b": {"type": "categorical", "domain": ["x", "y"]}},
        "constraints": ["a > 10"]})
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.integers(0, 11, 400), "b": rng.choice(["x", "y"], 400)})
    s = Synthesizer(spec, epsilon=1.0, random_state=0).fit(df)
    with pytest.raises(EvidenceError, match="constraints reject almost every row"):
        s.sample(20, random_state=1)


def test_a_rule_holding_an_identifier_is_refused_by_the_pre_check():
    # the rules are written to model.json and the report: held to the free-text rules
    from fhirsynth.evaluate.safe_harbor_spec import spec_findings

    spec = TableSpec.from_dict({"name": "t", "columns": {
        "a": {"type": "numeric", "integer": True, "bounds": [0, 10]}},
        "constraints": ["a >= 0", "a != 5558675309"]})
    (found,) = [f for f in spec_findings(spec) if f.rule == "free text"]
    assert "constraint 2" in found.why and "5558675309" not in found.why
    clean = TableSpec.from_dict({"name": "t", "columns": {
        "a": {"type": "numeric", "integer": True, "bounds": [0, 10]}},
        "constraints": ["a >= 0"]})
    assert [f for f in spec_findings(clean) if f.rule == "free text"] == []


def test_the_rules_travel_with_the_model_and_are_stated_in_the_report_summary():
    from fhirsynth.report.summary import model_summary

    rules = ["b = y -> a >= 5"]
    spec = TableSpec.from_dict({"name": "t", "columns": {
        "a": {"type": "numeric", "integer": True, "bounds": [0, 10]},
        "b": {"type": "categorical", "domain": ["x", "y"]}}, "constraints": rules})
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.integers(0, 11, 600), "b": rng.choice(["x", "y"], 600)})
    s = Synthesizer(spec, epsilon=2.0, random_state=0).fit(df)
    assert s.model_.output["constraints"] == rules
    assert model_summary(s.model_)["constraints"] == rules
    out = s.sample(500, random_state=1)
    assert not ((out.b == "y") & (out.a < 5)).any()
