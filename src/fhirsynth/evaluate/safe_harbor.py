"""Scan an output table for the 18 HIPAA Safe Harbor identifier kinds (45 CFR 164.514(b)(2)).

Two kinds of rule: column-name rules (a column called ``ssn`` or ``first_name`` is a finding
whatever it holds) and value rules (regexes for e-mail, phone, SSN, URL, IP, UUID, dates
more precise than a year; ages over 89, or over 89 years in months, weeks or days; ZIP
codes kept beyond three digits or with a restricted prefix other than ``000``).  A finding
names the kind, the place, the column and a count, never a value.  :func:`scan_fhir` (in
:mod:`.safe_harbor_fhir`) applies the same value rules to FHIR resources.  A scan is a safety
net for the output, not a proof.
"""

from __future__ import annotations

import datetime as _dt
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "AGE_LIMITS",
    "IDENTIFIERS",
    "KINDS",
    "Finding",
    "SafeHarborReport",
    "load_restricted_zip3",
    "scan_fhir",
    "scan_table",
    "scan_text_values",
]

#: the 18 Safe Harbor identifier kinds (ages over 89 are part of kind 3, listed on their own)
KINDS = {
    "names": "1. names",
    "geographic": "2. geographic subdivisions smaller than a state (ZIP beyond ZIP3 rules)",
    "dates": "3. elements of dates (except year) related to an individual",
    "ages_over_89": "3. ages over 89 (and dates indicating them) not collapsed into 90+",
    "phone": "4. telephone numbers",
    "fax": "5. fax numbers",
    "email": "6. e-mail addresses",
    "ssn": "7. social security numbers",
    "mrn": "8. medical record numbers",
    "health_plan": "9. health plan beneficiary numbers",
    "account": "10. account numbers",
    "licence": "11. certificate / licence numbers",
    "vehicle": "12. vehicle identifiers and serial numbers, licence plates",
    "device": "13. device identifiers and serial numbers",
    "url": "14. web URLs",
    "ip": "15. IP addresses",
    "biometric": "16. biometric identifiers",
    "photo": "17. full-face photographs and comparable images",
    "other_unique_id": "18. any other unique identifying number, characteristic or code",
}

#: the 18 identifier kinds of 45 CFR 164.514(b)(2)(i), lettered A-R as in
#: compliance/safe-harbor-identifiers.md: (letter, identifier, the scan's kinds in
#: :data:`KINDS` that stand for it, what the output scan checks for it)
IDENTIFIERS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("A", "names", ("names",), "column and field names (name, first, last, patient_name...)"),
    ("B", "geographic subdivisions smaller than a state", ("geographic",),
     "address, city, county, latitude names; ZIP: over 3 digits, restricted ZIP3 not 000"),
    ("C", "dates (except year); ages over 89", ("dates", "ages_over_89"),
     "date values finer than a year, date columns and date-part names; ages above 89 (above "
     "a top code), birth years implying an age over 89"),
    ("D", "telephone numbers", ("phone",), "phone names; phone-number values"),
    ("E", "fax numbers", ("fax",), "fax names (fax values match the phone pattern, D)"),
    ("F", "e-mail addresses", ("email",), "e-mail names; e-mail address values"),
    ("G", "social security numbers", ("ssn",), "SSN names; NNN-NN-NNNN values"),
    ("H", "medical record numbers", ("mrn",), "MRN and record-number names"),
    ("I", "health plan beneficiary numbers", ("health_plan",),
     "member, plan, policy and beneficiary names"),
    ("J", "account numbers", ("account",), "account names"),
    ("K", "certificate / licence numbers", ("licence",), "licence, passport, certificate names"),
    ("L", "vehicle identifiers, licence plates", ("vehicle",), "VIN, vehicle and plate names"),
    ("M", "device identifiers and serial numbers", ("device",),
     "device, UDI and serial-number names"),
    ("N", "web URLs", ("url",), "URL names; URL values"),
    ("O", "IP addresses", ("ip",), "IP names; IPv4 address values"),
    ("P", "biometric identifiers", ("biometric",), "fingerprint, retina, voiceprint names"),
    ("Q", "full-face photographs, comparable images", ("photo",),
     "photo and image names; embedded images (data:image/)"),
    ("R", "any other unique identifying number or code", ("other_unique_id",),
     "identifier names; UUID values outside the regenerated key"),
)

