"""Safe Harbor findings that the public spec alone decides, before any data is read.

Owns :func:`spec_findings` and :func:`check_spec_safe_harbor`: the rules of the output scan
(:mod:`.safe_harbor`) applied to what the spec lets the output hold (column names, numeric
bounds, category lists), so that ``fhirsynth run`` refuses a release that could not be
shared before the ledger is charged.  Only spec facts enter the messages, never a value.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass

import pandas as pd

from fhirsynth.domain import Column, TableSpec
from fhirsynth.errors import SpecError
from fhirsynth.evaluate.safe_harbor import (
    _ZIP_NAME,
    AGE_LIMITS,
    _norm,
    _series_counts,
    age_unit,
    load_restricted_zip3,
    name_kind,
)
from fhirsynth.evaluate.safe_harbor_advice import fix_for

__all__ = ["KEY_NAME_RULE", "SAFE_HARBOR_TOP_CODE", "SpecFinding", "check_spec_safe_harbor",
           "identifier_kinds", "key_name_fix", "spec_findings"]

#: Safe Harbor keeps ages up to 89 and collapses the rest into one "90 or older" category
SAFE_HARBOR_TOP_CODE = 90.0


_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?![a-z])")
#: label text refused beyond the output scan's rules: a number of five or more digits (a
#: ZIP code, record or phone number; "-" and "." within it count as part of it, a range of
#: two years does not) and a date with a month name, whatever separates the day from the
#: month ("March 14", "Feb-29-31", "29-Feb-1931", "Feb.29", "14/Mar", "2nd of May")
_LABEL_RULES = {
    "a number of 5 or more digits": re.compile(
        r"(?<![\d.-])(?!(19|20)\d\d-(19|20)\d\d(?![\d.-]))(?=(?:[.-]*\d){5})[\d.-]+"),
    "a date": re.compile(
        rf"(?i)\b{_MONTH}\.?[\s./,-]*\d{{1,2}}(?!\d)"
        rf"|(?<![a-z\d])\d{{1,2}}(?:st|nd|rd|th)?[\s./,-]*(?:of\s+)?{_MONTH}"),
}


#: a date written in digits (2024-03-05, 05/03/2024, 5.3.24): named as a date, not as a
#: long number (a trial's label "cohort 2024-03-05" was said to hold a 5-digit number)
_DIGIT_DATE_SPAN = re.compile(r"(?<![\d.\-/])\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}(?![\d.\-/])")
_DIGIT_DATE = re.compile(r"(19|20)\d\d[-/.](0?[1-9]|1[0-2])[-/.](0?[1-9]|[12]\d|3[01])"
                         r"|(0?[1-9]|[12]\d|3[01])[-/.](0?[1-9]|1[0-2])[-/.]((19|20)?\d\d)"
                         r"|(0?[1-9]|1[0-2])[-/.](0?[1-9]|[12]\d|3[01])[-/.]((19|20)?\d\d)")


def identifier_kinds(text: str) -> list[str]:
    """The identifier kinds a piece of shared free text looks like it holds (empty: none).

    The output scan's value rules (dates finer than a year, phone numbers, e-mail and web
    addresses, record numbers...) and more: a number of five or more digits (ZIP codes,
    record numbers) and a date with a month name or in digits.  Used for the release label
    and the spec's names and descriptions, which are printed in the shareable files.
    """
    kinds = sorted(_series_counts(pd.Series([text], dtype="string")))
    dates = [m.span() for m in _DIGIT_DATE_SPAN.finditer(text) if _DIGIT_DATE.fullmatch(m[0])]
    rest = text
    for a, b in reversed(dates):  # a date is a date, not a number of 5 or more digits
        rest = rest[:a] + " " + rest[b:]
    if dates and not any("date" in k for k in kinds):
        kinds.append("a date in digits")
    kinds += [what for what, rule in _LABEL_RULES.items() if rule.search(rest)]
    return kinds


#: the rule of a finding on a ``role: key`` column named as an identifier (``MRN``)
KEY_NAME_RULE = "key column name"


def key_name_fix(column: str) -> str:
    """The fix for a key column named as an identifier: the same key under a plain name that
    reads the column, so that its values are still checked for repeats."""
    return (f"keep the key under a plain name that reads the column: \"patient_id\": "
            f"{{\"role\": \"key\", \"source\": {{\"column\": {json.dumps(column)}}}}} "
            f"in place of {json.dumps(column)} (a patient on two rows is still refused, and "
            "the output holds fresh UUIDs under the name patient_id); do not drop it, or a "
            "patient on two rows is counted as two")


#: the ``column`` of a finding in the spec's own name or description
SPEC_ITSELF = "(spec)"
#: rule of a finding in a categorical column's declared list, and what each value kind is
CATEGORY_RULE = "category list value"
_VALUE_NAMES = {
    "dates": "a date", "phone": "a telephone number", "email": "an e-mail address",
    "ssn": "a social security number", "url": "a web URL", "ip": "an IP address",
    "other_unique_id": "a UUID", "photo": "an embedded image",
}


def category_fix(kind: str) -> str:
    """What to change for a category list holding a value of ``kind``: the list, not the
    column's type (a date among a smoking status's categories is no date column)."""
    value = _VALUE_NAMES.get(kind, "value of this kind").removeprefix("a ").removeprefix("an ")
    fix = (f"remove the {value} from the column's category list (a value of the data outside "
           "the list is then refused, or becomes <other> with \"other\": true)")
    if kind == "dates":
        fix += (", or, if the column holds dates, reduce it to a year: \"source\": "
                "{\"transform\": \"year\"}")
    return fix + ", or drop the column"


@dataclass(frozen=True)
class SpecFinding:
    """One Safe Harbor identifier kind the spec lets a column of the output hold."""

    kind: str
    column: str
    rule: str
    why: str

    @property
    def where(self) -> str:
        """``column 'x'``, or ``the schema`` for its own name or description."""
        return "the schema" if self.column == SPEC_ITSELF else f"column {self.column!r}"

    @property
    def fix(self) -> str:
        if self.rule == KEY_NAME_RULE:
            return key_name_fix(self.column)
        if self.rule == CATEGORY_RULE:
            return category_fix(self.kind)
        return fix_for({"kind": self.kind, "rule": self.rule})


def _output_columns(spec: TableSpec) -> list[Column]:
    """Columns of the synthetic table: modelled ones and regenerated keys (a derived birth
    year is rebuilt from the age by the Safe Harbor post-processing, see ``harmonise``)."""
    return [c for c in spec.columns if c.modelled or c.role == "key"]


def _numbers(values: tuple[str, ...]) -> list[float]:
    out = []
    for v in values:
        try:
            out.append(float(v))
        except ValueError:
            continue
    return out


def _patient_field(col: Column, name: str) -> bool:
    """Whether ``col`` is a FHIR patient rule for ``name`` (``harmonise`` post-processes it)."""
    src = col.source or {}
    return src.get("from") == "patient" and src.get("field") == name


def _age(col: Column, top: dict[str, float]) -> SpecFinding | None:
    if col.name in top:
        code = top[col.name]
        if code > SAFE_HARBOR_TOP_CODE:
            return SpecFinding("ages_over_89", col.name, "age above 89",
                               f"its top code ({code:g}) is above {SAFE_HARBOR_TOP_CODE:g}")
        if _patient_field(col, "age"):
            return None  # synthetic ages at or above the top code are set to it (harmonise)
        limit = code
    else:
        limit = SAFE_HARBOR_TOP_CODE - 1
    if col.kind == "numeric" and col.bounds is not None and col.bounds[1] > limit:
        return SpecFinding("ages_over_89", col.name, "age above 89",
                           f"its bounds end at {col.bounds[1]:g}, so synthetic ages above "
                           f"{limit:g} can appear, and no top-coding is declared"
                           if col.name not in top else
                           f"its bounds end at {col.bounds[1]:g}, above its top code")
    if col.kind == "categorical" and any(x > limit for x in _numbers(col.categories)):
        return SpecFinding("ages_over_89", col.name, "age above 89",
                           f"its category list holds ages above {limit:g}")
    return None


def _age_in(unit: str, col: Column, top: dict[str, float]) -> SpecFinding | None:
    """An age in months, weeks or days (:func:`.safe_harbor.age_unit`), held to 89 years in
    that unit, or to its top code when that stands for 90 years or less (``AGE_LIMITS``)."""
    most, top_most = AGE_LIMITS[unit]
    rule = f"age in {unit} above 89 years"
    if col.name in top:
        if top[col.name] > top_most:
            return SpecFinding("ages_over_89", col.name, rule,
                               f"it is an age in {unit}, and its top code ({top[col.name]:g}) "
                               f"is above {top_most:g} {unit} (90 years)")
        limit, what, no_top = top[col.name], "its top code", ""
    else:
        limit, what = most, f"{most:g} {unit} (89 years)"
        no_top = ", and no top-coding is declared"
    if col.kind == "numeric" and col.bounds is not None and col.bounds[1] > limit:
        return SpecFinding("ages_over_89", col.name, rule,
                           f"it is an age in {unit}, and its bounds end at {col.bounds[1]:g}, "
                           f"above {what}, so synthetic ages over 89 years can appear{no_top}")
    if col.kind == "categorical" and any(x > limit for x in _numbers(col.categories)):
        return SpecFinding("ages_over_89", col.name, rule,
                           f"it is an age in {unit}, and its category list holds ages above "
                           f"{what}{no_top}")
    return None


def _birth_year(col: Column, spec: TableSpec, year: int) -> SpecFinding | None:
    """A birth-year column (by name, FHIR rule, the year of a birth date, or description)
    whose bounds or categories allow a year that implies an age over 89 in ``year``."""
    if _patient_field(col, "birth_year") and any(_patient_field(c, "age")
                                                 for c in spec.modelled):
        return None  # rebuilt from the synthetic age, suppressed for ages 89+
    oldest = year - int(SAFE_HARBOR_TOP_CODE - 1)  # the earliest year an age of 89 allows
    if col.kind == "numeric" and col.bounds is not None and col.bounds[0] < oldest:
        return SpecFinding("ages_over_89", col.name, "birth year implies age > 89",
                           f"it holds birth years, and its lower bound ({col.bounds[0]:g}) "
                           f"implies an age over 89; raise it to {oldest} or later (earlier "
                           f"birth years are then clipped to {oldest})")
    if col.kind == "categorical" and any(x < oldest for x in _numbers(col.categories)):
        return SpecFinding("ages_over_89", col.name, "birth year implies age > 89",
                           f"it holds birth years, and its category list holds years before "
                           f"{oldest}, which imply an age over 89")
    return None


#: the declaration that lets a column of years reaching back past this year - 89 through
#: (:func:`_undeclared_years`): ``"source": {"not_a_birth_year": true}``
NOT_A_BIRTH_YEAR = "not_a_birth_year"
#: the rule of a column of years that nothing tells from a birth year
UNDECLARED_YEARS = "years that could be birth years"


def _other_date_year(col: Column) -> bool:
    """Whether ``col`` is the ``year`` of a column named as the date of an event other than
    birth (``DEATHDATE``, ``admission_date``; a bare ``date`` says no event)."""
    from fhirsynth.ingest.columns import classify_column

    src = col.source if isinstance(col.source, dict) else {}
    if src.get("transform") != "year":
        return False
    name = str(src.get("column", col.name))
    return (_norm(name) not in ("date", "datetime", "timestamp")
            and classify_column(name).reason == "date: keep the year only")


def _undeclared_years(col: Column, year: int) -> SpecFinding | None:
    """The fail-closed backstop of the birth-year rule: a column no rule recognises whose
    bounds, or every category, are years (1000 to 2999) reaching back before ``year`` - 89
    could hold birth years under a name no rule knows.  It passes when the schema declares it
    no birth year (``"source": {"not_a_birth_year": true}``), when it is the year of a date
    named as another event's, or when its lower bound is raised."""
    from fhirsynth.export.harmonise import _years

    src = col.source if isinstance(col.source, dict) else {}
    span = _years(col)
    oldest = year - int(SAFE_HARBOR_TOP_CODE - 1)
    if (span is None or span[0] >= oldest or src.get(NOT_A_BIRTH_YEAR) is True
            or _other_date_year(col)):
        return None
    held = "bounds" if col.kind == "numeric" else "categories"
    return SpecFinding("ages_over_89", col.name, UNDECLARED_YEARS,
                       f"its {held} are years reaching back before {oldest}, and no rule "
                       f"tells it from a birth year (a birth year before {oldest} implies an "
                       f"age over 89)")


