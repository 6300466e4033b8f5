"""Conditions that leave no value say why: contradiction, or a continuous column's bound."""

from __future__ import annotations

import pytest

from fhirsynth.domain import Column, TableSpec
from fhirsynth.errors import EvidenceError
from fhirsynth.evidence import parse_evidence

SPEC = TableSpec(name="t", target=None, columns=(
    Column(name="age", kind="numeric", bounds=(0.0, 90.0), bins=18, nullable=False),
    Column(name="state", categories=("MA", "NY"), nullable=False),
    Column(name="visits", kind="numeric", bounds=(0, 20), integer=True, nullable=False)))


@pytest.mark.parametrize("evidence,match", [
    (["age>=60", "age<30"], r"conditions on column 'age' contradict each other: "
                            r"age>=60 and age<30 together allow no value"),
    (["state=MA", "state!=MA"], r"'state' contradict each other: state=MA and state!=MA"),
    (["visits>=5", "visits<=2"], r"'visits' contradict each other"),
    (["age>=90"], r"'age>=90' selects no value of column 'age': its values lie in \[0, 90\], "
                  r"and a continuous column has probability zero at exactly 90; use a range "
                  r"inside the bounds \(e.g. age>=85\)"),
    (["age<=0"], r"probability zero at exactly 0; .*e.g. age<=5"),
    (["age>=95"], r"'age>=95' selects no value of column 'age'; allowed: numbers in \[0, 90\]"),
    # one impossible condition among several is named, not called a contradiction
    (["visits>=1", "visits>=30"], r"'visits>=30' selects no value of column 'visits'"),
])
def test_empty_evidence_says_why(evidence, match) -> None:
    with pytest.raises(EvidenceError, match=match):
        parse_evidence(SPEC, evidence)


def test_compatible_conditions_still_pass() -> None:
    c = parse_evidence(SPEC, ["age>=60", "age<=89.5", "state!=NY", "visits<=20"])
    assert c["age"].low == 60 and c["age"].high == 89.5
    assert c["state"].weights.tolist() == [1.0, 0.0]


def test_a_derived_or_unmodelled_column_says_why_it_cannot_be_a_condition() -> None:
    # trial 24: --where birth_year>=1990 was refused as an "unknown column"
    spec = TableSpec(name="t", target=None, columns=(*SPEC.columns,
        Column(name="birth_year", kind="numeric", bounds=(1936.0, 2026.0), integer=True,
               nullable=True, role="derived"),
        Column(name="note", categories=("a",), role="drop")))
    with pytest.raises(EvidenceError, match=r"'birth_year', a column derived after sampling "
                       r"from the modelled ones .*\(a birth year comes from age\); allowed "
                       r"columns: age, state, visits$"):
        parse_evidence(spec, ["birth_year>=1990"])
    with pytest.raises(EvidenceError, match=r"'note', which is not modelled \(role drop\)"):
        parse_evidence(spec, ["note=a"])
    with pytest.raises(EvidenceError, match=r"unknown column 'nope'"):
        parse_evidence(spec, ["nope=a"])