# column-name rules, tried in order on the normalised name (lower case, "_" separators)
_NAME_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("fax", re.compile(r"(^|_)fax(_|$)")),
    ("email", re.compile(r"(^|_)e_?mail(_|$)")),
    ("ssn", re.compile(r"(^|_)(ssn|social_security(_number)?)(_|$)")),
    ("mrn", re.compile(r"(^|_)(mrn|medical_record(_number)?|record_number|chart_number)(_|$)")),
    ("health_plan", re.compile(
        r"(^|_)(health_plan|plan_id|member_id|beneficiary(_id|_number)?|insurance_id|policy"
        r"(_number|_id)?|subscriber(_id)?)(_|$)")),
    ("account", re.compile(r"(^|_)(account|acct|iban)(_|$)")),
    ("licence", re.compile(
        r"(^|_)(licen[cs]e(_number|_no)?|drivers?(_licen[cs]e)?|passport|certificate)(_|$)")),
    ("vehicle", re.compile(r"(^|_)(vin|vehicle(_id)?|licen[cs]e_plate|plate)(_|$)")),
    ("device", re.compile(r"(^|_)(device_id|udi|serial(_number|_no)?|imei|mac_address)(_|$)")),
    ("url", re.compile(r"(^|_)(url|website|homepage|web_page)(_|$)")),
    ("ip", re.compile(r"(^|_)(ip|ip_address|ipv4|ipv6)(_|$)")),
    ("biometric", re.compile(
        r"(^|_)(fingerprint|retina(_scan)?|iris(_scan)?|voice_?print|biometric|face_?print)(_|$)")),
    ("photo", re.compile(r"(^|_)(photo|photograph|image|picture|portrait|selfie)(_|$)")),
    ("phone", re.compile(r"(^|_)(phone|telephone|tel|mobile|cell_phone|telecom)(_|$)")),
    ("names", re.compile(
        r"^((first|last|given|family|middle|maiden|full|patient|sur)_?name|name|first|last|"
        r"given|family|surname|maiden|prefix|suffix)$")),
    ("geographic", re.compile(
        r"(^|_)(address|street|addr|line|city|town|county|district|lat|latitude|lon|lng|"
        r"longitude|geo|geolocation|census_tract|tract|precinct|neighbou?rhood)(_|$)")),
]
#: the dates Safe Harbor names as an individual's (birth, admission, discharge, death), and
#: the parts of a date finer than its year (month, day, day of week or year, quarter)
_DATE_EVENTS = r"birth|dob|born|admission|admit|adm|discharge|disch|dc|death|dod|deceased"
_DATE_PARTS = r"month|mon|mth|mo|day|dom|dow|doy|weekday|quarter|qtr"
#: a name for a part of such a date: ``birth_month``, ``BIRTHMONTH``, ``admit_dow``,
#: ``month_of_death``, ``DAYOFDISCHARGE`` (not a duration: ``los_days``, ``months_since``)
_DATE_PART_NAME = re.compile(
    rf"(^|_)(?:(?:{_DATE_EVENTS})_?(?:date_?)?(?:{_DATE_PARTS})"
    rf"|(?:{_DATE_PARTS})_?(?:of_?)?(?:{_DATE_EVENTS}))(_|$)")
_ZIP_NAME = re.compile(r"(^|_)(zip|zipcode|zip_code|zip5|zip3|postal|postal_code|postalcode|"
                       r"postcode)(_|$)")