def _zip(col: Column, restricted: frozenset[str]) -> SpecFinding | None:
    if col.kind == "numeric" and col.bounds is not None and col.bounds[1] > 999:
        return SpecFinding("geographic", col.name, "ZIP longer than 3 digits",
                           "its bounds allow ZIP codes longer than 3 digits")
    digits = ["".join(ch for ch in v if ch.isdigit()) for v in col.categories]
    if any(len(d) > 3 for d in digits):
        return SpecFinding("geographic", col.name, "ZIP longer than 3 digits",
                           "its category list holds ZIP codes longer than 3 digits")
    bad = {d.zfill(3) for d in digits if d and d.zfill(3) in restricted}
    if bad:
        # the prefixes are not quoted (a restricted ZIP3 is itself an identifier); the list
        # to compare with is public
        return SpecFinding("geographic", col.name, "restricted ZIP3 not set to 000",
                           f"its category list holds {len(bad)} of the 17 restricted ZIP3 "
                           "prefixes listed in compliance/restricted-zip3.csv (the HHS "
                           "guidance's areas of 20,000 people or fewer)")
    return None


def spec_findings(spec: TableSpec, *, today: _dt.date | None = None) -> list[SpecFinding]:
    """Safe Harbor findings the output scan would make on some output the spec allows.

    Mirrors :func:`fhirsynth.evaluate.safe_harbor.scan_table`, column by column: an age
    column whose bounds (or categories) reach above 89, or above its declared top code;
    a birth-year column whose lower bound (or a category) implies an age over 89 (ages and
    birth years by name, by source rule, such as the ``year`` of a ``BIRTHDATE`` column,
    or by description: :func:`fhirsynth.export.harmonise.birth_year_columns`); a ZIP column that can
    hold more than 3 digits or a restricted prefix; a column whose name is an identifier
    kind (record keys exempt from the unique-id rule); categories that match a value rule
    (dates finer than a year, e-mail, phone, ...).  Beyond the scan, fail-closed: any other
    column whose bounds or categories are years reaching back before this year - 89, unless
    declared no birth year (:func:`_undeclared_years`).
    """
    from fhirsynth.export.harmonise import age_columns, birth_year_columns, top_codes

    top = top_codes(spec)
    ages, years = set(age_columns(spec)), set(birth_year_columns(spec))
    year = (today or _dt.date.today()).year
    restricted = load_restricted_zip3()
    out: list[SpecFinding] = []
    for col in _output_columns(spec):
        more: list[SpecFinding] = []
        n = _norm(col.name)
        if _ZIP_NAME.search(n):
            f = _zip(col, restricted)
        elif col.name in ages:
            f = _age(col, top)
        elif col.name in years:
            f = _birth_year(col, spec, year)
        elif (unit := age_unit(col.name)) is not None:
            f = _age_in(unit, col, top)
        else:
            kind = name_kind(col.name)
            if kind is not None and col.role == "key" and kind != "other_unique_id":
                f = SpecFinding(kind, col.name, KEY_NAME_RULE,
                                "a key column's values are replaced by fresh UUIDs, but its "
                                "name is a Safe Harbor identifier kind and is printed in the "
                                "release")
            elif kind is not None and not (col.role == "key" and kind == "other_unique_id"):
                f = SpecFinding(kind, col.name, "column name",
                                "its name is a Safe Harbor identifier kind")
            elif col.kind == "categorical" and col.categories:
                hits = [k for k in _series_counts(pd.Series(list(col.categories),
                                                            dtype="string"))
                        if not (k == "other_unique_id" and col.role == "key")]
                # one finding per kind, each named: a list may hold a phone and a date
                more = [SpecFinding(k, col.name, CATEGORY_RULE, "its category list holds "
                                    + _VALUE_NAMES.get(k, "a value of this kind"))
                        for k in hits]
                f, more = (more[0], more[1:]) if more else (None, [])
            else:
                f = None
            if f is None and col.role != "key":
                f = _undeclared_years(col, year)
        if f is not None:
            out.append(f)
        out += more
    return out + _text_findings(spec)


