"""What a feature spec extracts from FHIR input, described from the spec alone.

Owns telling FHIR input from a clinical CSV by its path (and, for an unknown suffix, its first
byte), and one line per spec column for ``fhirsynth columns`` on FHIR input: the column's
role, what the run does with it, its public domain and the ``source:`` rule that fills it.
Nothing here opens a patient's data: every word comes from the spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from fhirsynth.domain import Column, TableSpec
from fhirsynth.errors import InputError
from fhirsynth.ingest.rules import Rule, parse_rule

__all__ = ["SpecColumn", "describe_spec_columns", "is_fhir_input"]

_FHIR_SUFFIXES = (".json", ".json.gz", ".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
_PATIENT = {
    "birth_year": "year of Patient.birthDate",
    "birth_date_precision": "precision of Patient.birthDate (day, month or year)",
    "gender": "Patient.gender",
    "birth_sex": "US Core birth sex extension of the Patient",
    "race": "US Core race extension of the Patient (OMB category)",
    "ethnicity": "US Core ethnicity extension of the Patient (OMB category)",
    "marital_status": "Patient.maritalStatus (v3 code)",
    "state": "state of Patient.address (USPS code)",
    "deceased": "Patient.deceased[x] (true or false)",
}


@dataclass(frozen=True)
class SpecColumn:
    """One column a feature spec extracts: public facts only."""

    name: str
    role: str
    treatment: str
    domain: str
    source: str

    def line(self) -> str:
        """``name<TAB>role<TAB>treatment<TAB>domain; source`` (the CSV listing's layout)."""
        return f"{self.name}\t{self.role}\t{self.treatment}\t{self.domain}; {self.source}"


def is_fhir_input(path: str | Path) -> bool:
    """Whether ``path`` is FHIR input (a folder, JSON/NDJSON, gzipped or not) rather than CSV.

    A name ending in ``.csv`` is CSV; a folder or a FHIR suffix is FHIR; any other file is
    FHIR when its first non-blank byte (after a BOM) opens a JSON object or array.

    Raises
    ------
    InputError
        The path does not exist or cannot be opened.
    """
    from fhirsynth.ingest.sources import check_regular_file

    p = Path(path)
    check_regular_file(p)  # a FIFO would block the read, a link loop fail inside it
    name = p.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return False
    if p.is_dir() or name.endswith(_FHIR_SUFFIXES):
        if not p.exists():
            raise InputError(f"{p}: file not found")
        return True
    try:
        with p.open("rb") as fh:
            head = fh.read(4096)
    except FileNotFoundError:
        raise InputError(f"{p}: file not found") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot be read ({type(exc).__name__})") from None
    return head.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] in (b"{", b"[")


def _domain(col: Column) -> str:
    if col.kind == "boolean":
        text = "boolean"
    elif col.kind == "categorical":
        cats = list(col.categories) + (["(other)"] if col.other else [])
        text = (f"categorical: {', '.join(cats)}" if len(cats) <= 8
                else f"categorical: {len(cats)} categories ({', '.join(cats[:4])}, ...)")
    elif col.bounds is None:
        text = "integer" if col.integer else "numeric"
    else:
        lo, hi = col.bounds
        text = f"{'integer' if col.integer else 'numeric'} {lo:g} to {hi:g}"
        if col.unit:
            # UCUM codes whose symbol reads as a typo spelt out ("a" is the year, annum)
            text += f" {_UNIT_WORDS.get(col.unit, col.unit)}"
    return text


#: UCUM units shown in words in the column list
_UNIT_WORDS = {"a": "years (UCUM a)", "mo": "months (UCUM mo)", "d": "days (UCUM d)",
               "wk": "weeks (UCUM wk)"}


def _code_list(kind: str, codes: object, full: bool = False) -> str:
    """``LOINC 8480-6`` for one or two codes, else ``12 RxNorm codes`` (``full``: all)."""
    items = sorted(str(c) for c in (codes or ()))  # type: ignore[attr-defined]
    if len(items) > 2 and not full:
        return f"{len(items)} {kind} codes"
    if full and len(items) > 2:
        return f"{kind} {', '.join(items)}"
    return f"{kind} {' or '.join(items)}" if items else ""


def _source(rule: Rule, reference: str, full: bool = False) -> str:
    o = rule.opts

    def listed(kind: str, codes: object) -> str:
        return _code_list(kind, codes, full)

    if rule.kind == "patient":
        if o["field"] == "age":
            at = ("death, else the reference date" if o.get("at") == "death_or_reference"
                  else "the reference date")
            return (f"Patient: age in whole years at {at} {reference} (from birthDate), "
                    f"{o['top_code']} meaning {o['top_code']} or older")
        return _PATIENT.get(o["field"], f"Patient {o['field']}")
    if rule.kind == "condition":
        codes = ", ".join(t for t in (listed("SNOMED CT", o["snomed"]),
                                      listed("ICD-10-CM prefix", o["icd10cm"]),
                                      listed("ICD-9-CM prefix", o["icd9cm"])) if t)
        return f"Condition: true when a Condition is coded with one of {codes}"
    if rule.kind == "observation":
        what = ("coded value mapped to the categories" if o["value"] == "code"
                else f"value converted to {o['unit']}")
        return (f"Observation: latest {listed('LOINC', o['loinc'])} on or before "
                f"{reference}, {what}")
    if rule.kind == "encounter":
        classes = ", ".join(sorted(o["class"])) or "any"
        return (f"Encounter: how many of class {classes} started in the {o['years']:g} "
                f"year(s) up to {reference}")
    active = " active" if o.get("count") == "active" or o.get("status") == "active" else ""
    if "count" in o:
        return (f"MedicationRequest/Statement: how many distinct medication codes the "
                f"patient has{active} (up to {reference})")
    return (f"MedicationRequest/Statement: true when a{active} request or statement carries "
            f"one of {listed('RxNorm', o['rxnorm'])}")


def _treatment(col: Column) -> str:
    if col.modelled:
        return "model"
    if col.role == "derived":
        return "derived after sampling"
    if col.role == "key":
        return "regenerate"
    return "omit"


def describe_spec_columns(spec: TableSpec, *, full_codes: bool = False) -> list[SpecColumn]:
    """One :class:`SpecColumn` per column of a feature spec, in spec order (``full_codes``:
    every code of a rule, not their number past two).

    Raises
    ------
    SpecError
        A column without a valid ``source:`` rule (a CSV schema is not a feature spec).
    """
    raw = spec.reference_date
    reference = raw.isoformat() if isinstance(raw, date) else str(raw)
    out = []
    for col in spec.columns:
        rule = parse_rule(col.name, col.source)
        out.append(SpecColumn(col.name, col.role, _treatment(col), _domain(col),
                              _source(rule, reference, full_codes)))
    return out