#: events an age is taken at, in a name (``age_at_onset``, ``age_dx``, ``ONSETAGE``)
_AGE_EVENTS = (r"admission|admit|adm|diagnosis|diag|dx|onset|death|baseline|enrol(?:l)?(?:ment)?"
               r"|entry|visit|screening|consent|surgery|discharge|index|study|exam|treatment"
               r"|transplant|randomi[sz]ation")
#: whose age, or which, in a run-together name (``PATIENTAGE``, ``ptage``, ``CURRENTAGE``,
#: ``MATAGE``, ``momage``)
_AGE_WHO = (r"patient|pt|pat|subject|subj|participant|case|current|curr|cur|mother|mom|mum"
            r"|maternal|mat|father|dad|paternal")
#: words after ``age`` that make the name a band, a class of ages or an adjusted rate, not an
#: age (``age_group``, ``AGEBAND``, ``age_cat``, ``age_adjusted_rate``)
_AGE_BAND = (r"group|grp|band|bands|cat|cats|category|categories|class|range|bracket|bin|bins"
             r"|bucket|strat|strata|stratum|stratified|adj|adjusted|standardi[sz]ed|specific")
#: English words that begin with the letters "age" and are no age (``agent``, ``agency``,
#: ``agenda``, ``agenesis``, ``ageing``, ``ageusia``; ``aged`` too: a flag or a service,
#: ``aged_care``, not a number of years)
_AGE_ENGLISH = re.compile(r"agen\w*|ageing|ageism|ageist|ageless|agelong|ageusi\w*|ageratum"
                          r"|aged")
#: units an age may be given in, as a token of their own (``age_m``, ``age_dx_yrs``)
_UNIT_TOKENS = {
    "years": r"y|yr|yrs|year|years",
    "months": r"m|mo|mos|mon|mons|mth|mths|mnth|mnths|month|months",
    "weeks": r"wk|wks|week|weeks",
    "days": r"d|dy|dys|day|days",
}
_UNIT_OF_TOKEN = {t: unit for unit, ts in _UNIT_TOKENS.items() for t in ts.split("|")}
#: the same units within a run-together token: no single letter, and at its end no singular
#: (``AGETODAY`` ends in "day" and is an age in years)
_RUN_UNITS = r"years?|yrs?|months?|mos|mons?|mths?|mnths?|weeks?|wks?|days?|dys"
_RUN_END_UNITS = r"years|yrs|months|mos|mons|mths|mnths|weeks|wks|days|dys"
#: a run-together age token (``PATIENTAGE``, ``AGEDXYRS``, ``AGEOFPATIENT``, ``AGEBL``,
#: ``MATAGE``, ``AGEAT1STVISIT``): whose age or an event (:data:`_AGE_WHO`, :data:`_AGE_EVENTS`),
#: ``age``, and anything after it, unless the token is an English word (:data:`_AGE_ENGLISH`)
_RUN_AGE = re.compile(rf"(?P<pre>(?:{_AGE_WHO}|{_AGE_EVENTS}){{1,2}})?(?P<age>age[a-z0-9]*)")
#: the part of a run-together age token after ``age``: a band, a unit first (``AGEINMONTHS``,
#: ``AGEMOSATVISIT``) or last (``AGEATADMISSIONDAYS``)
_RUN_BAND = re.compile(rf"(?:{_AGE_BAND})")
_RUN_UNIT_FIRST = re.compile(rf"(?P<in>in)?(?P<unit>{_RUN_UNITS})(?P<rest>(?:at|{_AGE_EVENTS})"
                             r"[a-z0-9]*)?")
_RUN_UNIT_LAST = re.compile(rf"(?P<rest>[a-z0-9]+?)(?P<unit>{_RUN_END_UNITS})")
#: a run-together age in a unit (``YEARSOLD``, ``yrsold``, ``MONTHSOLD``)
_RUN_OLD = re.compile(r"(years|yrs|months|mos|weeks|wks|days)old")
#: unit of an age -> (the largest age not over 89 years, the largest top code standing for
#: "90 years or older") in that unit.  A year is 12 months, or 365.25 days (365.25 / 7 weeks);
#: both are rounded down, so that no age over 89 years is within the limit: 89 years are
#: 1068 months, 4643.9 weeks (4643), 32,507.25 days (32507); 90 years are 1080 months,
#: 4696.1 weeks (4696), 32,872.5 days (32872)
AGE_LIMITS = {"years": (89.0, 90.0), "months": (1068.0, 1080.0), "weeks": (4643.0, 4696.0),
              "days": (32507.0, 32872.0)}