def _text_findings(spec: TableSpec) -> list[SpecFinding]:
    """The spec's free text that the shareable files print (its name and description, its
    row rules, and each output column's name, unit and description), held to
    :func:`identifier_kinds`."""
    texts = [(SPEC_ITSELF, "name", spec.name), (SPEC_ITSELF, "description", spec.description)]
    # its row rules are written to model.json (fhirsynth.constraints)
    texts += [(SPEC_ITSELF, f"constraint {i}", r)
              for i, r in enumerate(spec.options.get("constraints") or (), start=1)]
    for col in _output_columns(spec):
        texts += [(col.name, "name", col.name), (col.name, "unit", col.unit),
                  (col.name, "description", col.description)]
    out = []
    for where, what, text in texts:
        kinds = identifier_kinds(str(text)) if text else []
        if kinds:
            out.append(SpecFinding(kinds[0], where, "free text",
                                   f"its {what} looks like it holds an identifier "
                                   f"({', '.join(kinds)}) and is printed in the release"))
    return out


def check_spec_safe_harbor(spec: TableSpec, origin: str, *,
                           today: _dt.date | None = None) -> None:
    """Refuse a spec whose outputs could fail the Safe Harbor scan (see :func:`spec_findings`).

    Parameters
    ----------
    spec : TableSpec
        The schema or feature spec of a release.
    origin : str
        How to name the spec in the message (its file path).

    Raises
    ------
    SpecError
        Naming ``origin``, each column, why it fails and the fix; nothing has been read,
        written or charged yet.
    """
    found = spec_findings(spec, today=today)
    if not found:
        return
    lines = [f"{f.where}: {f.why} (Safe Harbor: {f.kind}); fix: {f.fix}"
             for f in found]
    raise SpecError(
        f"{origin}: the release could not be shared: "
        + "; ".join(lines)
        + ". Nothing was read, written or charged to the ledger")
