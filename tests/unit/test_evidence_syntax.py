"""Evidence accepts what samples show and what constraints say, and refuses what it cannot
read clearly (trial 25): ``other``, ``is missing`` / ``is present`` / ``!=missing``, an empty
condition, several conditions joined by commas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fhirsynth.cli import app
from fhirsynth.domain import Column, TableSpec
from fhirsynth.errors import EvidenceError
from fhirsynth.evidence import parse_evidence
from fhirsynth.model import FittedModel, Node
from fhirsynth.sample import sample_model

SPEC = TableSpec(name="t", target=None, columns=(
    Column(name="work_type", categories=("Private", "Govt_job"), other=True),
    Column(name="bmi", kind="numeric", bounds=(10.0, 60.0), bins=5),
    Column(name="age", kind="numeric", bounds=(0.0, 89.0), integer=True, edges=(0, 30, 60, 89),
           nullable=False),
    Column(name="kind", categories=("a", "other"), other=True, nullable=False),
))


def _model() -> FittedModel:
    nodes = []
    for col in SPEC.modelled:  # every column independent, every state possible
        k = col.n_states
        nodes.append(Node(col.name, col.state_labels(), (), np.full((k, 1), 1.0 / k)))
    return FittedModel(spec=SPEC, nodes=nodes,
                       budget={"epsilon_total": 1.0, "delta_total": 0.0, "steps": []})


def _weights(evidence) -> dict[str, list[float]]:
    return {k: c.weights.tolist() for k, c in parse_evidence(SPEC, evidence).items()}


def test_other_names_the_other_category_as_samples_show_it():
    # "work_type=other" was refused ("allowed: Private, Govt_job, <other>, <missing>")
    assert _weights("work_type=other") == {"work_type": [0, 0, 1, 0]}
    assert _weights({"work_type": ["other", "Private"]}) == {"work_type": [1, 0, 1, 0]}
    assert _weights("work_type!=other") == {"work_type": [1, 1, 0, 1]}
    # a declared category called "other" is that category; <other> is the other-state
    assert _weights("kind=other") == {"kind": [0, 1, 0]}
    assert _weights("kind=<other>") == {"kind": [0, 0, 1]}
    with pytest.raises(EvidenceError, match=r"allowed: Private, Govt_job, other, <missing>"):
        parse_evidence(SPEC, "work_type=none")
    rows, _ = sample_model(_model(), 50, evidence="work_type=other",
                           rng=np.random.default_rng(0))
    assert (rows["work_type"] == "other").all()


@pytest.mark.parametrize(("evidence", "missing"), [
    ("bmi is missing", True), ("bmi IS MISSING", True),
    ("bmi is present", False), ("bmi!=missing", False), ("bmi != <missing>", False),
])
def test_missing_and_present_as_the_constraint_syntax_says(evidence, missing):
    # "bmi is missing", "bmi is present" and "bmi!=missing" were refused
    w = np.asarray(_weights(evidence)["bmi"])
    assert w.tolist() == ([0.0] * 5 + [1.0] if missing else [1.0] * 5 + [0.0])
    rows, _ = sample_model(_model(), 40, evidence=[evidence], rng=np.random.default_rng(1))
    assert rows["bmi"].isna().all() if missing else rows["bmi"].notna().all()


def test_is_missing_and_present_on_categorical_and_never_missing_columns():
    assert _weights("work_type is missing") == {"work_type": [0, 0, 0, 1]}
    assert _weights("work_type is present") == {"work_type": [1, 1, 1, 0]}
    assert _weights("age is present") == {"age": [1, 1, 1]}
    assert _weights("kind!=missing") == {"kind": [1, 1, 1]}
    with pytest.raises(EvidenceError, match=r"column 'age': the column is not nullable, so it "
                                            r"is never missing"):
        parse_evidence(SPEC, "age is missing")


@pytest.mark.parametrize("evidence", ["", "  ", [""], ["age>=60", " "]])
def test_an_empty_condition_is_refused(evidence):
    # evidence="" sampled without conditions, silently
    with pytest.raises(EvidenceError, match="evidence holds an empty condition"):
        parse_evidence(SPEC, evidence)
    with pytest.raises(EvidenceError, match="evidence holds an empty condition"):
        sample_model(_model(), 10, evidence=evidence, rng=np.random.default_rng(0))


@pytest.mark.parametrize("evidence", ["age>=60,age<=10", "age>=60, work_type=other",
                                      "work_type in Private,bmi is missing"])
def test_several_conditions_in_one_string_are_refused_saying_how_to_give_them(evidence):
    # "age>=60,age<=10" gave "'60,age<=10' is not a number"
    with pytest.raises(EvidenceError, match=r"holds several conditions joined by commas: give "
                                            r"one condition per item .*--where once per "
                                            r"condition"):
        parse_evidence(SPEC, [evidence])


def test_commas_between_the_values_of_in_still_list_values():
    assert _weights("work_type in Private,other") == {"work_type": [1, 0, 1, 0]}


def test_the_cli_where_takes_the_same_forms(tmp_path):
    _model().to_json(tmp_path / "m.json")
    runner = CliRunner()
    out = tmp_path / "s.csv"
    r = runner.invoke(app, ["sample", str(tmp_path / "m.json"), "-n", "30", "--out", str(out),
                            "--where", "work_type=other", "--where", "bmi is present",
                            "--seed", "2"])
    assert r.exit_code == 0, r.output
    s = pd.read_csv(out)
    assert (s["work_type"] == "other").all() and s["bmi"].notna().all()
    for where, said in (("age>=60,age<=10", "several conditions joined by commas"),
                        ("", "empty condition")):
        r = runner.invoke(app, ["sample", str(tmp_path / "m.json"), "-n", "5", "--out",
                                str(tmp_path / "x.csv"), "--where", where])
        assert r.exit_code == 2 and said in " ".join(r.output.split()), r.output