#: a birth year: ``birth_year``, ``birth_yr``, ``birth_yyyy``, ``year_of_birth``, ``yob``,
#: ``byear``, ``year_born``, ``born_year``, the year of a birth date (``dob_year``,
#: ``dob_yyyy``, ``birth_date_year``), with any prefix (``patient_birth_year``) and a whose
#: after it (``birth_yr_pt``)
_BIRTH_YEAR_NAME = re.compile(r"^(?:\w+_)?(?:birth_?(?:year|yr|yyyy)|(?:year|yr)_of_birth"
                              r"|(?:year|yr)_born|born_(?:year|yr|yyyy)|yob|byear"
                              r"|(?:dob|birth_?date|date_of_birth)_(?:year|yr|yyyy))"
                              rf"(?:_(?:{_AGE_WHO}))?$")
#: a source column (or description) naming a birth date: its year is a birth year
_BIRTH_DATE_NAME = re.compile(r"(^|_)(birth_?date|birthdate|birth_?day|birthday|dob|d_o_b"
                              r"|date_of_birth|born|born_on|birth|geburtsdatum)(_|$)")
#: a birth date by its name alone (:func:`is_birth_date_name` with ``strict``): the word ends
#: the name or only date or year words, or whose, follow it (``dob``, ``patient_dob``,
#: ``dob_iso``, ``birth_date_mother``), so that a flag about it (``dob_verified``,
#: ``DOB_UNKNOWN``, ``dateofbirth_known``) or a part of it (``birthday_month``) is none
_BIRTH_DATE_STRICT = re.compile(r"(^|_)(birth_?date|birth_?day|dob|d_o_b|date_of_birth|born_on"
                                r"|geburtsdatum)"
                                rf"(_(date|dt|datetime|year|yr|yyyy|yyyymmdd|ymd|iso|{_AGE_WHO}))*$")
#: a run-together birth year or birth date token (``YEAROFBIRTH``, ``DOBYEAR``,
#: ``PATIENTBIRTHYEAR``, ``PTYOB``, ``DATEOFBIRTH``, ``PATIENTDOB``): whose, then the words
#: of :data:`_BIRTH_YEAR_NAME` or :data:`_BIRTH_DATE_NAME` without their separators
_RUN_BIRTH = re.compile(rf"(?P<pre>(?:{_AGE_WHO}){{1,2}})?"
                        r"(?P<what>birth(?:year|yr|yyyy)|(?:year|yr)ofbirth|(?:year|yr)born"
                        r"|born(?:year|yr|yyyy)|yob|byear|birthdate|birthday|dateofbirth|dob"
                        r"|(?:dob|birthdate|dateofbirth)(?:year|yr|yyyy))")
#: the words of a run-together birth token, for splitting it
_BIRTH_WORDS = re.compile(r"date|birth|byear|year|yyyy|day|dob|yob|yr|of|born")
_BIRTH_TEXT = re.compile(r"(?i)\b(year\s+of\s+birth|birth\s*year|date\s+of\s+birth"
                         r"|birth\s*date|dob|born\s+in)\b")
_ID_NAME = re.compile(r"^(id|uuid|guid|identifier|patient_id|person_id|subject_id)$|_id$")

