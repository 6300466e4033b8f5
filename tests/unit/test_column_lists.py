"""Column and TableSpec built in code take the lists a spec file gives (trial 25)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fhirsynth.domain import Column, TableSpec
from fhirsynth.encode import encode
from fhirsynth.errors import SpecError


@pytest.mark.parametrize("cats", ["abc", b"abc"])
def test_a_bare_string_as_the_category_list_is_refused_naming_the_column(cats):
    # it was taken as the three categories a, b and c
    with pytest.raises(SpecError, match=r"column 'x': categories must be a list of values, "
                                        r"not one string"):
        Column(name="x", categories=cats)


def test_number_categories_match_number_data_as_the_encoder_compares_them():
    # integer data 0-9 against categories 0-9 failed at fit: "not in the declared category
    # list"
    col = Column(name="d", categories=tuple(range(10)), nullable=False)
    assert col.categories == tuple(str(i) for i in range(10))
    spec = TableSpec(name="t", columns=(col,))
    data = pd.DataFrame({"d": [3, 0, 9, 3]})
    assert encode(spec, data).codes[:, 0].tolist() == [3, 0, 9, 3]
    floats = Column(name="f", categories=[1.0, np.int64(2), True], nullable=False)
    assert floats.categories == ("1", "2", "true")


@pytest.mark.parametrize(("cats", "message"), [
    ((None, "a"), r"column 'x': categories\[0\] is a NoneType: a category is a string"),
    (("a", float("nan")), r"column 'x': categories\[1\] is not a finite number"),
    (5, r"column 'x': categories must be a list of values, not int"),
    ((1, "1"), r"column 'x': the category list has duplicates"),
])
def test_a_category_list_that_cannot_be_compared_with_data_is_refused(cats, message):
    with pytest.raises(SpecError, match=message):
        Column(name="x", categories=cats)


def test_a_spec_and_its_columns_built_from_lists_hash_and_compare_as_tuples():
    # TableSpec(columns=[...]) was accepted, then hash(spec) raised TypeError
    col = Column(name="bmi", kind="numeric", bounds=[10, 60], edges=np.array([10, 30, 60]),
                 point_masses=[10])
    spec = TableSpec(name="t", columns=[col, Column(name="sex", categories=["f", "m"])])
    assert isinstance(spec.columns, tuple) and col.edges == (10, 30, 60)
    assert hash(spec) == hash(TableSpec(name="t", columns=tuple(spec.columns)))
    assert spec == TableSpec(name="t", columns=(
        Column(name="bmi", kind="numeric", bounds=(10, 60), edges=(10, 30, 60),
               point_masses=(10,)), Column(name="sex", categories=("f", "m"))))


@pytest.mark.parametrize(("columns", "message"), [
    ("age", r"spec 't': columns must be a list of Column, not str"),
    ([Column(name="a", categories=("x",)), {"name": "b"}],
     r"spec 't': columns\[1\] is a dict, not a Column"),
])
def test_a_spec_whose_columns_are_not_columns_is_refused(columns, message):
    with pytest.raises(SpecError, match=message):
        TableSpec(name="t", columns=columns)
