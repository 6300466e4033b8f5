"""Column classification by name, and the Safe Harbor coarsening of quasi-identifiers.

:func:`classify_columns` proposes a role for every CSV header name from a fixed, documented
pattern list (:data:`NAME_PATTERNS`): record keys, direct identifiers, quasi-identifiers with
their treatment, everything else a feature.  The CSV reader uses it to refuse a schema that
models a direct identifier.  :func:`check_header` refuses a first line that looks like a
data row (a CSV without a header line), and :func:`shown_names` replaces a single header
name that looks like a value by its position, so that no message quotes a patient's cell;
a clinical code with a valid check digit (``dx_44054006``) beside plain names is a name.
:func:`zip3` applies the HHS restricted-prefix rule, and :func:`birth_year` keeps only the
year of a date.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fhirsynth.errors import TableInputError
from fhirsynth.evaluate.safe_harbor import AGE_LIMITS
from fhirsynth.evaluate.safe_harbor_advice import FIXES
from fhirsynth.ingest.sources import shown_path

__all__ = ["AGE_REASON", "BIRTH_DATE_REASON", "BIRTH_YEAR_REASON", "NAME_PATTERNS",
           "UNIT_AGE_REASONS", "ColumnClass",
           "check_header", "classify_columns", "duplicate_names_error", "looks_like_code",
           "looks_like_value", "restricted_zip3", "shown_names", "value_like_names",
           "year_column_advice", "year_column_name", "year_of", "zip3"]


@dataclass(frozen=True)
class ColumnClass:
    """The proposed class of one column: ``role`` (a domain role), ``treatment``, ``reason``."""

    role: str
    treatment: str
    reason: str


#: the reason given for a birth date: its year is a birth year, held to the age rule
BIRTH_DATE_REASON = ("birth date: keep the year only, with a lower bound of this year - 89 or "
                     "later (Safe Harbor: no birth year may imply an age over 89)")

#: the reason given for an age (any name the Safe Harbor age rule reads as one, see
#: :func:`fhirsynth.evaluate.safe_harbor.is_age_name`): the pre-check's fix for it
AGE_REASON = ("age: Safe Harbor allows no age over 89, and `run` refuses bounds above 89 "
              "without a top code; " + FIXES["age above 89"])

#: the reason given for a birth year (``birth_year``, ``YEAROFBIRTH``, ``yob``)
BIRTH_YEAR_REASON = ("birth year: Safe Harbor allows no birth year implying an age over 89, and "
                     "`run` refuses a lower bound before this year - 89")

#: the reason given for an age in months, weeks or days (by unit; see
#: :func:`fhirsynth.evaluate.safe_harbor.age_unit`): 89 years in its unit, and the fix
UNIT_AGE_REASONS = {
    unit: (f"age in {unit}: Safe Harbor allows no age over 89 years ({most:g} {unit}), and "
           f"`run` refuses bounds above {most:g} without a top code; "
           + FIXES[f"age in {unit} above 89 years"])
    for unit, (most, _) in AGE_LIMITS.items() if unit != "years"}

_NAME_REASON = "direct identifier (name)"

#: (pattern, role, treatment, reason); a pattern must match the whole normalised name or its
#: last ``_`` token (``home_phone``, ``admission_date``); first match wins.  Names are
#: lower-cased and runs of non-alphanumerics become ``_``.
NAME_PATTERNS: tuple[tuple[str, str, str, str], ...] = (
    (r"mrn|medical_?record(_?number)?|ssn|social_?security(_?number)?|drivers?(_?licen[cs]e)?"
     r"|passport(_?number)?|licen[cs]e(_?number)?|account(_?number)?|insurance_?id|member_?id"
     r"|vin|serial(_?number)?|device_?id|ip(_?address)?|url",
     "identifier", "omit", "direct identifier (record/ID number)"),
    (r"(first|last|middle|given|family|full|maiden|patient|person)?_?names?|first|last|given"
     r"|family|surname|maiden|prefix|suffix|initials",
     "identifier", "omit", _NAME_REASON),
    (r"address(_?line)?\d?|street|addr|line\d?|phone|telephone|mobile|telecom|fax|e_?mail",
     "identifier", "omit", "direct identifier (contact / street address)"),
    (r"lat|latitude|lon|lng|long|longitude|geo(location)?|coordinates?",
     "identifier", "omit", "direct identifier (geocode)"),
    (r"notes?|comments?|free_?text|text|narrative|remarks?|description",
     "identifier", "omit", "free text"),
    (r"id|uuid|guid|patient_?id|person_?id|subject_?id|record_?id|pat_?id|encounter_?id",
     "key", "regenerate", "record key (fresh UUIDv4 per synthetic patient)"),
    (r"(?:pt|pat|patient|home|res|mail(?:ing)?)?_?(?:zip|zip_?code|zip5)|postal(_?code)?"
     r"|postcode",
     "quasi_identifier", "zip3", "ZIP code: keep the first 3 digits, restricted prefixes -> 000"),
    (r"city|town|county|municipality|district|neighbou?rhood|precinct|census_?tract|fips"
     r"|birth_?place|place_?of_?birth|pob|home_?town|birth_?city",
     "quasi_identifier", "drop", "geography below state"),
    (r"state|province|region",
     "quasi_identifier", "state", "state (the coarsest geography kept)"),
    (r"birth_?date|birthdate|birth_?day|birthday|dob|date_?of_?birth|born_?on",
     "quasi_identifier", "year", BIRTH_DATE_REASON),
    (r"death_?date|deathdate|dod|date|.*_date|date_?of_?[a-z]+|(?:admit|admission|adm"
     r"|discharge|disch|death|visit|service|svc|encounter|enc|onset|diagnosis|dx|procedure"
     r"|proc|surgery|start|end|stop|test|lab|collection|order|result|exam|fill|dispense"
     r"|vaccination|immunization|claim|event|last|first|index|followup|entry|exit)date"
     r"|datetime|timestamp|admit(tance)?_?time|discharge_?time",
     "quasi_identifier", "year", "date: keep the year only"),
)
_COMPILED = tuple((re.compile(rf"^(?:{p})$"), role, treat, why)
                  for p, role, treat, why in NAME_PATTERNS)


def _normalise(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def classify_column(name: str) -> ColumnClass:
    """The proposed class of one header name (see :data:`NAME_PATTERNS`); a feature whose name
    the Safe Harbor age rule reads as an age (``age``, ``PatientAge``, ``years_old``...)
    carries the top-code advice (:data:`AGE_REASON`), an age in months, weeks or days the
    advice in its unit (:data:`UNIT_AGE_REASONS`)."""
    from fhirsynth.evaluate.safe_harbor import (
        age_unit,
        is_age_name,
        is_birth_date_name,
        is_birth_year_name,
    )

    norm = _normalise(name)
    last = norm.rsplit("_", 1)[-1]
    birth_year = is_birth_year_name(name)
    unit = None if birth_year else "years" if is_age_name(name) else age_unit(name)
    for pattern, role, treatment, reason in _COMPILED:
        if pattern.match(norm) or pattern.match(last):
            if unit is not None and not pattern.match(norm) and reason == _NAME_REASON:
                continue  # an age named by its order (age_first, age_last), not a name
            return ColumnClass(role=role, treatment=treatment, reason=reason)
    if is_birth_date_name(name, strict=True) and not birth_year:
        # written together (PATIENTDOB, PTBIRTHDATE), which the patterns above do not split
        return ColumnClass(role="quasi_identifier", treatment="year", reason=BIRTH_DATE_REASON)
    if birth_year:
        return ColumnClass(role="feature", treatment="model", reason=BIRTH_YEAR_REASON)
    if unit == "years":
        return ColumnClass(role="feature", treatment="model", reason=AGE_REASON)
    if unit is not None:
        return ColumnClass(role="feature", treatment="model", reason=UNIT_AGE_REASONS[unit])
    return ColumnClass(role="feature", treatment="model", reason="no identifier pattern")


#: the date word of a date column's name, which its year column replaces by "year"
_DATE_WORD = re.compile(r"date_?time|timestamp|date|time|dod", re.IGNORECASE)


def year_column_name(name: str) -> str:
    """A name for the year of the date column ``name`` that says it holds years:
    ``birth_year`` for a birth date (``date_of_birth``, ``dob``, ``PATIENTDOB``), else the
    name with its date word made ``year`` in the same case (``admission_date`` ->
    ``admission_year``, ``DATEOFDEATH`` -> ``YEAROFDEATH``, ``admit_time`` -> ``admit_year``),
    else the name with ``_year`` after it.

    Examples
    --------
    >>> [year_column_name(n) for n in ("date_of_birth", "admission_date", "ADMITDATE")]
    ['birth_year', 'admission_year', 'ADMITYEAR']
    """
    from fhirsynth.evaluate.safe_harbor import is_birth_date_name

    if classify_column(name).reason == BIRTH_DATE_REASON or is_birth_date_name(name,
                                                                              strict=True):
        return "birth_year"

    def year(m: re.Match[str]) -> str:
        word = m.group(0)
        if word.lower() == "dod":
            return "DEATH_YEAR" if word.isupper() else "death_year"
        return "YEAR" if word.isupper() else "Year" if word[0].isupper() else "year"

    new, n = _DATE_WORD.subn(year, name, count=1)
    return new if n else f"{name}_year"


def year_column_advice(name: str) -> str:
    """How to keep only the year of the date column ``name`` under a name that says so:
    ``name the output column "birth_year" with "source": {"column": "date_of_birth",
    "transform": "year"}`` (the reader takes the column from ``source``, docs/csv-input.md)."""
    import json

    return (f"name the output column {json.dumps(year_column_name(name))} with \"source\": "
            f"{{\"column\": {json.dumps(name)}, \"transform\": \"year\"}} (it holds years, "
            "not dates)")


def classify_columns(header: list[str] | tuple[str, ...]) -> dict[str, ColumnClass]:
    """Proposed class of every column of a header, in header order.

    Examples
    --------
    >>> c = classify_columns(["Id", "SSN", "ZIP", "HEALTHCARE_EXPENSES"])
    >>> [c[n].role for n in c]
    ['key', 'identifier', 'quasi_identifier', 'feature']
    """
    return {name: classify_column(name) for name in header}


_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?![a-z])")
#: a header name that looks like a data value rather than a column name: a number, a date
#: (``1957-06-21``, ``06/21/1957``, ``21-Jun-1957``, ``Jun 21``), an e-mail address, a
#: phone number (``555-867-5309``, ``(555) 867 5309``) or a run of five or more digits
#: anywhere (``MRN99887766``, a ZIP code)
_VALUE_LIKE = re.compile(
    r"^[+-]?\d+(?:[.,]\d+)?$"
    r"|^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"
    rf"|^\d{{1,2}}(?:st|nd|rd|th)?[-/. ]*{_MONTH}|^{_MONTH}\.?[-/. ]*\d{{1,2}}(?!\d)"
    r"|^[^@\s]+@[^@\s]+\.[a-z]{2,}$"
    r"|^\+?[\s(]*(?:\d[\s().-]*){7,}$"
    r"|\d{5,}", re.IGNORECASE)


def looks_like_value(name: str) -> bool:
    """Whether a header name looks like a data value (see ``_VALUE_LIKE``), not a name.

    Examples
    --------
    >>> [looks_like_value(n) for n in ("bmi", "555-867-5309", "MRN99887766", "21-Jun-1957")]
    [False, True, True, True]
    """
    return bool(_VALUE_LIKE.search(name.strip()))


#: a column name made of a clinical code, alone or after a prefix: ``44054006``,
#: ``dx_44054006``, ``snomed-38341003``, ``bmi_39156-5`` (group 1: the code)
_CODE_NAME = re.compile(r"(?:[A-Za-z][A-Za-z0-9]*[_.\- ])*(\d{6,18}|\d{5}-\d)")
#: the same with a letter prefix, the only form :func:`value_like_names` takes for a name
_PREFIXED_CODE = re.compile(r"((?:[A-Za-z][A-Za-z0-9]*[_.\- ])+)(?:\d{6,18}|\d{5}-\d)")


def _dihedral(j: int, k: int) -> int:
    """The product j * k in the dihedral group D5 (0-4 rotations, 5-9 reflections)."""
    if j < 5:
        return (j + k) % 5 if k < 5 else 5 + (j + k) % 5
    return 5 + (j - k) % 5 if k < 5 else (j - k) % 5


_SIGMA = (1, 5, 7, 6, 2, 8, 3, 0, 9, 4)
_POWERS = [tuple(range(10))]
for _ in range(7):
    _POWERS.append(tuple(_SIGMA[x] for x in _POWERS[-1]))


def _verhoeff_ok(digits: str) -> bool:
    check = 0
    for i, ch in enumerate(reversed(digits)):
        check = _dihedral(check, _POWERS[i % 8][int(ch)])
    return check == 0


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def looks_like_code(name: str) -> bool:
    """Whether a header name is a clinical code, alone or after a prefix, with its check
    digit right: a SNOMED CT concept id (6-18 digits, partition 00 or 10, Verhoeff check
    digit) or a five-digit LOINC code (``39156-5``, mod-10 check digit).  A number of the
    same length passes by chance about once in 500 (SNOMED) or 10 (LOINC).

    Examples
    --------
    >>> [looks_like_code(n) for n in ("dx_44054006", "44054006", "bmi_39156-5", "99887766")]
    [True, True, True, False]
    """
    m = _CODE_NAME.fullmatch(name.strip())
    if m is None:
        return False
    code = m.group(1)
    if "-" in code:
        return _luhn_ok(code.replace("-", ""))
    return code[-3:-1] in ("00", "10") and _verhoeff_ok(code)


def _coded_name(name: str) -> bool:
    """A clinical code after a prefix that names no identifier (``dx_44054006``; not
    ``MRN-00123103``, whose digits may pass a check digit by chance)."""
    m = _PREFIXED_CODE.fullmatch(name.strip())
    if m is None or not looks_like_code(name):
        return False
    return classify_column(m.group(1)).role not in ("identifier", "key")


def value_like_names(header: Sequence[str]) -> list[bool]:
    """For each header name, whether it looks like a data value rather than a name.

    A name that :func:`looks_like_value` is one, except a clinical code after a prefix
    (:func:`looks_like_code`: ``dx_44054006``, ``bmi_39156-5``) in a header that also has a
    clear name (one without any digit, ``age``) and no other name that looks like a value:
    coded column names come beside plain ones, while a data row that holds a valid code
    holds other values too (a date, a record number).  A bare number (``44054006``) is
    never taken for a name: a record number passes a check digit by chance.
    """
    plain = [looks_like_value(h) for h in header]
    coded = [v and _coded_name(h) for h, v in zip(header, plain, strict=True)]
    clear = any(h.strip() and not any(c.isdigit() for c in h) for h in header)
    others = any(v and not c for v, c in zip(plain, coded, strict=True))
    if not clear or others:
        return plain
    return [v and not c for v, c in zip(plain, coded, strict=True)]


def check_header(path: str | Path, header: Sequence[str]) -> None:
    """Refuse a first line that looks like a data row: a CSV without a header line.

    Two or more names that look like values (one when the line has one field) make the
    line a data row.  The message counts them and never quotes a name.

    Raises
    ------
    TableInputError
        The first line of ``path`` looks like a data row.
    """
    n = sum(value_like_names(header))
    if header and n >= min(2, len(header)):
        raise TableInputError(
            f"line 1 of {shown_path(path)} looks like a data row, not a header: {n} of "
            f"{len(header)} "
            "names look like values (numbers, dates, e-mail addresses or phone numbers); "
            "fhirsynth needs a header line")


def shown_names(header: Sequence[str], public: Collection[str] = ()) -> list[str]:
    """Each header name as messages and listings may show it: ``column i`` (from 1) for a
    name that looks like a value, unless ``public`` (a schema's column names) holds it, and
    ``column i (no name)`` for an empty one."""
    return [f"column {i} (no name)" if not h.strip() else
            h if h in public or not value_like else f"column {i}"
            for i, (h, value_like) in enumerate(zip(header, value_like_names(header),
                                                    strict=True), start=1)]


def duplicate_names_error(path: str | Path, header: Sequence[str]) -> TableInputError | None:
    """The error for a header that repeats a name, or ``None``.

    Names each repeat by its columns; quotes a repeated name only when no name of the
    header looks like a value (a data row must not be echoed).
    """
    where: dict[str, list[int]] = {}
    for i, h in enumerate(header, start=1):
        where.setdefault(h, []).append(i)
    repeats = [(h, cols) for h, cols in where.items() if len(cols) > 1]
    if not repeats:
        return None
    quote = not any(looks_like_value(h) for h in header)
    parts = [(f"{h!r} in columns " if quote else "one name in columns ")
             + ", ".join(map(str, cols)) for h, cols in repeats]
    return TableInputError(f"{shown_path(path)}: duplicate column names in the header: "
                           f"{'; '.join(parts)}")


@lru_cache(maxsize=1)
def restricted_zip3() -> frozenset[str]:
    """The 17 restricted ZIP3 prefixes of the HHS guidance, from the packaged list."""
    from fhirsynth.evaluate.safe_harbor import load_restricted_zip3

    return load_restricted_zip3()


_ZIP_RE = re.compile(r"^(\d{3,5})(?:-\d{4})?$")


def zip3(value: object) -> str | None:
    """First three digits of a US ZIP code; ``"000"`` for a restricted prefix.

    A ZIP that lost its leading zeros (``1028`` for ``01028``) is left-padded to five digits.
    Anything else returns ``None`` (missing).
    """
    if value is None:
        return None
    m = _ZIP_RE.match(str(value).strip())
    if not m:
        return None
    z = m.group(1).zfill(5)[:3]
    return "000" if z in restricted_zip3() else z


_YEAR_RE = re.compile(r"^(\d{4})(?:-\d{2}(?:-\d{2})?)?(?:[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$")


def year_of(value: object) -> int | None:
    """The year of an ISO date or dateTime (``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD...``)."""
    if value is None:
        return None
    m = _YEAR_RE.match(str(value).strip())
    return int(m.group(1)) if m else None