# value rules: kind -> pattern searched in text values
VALUE_RULES: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"),
    "ssn": re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)"),
    "phone": re.compile(r"(?<![\d-])(?:\+?1[ .-]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?![\d-])"),
    "url": re.compile(r"(?i)\b(?:https?://|ftp://|www\.)\S+"),
    "ip": re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}"
                     r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"),
    # year-month(-day) with - or /, a full Y.M.D, or a day/month/year form
    "dates": re.compile(r"(?<![\d.])(?:1[89]|20)\d{2}([-/])(?:0[1-9]|1[0-2])(?:\1\d{1,2})?(?![\d.])"
                        r"|(?<![\d.])(?:1[89]|20)\d{2}\.(?:0[1-9]|1[0-2])\.\d{1,2}(?![\d.])"
                        r"|(?<![\d.])\d{1,2}([/.])\d{1,2}\2(?:1[89]|20)?\d{2}(?![\d.])"
                        r"|(?<!\d)(?:1[89]|20)\d{2}(?:0[1-9]|1[0-2])\d{2}T\d{2}"),
    "other_unique_id": re.compile(
        r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"),
    "photo": re.compile(r"(?i)data:image/"),
}
#: kinds searched with every UUID blanked out first: a random UUID (a release's fresh keys)
#: holds digit runs such as "1884-06" that read as a year-month
_UUID_BLANKED = frozenset({"dates"})


def blank_uuids(text: str) -> str:
    """``text`` with every UUID replaced by a space (see ``_UUID_BLANKED``)."""
    return VALUE_RULES["other_unique_id"].sub(" ", text)


def value_kinds(text: str, kinds: Iterable[str] = VALUE_RULES) -> list[str]:
    """The value rules among ``kinds`` that match somewhere in ``text``."""
    blanked: str | None = None
    out = []
    for kind in kinds:
        target = text
        if kind in _UUID_BLANKED:
            blanked = blank_uuids(text) if blanked is None else blanked
            target = blanked
        if VALUE_RULES[kind].search(target):
            out.append(kind)
    return out


@dataclass(frozen=True)
class Finding:
    """One kind of identifier found in one place (``count`` rows or values; no value)."""

    kind: str
    location: str
    field: str
    count: int
    rule: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"description": KINDS[self.kind]}


@dataclass
class SafeHarborReport:
    """Findings of a scan; ``passed`` when there is none."""

    findings: list[Finding] = field(default_factory=list)
    scanned: list[str] = field(default_factory=list)
    exempt: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.findings

    def merge(self, other: SafeHarborReport) -> SafeHarborReport:
        return SafeHarborReport(self.findings + other.findings, self.scanned + other.scanned,
                                self.exempt + other.exempt)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "findings": [f.to_dict() for f in self.findings],
            "scanned": list(self.scanned),
            "exempt": list(self.exempt),
            "kinds_checked": list(KINDS),
            "identifiers": self.identifiers(),
        }

    def identifiers(self) -> list[dict[str, Any]]:
        """One entry per Safe Harbor identifier A-R: its kinds in ``kinds_checked``, what
        was checked, and the number of findings of those kinds (0: passed)."""
        return [{"letter": letter, "identifier": name, "kinds": list(kinds), "checked": what,
                 "findings": sum(f.kind in kinds for f in self.findings)}
                for letter, name, kinds, what in IDENTIFIERS]


def load_restricted_zip3(path: str | Path | None = None) -> frozenset[str]:
    """Restricted ZIP3 prefixes (default: the bundled HHS list, see compliance/)."""
    if path is None:
        text = resources.files("fhirsynth").joinpath("data/restricted-zip3.csv").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    rows = [ln.split(",")[0].strip() for ln in text.splitlines() if ln and not ln.startswith("#")]
    return frozenset(r for r in rows if r.isdigit() and len(r) == 3)


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def _split_norm(name: str) -> str:
    """``name`` normalised with camelCase and letter/digit boundaries as token breaks:
    ``PatientAge`` -> ``patient_age``, ``DOBYear`` -> ``dob_year``, ``Age2`` -> ``age_2``."""
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    s = re.sub(r"([A-Za-z])(\d)", r"\1_\2", s)
    s = re.sub(r"(\d)([A-Za-z])", r"\1_\2", s)
    return _norm(s)


