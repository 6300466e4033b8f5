"""The release label refuses a date with a month name whatever the separators (trial: the
label check accepted "Feb-29-31 Smith"), and the refusal never quotes the label."""

from __future__ import annotations

import pytest

from fhirsynth.errors import ConfigError
from fhirsynth.pipeline import check_label


@pytest.mark.parametrize("label", [
    "Feb-29-31 Smith", "29-Feb-1931", "Feb.29", "feb/29/1931", "29.Feb.31", "14/Mar",
    "Feb29", "29Feb31", "2nd of May", "2nd-May cohort", "September 3", "3 sept",
    "March 14, 2026 pull", "pulled 14th March",
])
def test_month_name_dates_are_refused_without_quoting_the_label(label):
    with pytest.raises(ConfigError, match=r"label looks like it holds an identifier \(a date\)"
                       ) as err:
        check_label(label)
    assert label not in str(err.value)
    for part in ("Smith", "Feb", "29", "1931", "Mar", "May"):
        if part in label:
            assert part not in str(err.value)


@pytest.mark.parametrize("label", ["North cohort 2026", "Cohort 2020-2024", "May 2024 extract",
                                   "Dec 2025", "Mark 2 cohort", "stroke v2 Mayo",
                                   "Q3 Mar extract", "decade 3 cohort"])
def test_month_and_year_or_words_that_start_like_a_month_pass(label):
    assert check_label(label) == label


@pytest.mark.parametrize("label", ["cohort 2024-03-05", "cohort 05/03/2024"])
def test_a_date_in_digits_is_named_a_date_not_a_long_number(label: str) -> None:
    # trial 13: "cohort 2024-03-05" was said to hold a number of 5 or more digits
    with pytest.raises(ConfigError) as err:
        check_label(label)
    assert "date" in str(err.value) and "5 or more digits" not in str(err.value)
    assert label.split()[-1] not in str(err.value)