def _unjoin_age(token: str) -> str | None:
    """A run-together age token with its words split (``patientage`` -> ``patient_age``,
    ``agedxyrs`` -> ``age_dxyrs`` with ``yrs`` apart, ``ageinmonths`` -> ``age_in_months``,
    ``agegroup`` -> ``age_group``), or None for any other token (``stage``, ``agent``)."""
    m = _RUN_AGE.fullmatch(token)
    if m is None or _AGE_ENGLISH.fullmatch(m["age"]) or token == "age":
        return None
    rest = m["age"][3:]
    if (band := _RUN_BAND.match(rest)) is not None:
        words = [band[0], rest[band.end():]]
    elif (first := _RUN_UNIT_FIRST.fullmatch(rest)) is not None:
        words = [first["in"], first["unit"], first["rest"]]
    elif (last := _RUN_UNIT_LAST.fullmatch(rest)) is not None:
        words = [last["rest"], last["unit"]]
    else:
        words = [rest]
    return "_".join(w for w in (m["pre"], "age", *words) if w)


def _unjoin_token(token: str) -> str:
    """A run-together age or birth token with its words split (``patientage`` ->
    ``patient_age``, ``ageatdx`` -> ``age_atdx``, ``dobyear`` -> ``dob_year``,
    ``yearsold`` -> ``years_old``); any other token as it is."""
    age = _unjoin_age(token)
    if age is not None:
        return age
    m = _RUN_OLD.fullmatch(token)
    if m:
        return f"{m[1]}_old"
    m = _RUN_BIRTH.fullmatch(token)
    if m:
        return "_".join([m["pre"]] * bool(m["pre"]) + _BIRTH_WORDS.findall(m["what"]))
    return token


def _name_forms(name: str) -> tuple[str, ...]:
    """The forms of a column name the age and birth rules are tried on: :func:`_norm` (lower
    case, ``_`` separators), :func:`_split_norm` (camelCase and digits split as well), and
    both with run-together age and birth tokens split (:func:`_unjoin_token`: ``AGEATDX``
    -> ``age_atdx``, ``PATIENTAGE`` -> ``patient_age``, ``YEAROFBIRTH`` -> ``year_of_birth``)."""
    a, b = _norm(name), _split_norm(name)
    unjoined = ("_".join(_unjoin_token(t) for t in f.split("_")) for f in (b, a))
    return tuple(dict.fromkeys((a, b, *unjoined)))


def _age_in(tokens: list[str]) -> str | None:
    """The unit of the age a name's tokens read as (``"years"``, ``"months"``, ``"weeks"``,
    ``"days"``), or None: a token ``age`` that nothing after it makes a band
    (:data:`_AGE_BAND`), in the unit of the token after it (``age_months_at_visit``,
    ``age_in_days``) or of the last one (``age_at_visit_months``, ``age_dx_yrs``), else in
    years; or a unit, then ``old`` ending the name (``years_old``, ``months_old``)."""
    if len(tokens) >= 2 and tokens[-1] == "old" and tokens[-2] in _UNIT_OF_TOKEN \
            and len(tokens[-2]) > 1:
        return _UNIT_OF_TOKEN[tokens[-2]]
    if "age" not in tokens:
        return None
    after = tokens[tokens.index("age") + 1:]
    if any(re.fullmatch(_AGE_BAND, t) for t in after):
        return None
    unit_first = after[1:2] if after[:1] == ["in"] else after[:1]
    for t in (*unit_first, *after[-1:]):
        if t in _UNIT_OF_TOKEN:
            return _UNIT_OF_TOKEN[t]
    return "years"


def _age_reading(name: str) -> str | None:
    """The unit of the age a column name reads as in any of its forms (:func:`_name_forms`);
    a unit the name spells out (months, weeks, days) before years."""
    units = {_age_in(n.split("_")) for n in _name_forms(name)} - {None}
    return next((u for u in ("months", "weeks", "days", "years") if u in units), None)


def is_age_name(name: str) -> bool:
    """Whether a column name reads as an age in years (``age``, ``PatientAge``, ``AgeYears``,
    ``ageyrs``, ``age_at_diagnosis``, ``age_dx``, ``age_dx_yrs``, ``age_of_onset``, ``age_y``,
    ``age_now``, ``age1``, ``momage``, ``years_old``, ``PATIENTAGE``, ``AGEATDX``, ``AGEBL``;
    not ``stage``, ``dosage``, ``AGENT``, ``aged`` or a band, ``age_group``)."""
    return _age_reading(name) == "years"


def age_unit(name: str) -> str | None:
    """The unit of an age in months, weeks or days named as one (``age_months``, ``AgeDays``,
    ``AGEINWEEKS``, ``age_m``, ``age_at_visit_months``, ``AGEATADMISSIONDAYS``): ``"months"``,
    ``"weeks"`` or ``"days"``; None for any other name (an age in years is
    :func:`is_age_name`)."""
    unit = _age_reading(name)
    return unit if unit != "years" else None


def is_birth_year_name(name: str) -> bool:
    """Whether a column name reads as a birth year (``birth_year``, ``birth_yr``, ``yob``,
    ``DOB_year``, ``PatientBirthYear``, ``year_of_birth``, ``YEAROFBIRTH``, ``DOBYEAR``)."""
    return any(_BIRTH_YEAR_NAME.match(n) for n in _name_forms(name))


def name_kind(name: str) -> str | None:
    """Identifier kind implied by a column or field name, if any."""
    n = _norm(name)
    for kind, pattern in _NAME_RULES:
        if pattern.search(n):
            return kind
    if _ID_NAME.search(n):
        return "other_unique_id"
    if any(_DATE_PART_NAME.search(f) for f in _name_forms(name)):
        return "dates"  # the month or day of a birth, admission, discharge or death
    return None


def is_birth_date_name(name: str, *, strict: bool = False) -> bool:
    """Whether a column name reads as a birth date (``BIRTHDATE``, ``PatientBirthDate``, ``dob``,
    ``date_of_birth``, ``born``): the year of such a column is a birth year.  ``strict``: a
    date by its name alone, not a bare ``birth`` or ``born`` (``birth_weight``, ``born_preterm``
    are no dates)."""
    rule = _BIRTH_DATE_STRICT if strict else _BIRTH_DATE_NAME
    return any(rule.search(n) for n in _name_forms(name))


def says_birth(text: str) -> bool:
    """Whether free text (a column's description) says the column is a birth date or year."""
    return bool(_BIRTH_TEXT.search(text or ""))


def scan_text_values(values: Iterable[str]) -> dict[str, int]:
    """Count values matching each value rule (a value counts once per kind)."""
    s = pd.Series(list(values), dtype="string")
    return _series_counts(s)


def _series_counts(s: pd.Series) -> dict[str, int]:
    out = {}
    s = s.dropna()
    if s.empty:
        return out
    blanked = s.str.replace(VALUE_RULES["other_unique_id"], " ", regex=True)
    for kind, pattern in VALUE_RULES.items():
        target = blanked if kind in _UUID_BLANKED else s
        with warnings.catch_warnings():  # back-references need groups; only the match counts
            warnings.simplefilter("ignore", UserWarning)
            n = int(target.str.contains(pattern, regex=True).sum())
        if n:
            out[kind] = n
    return out


def zip_violations(values: pd.Series, restricted: frozenset[str]) -> tuple[int, int]:
    """(values longer than ZIP3, restricted ZIP3 prefixes not replaced by 000)."""
    s = values.dropna().astype("string").str.strip()
    s = s[s != ""]
    digits = s.str.replace(r"[^0-9]", "", regex=True)
    too_long = int((digits.str.len() > 3).sum())
    zip3 = digits.where(digits.str.len() <= 3).dropna().str.zfill(3)
    return too_long, int(zip3.isin(restricted).sum())


def _numeric(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def scan_table(
    table: pd.DataFrame,
    *,
    location: str = "table",
    exempt: Iterable[str] = (),
    restricted_zip3: frozenset[str] | None = None,
    today: _dt.date | None = None,
    top_coded: Mapping[str, float] | None = None,
    ages: Iterable[str] = (),
    birth_years: Iterable[str] = (),
) -> SafeHarborReport:
    """Scan a table's column names and values for Safe Harbor identifiers.

    Parameters
    ----------
    table : pandas.DataFrame
        The output table (synthetic patients).
    location : str
        Name of the table in findings (a relative file name).
    exempt : iterable of str
        Columns exempt from the unique-id rule: a record key regenerated per synthetic patient
        and not derived from any individual (allowed by 45 CFR 164.514(c)).
    restricted_zip3 : frozenset of str, optional
        Restricted prefixes; default :func:`load_restricted_zip3`.
    today : datetime.date, optional
        Reference date for birth years that imply an age over 89.
    top_coded : mapping of str to float, optional
        Age columns whose value at the top code (90) stands for "90 or older", the
        collapsed category Safe Harbor asks for; only values above it are findings.
    ages, birth_years : iterable of str
        Columns that hold an age or a birth year whatever their name (the spec says so:
        :func:`fhirsynth.export.harmonise.age_columns` and ``birth_year_columns``, e.g. the
        year of a ``BIRTHDATE`` column); columns named as one (``age``, ``*_age``, ``PatientAge``,
        ``birth_year``, ``yob`` ...) are held to the same rules without being listed.
    """
    restricted = load_restricted_zip3() if restricted_zip3 is None else restricted_zip3
    year = (today or _dt.date.today()).year
    exempt = set(exempt)
    ages, birth_years = set(ages), set(birth_years)
    report = SafeHarborReport(scanned=[location], exempt=sorted(exempt))
    add = report.findings.append
    for col in table.columns:
        name, values = str(col), table[col]
        present = int(values.notna().sum())
        n = _norm(name)
        if present == 0:
            continue
        if _ZIP_NAME.search(n):
            long_, restr = zip_violations(values, restricted)
            if long_:
                add(Finding("geographic", location, name, long_, "ZIP longer than 3 digits"))
            if restr:
                add(Finding("geographic", location, name, restr, "restricted ZIP3 not set to 000"))
            continue
        if name in ages or (is_age_name(name) and name not in birth_years
                                and not is_birth_year_name(name)):
            limit = (top_coded or {}).get(name, 89.0)
            over = int(np.nansum(_numeric(values) > limit))
            if over:
                add(Finding("ages_over_89", location, name, over, "age above 89"))
            continue
        unit = age_unit(name) if name not in birth_years else None
        if unit is not None:
            limit = (top_coded or {}).get(name, AGE_LIMITS[unit][0])
            over = int(np.nansum(_numeric(values) > limit))
            if over:
                add(Finding("ages_over_89", location, name, over, f"age in {unit} above 89 years"))
            continue
        if name in birth_years or is_birth_year_name(name):
            over = int(np.nansum(year - _numeric(values) > 89))
            if over:
                add(Finding("ages_over_89", location, name, over, "birth year implies age > 89"))
            continue
        kind = name_kind(name)
        if kind is not None and not (name in exempt and kind == "other_unique_id"):
            add(Finding(kind, location, name, present, "column name"))
            continue
        if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values):
            continue
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            add(Finding("dates", location, name, present, "datetime column"))
            continue
        for vkind, count in _series_counts(values.astype("string")).items():
            if vkind == "other_unique_id" and name in exempt:
                continue
            add(Finding(vkind, location, name, count, "value pattern"))
    return report


def scan_fhir(paths: Iterable[str | Path], **kwargs: Any) -> SafeHarborReport:
    """Scan FHIR NDJSON / JSON files (see :mod:`fhirsynth.evaluate.safe_harbor_fhir`)."""
    from fhirsynth.evaluate.safe_harbor_fhir import scan_fhir_files

    return scan_fhir_files(paths, **kwargs)
