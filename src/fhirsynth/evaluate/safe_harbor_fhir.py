"""Safe Harbor scan of FHIR R4 resources in NDJSON(.gz) and JSON (Bundle or resource) files.

Walks every resource and applies structural rules (``HumanName``, ``telecom`` by system,
``Address`` parts below state, ``identifier`` by type code, ``photo``, device ids, birth years
implying an age over 89, geolocation extensions) and the value regexes of
:mod:`.safe_harbor` to string values outside structural fields (``system``, ``url``,
``reference``...).  Findings are aggregated per (kind, resource type, element path).
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fhirsynth.errors import InputError
from fhirsynth.evaluate.safe_harbor import (
    Finding,
    SafeHarborReport,
    load_restricted_zip3,
    value_kinds,
)

__all__ = ["scan_fhir_files", "scan_resources"]

#: keys whose strings are FHIR machinery, not patient data
_STRUCTURAL = {
    "system", "url", "profile", "reference", "fullUrl", "valueSet", "definition",
    "instantiatesCanonical", "instantiatesUri", "resourceType", "id", "div", "status",
    "lastUpdated", "versionId", "source", "request", "response", "method", "code",
    "data",  # base64 attachment content: not decoded (see docs/limitations.md)
}
_IDENTIFIER_TYPES = {
    "MR": "mrn", "MRT": "mrn", "SS": "ssn", "SB": "ssn", "DL": "licence", "PPN": "licence",
    "MB": "health_plan", "MA": "health_plan", "MC": "health_plan", "SN": "health_plan",
    "AN": "account", "ANON": "other_unique_id", "PLAC": "other_unique_id",
}
_ADDRESS_BELOW_STATE = ("line", "city", "district", "text")
_TELECOM = {"phone": "phone", "fax": "fax", "email": "email", "url": "url", "sms": "phone",
            "pager": "phone"}
_DEVICE_KEYS = {"udiCarrier", "serialNumber", "lotNumber", "distinctIdentifier"}


def _candidate_kinds(value: str) -> list[str]:
    """Value rules worth trying on ``value`` (cheap prefilters keep long strings linear)."""
    kinds = []
    if "@" in value:
        kinds.append("email")
    low = value[:20000].lower()
    if "://" in low or "www." in low:
        kinds.append("url")
    if "data:image/" in low:
        kinds.append("photo")
    if any(ch.isdigit() for ch in value[:20000]):
        kinds += ["ssn", "phone", "ip", "dates"]
    return kinds


def _already_counted(key: str, d: dict[str, Any], path: str) -> bool:
    """Parts of a HumanName or an Address that the structural rules have counted."""
    if key in ("family", "given", "prefix", "suffix") and ("family" in d or "given" in d):
        return True
    return key in ("line", "city", "district", "postalCode") and path.endswith("address")


def _identifier_kind(ident: dict[str, Any]) -> str:
    system = str(ident.get("system", "")).lower()
    if "ssn" in system or "social-security" in system:
        return "ssn"
    for coding in (ident.get("type") or {}).get("coding", []) or []:
        kind = _IDENTIFIER_TYPES.get(str(coding.get("code", "")).upper())
        if kind:
            return kind
    if "driver" in system or "passport" in system:
        return "licence"
    if "mrn" in system or "medical-record" in system:
        return "mrn"
    return "other_unique_id"


class _Walker:
    def __init__(self, restricted: frozenset[str], year: int) -> None:
        self.counts: Counter[tuple[str, str, str, str]] = Counter()
        self.restricted = restricted
        self.year = year

    def hit(self, kind: str, rtype: str, path: str, rule: str) -> None:
        self.counts[(kind, rtype, path, rule)] += 1

    def resource(self, res: dict[str, Any]) -> None:
        rtype = str(res.get("resourceType", "?"))
        if rtype == "Bundle":
            for entry in res.get("entry", []) or []:
                if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                    self.resource(entry["resource"])
            return
        birth = res.get("birthDate")
        old = isinstance(birth, str) and birth[:4].isdigit() and self.year - int(birth[:4]) > 89
        if rtype == "Patient" and old:
            self.hit("ages_over_89", rtype, "birthDate", "birth year implies age > 89")
        self.node(res, rtype, "")

    def node(self, value: Any, rtype: str, path: str) -> None:
        if isinstance(value, list):
            for item in value:
                self.node(item, rtype, path)
        elif isinstance(value, dict):
            self.mapping(value, rtype, path)
        elif isinstance(value, str):
            key = path.rsplit(".", 1)[-1]
            if key in _STRUCTURAL:
                return
            for kind in value_kinds(value, _candidate_kinds(value)):
                self.hit(kind, rtype, path, "value pattern")

    def mapping(self, d: dict[str, Any], rtype: str, path: str) -> None:
        def sub(k: str) -> str:
            return f"{path}.{k}" if path else k

        if "resourceType" in d and path:  # contained resource
            self.resource(d)
            return
        if "family" in d or "given" in d:
            self.hit("names", rtype, path or "name", "HumanName")
        if path.endswith("telecom") and "value" in d:
            self.hit(_TELECOM.get(str(d.get("system", "")), "phone"), rtype, path, "telecom")
            return
        if "url" in d and "geolocation" in str(d["url"]):
            self.hit("geographic", rtype, path, "geolocation extension")
            return
        if path.endswith("identifier") and "value" in d:
            self.hit(_identifier_kind(d), rtype, path, "identifier")
            return
        if path.endswith("address"):
            for part in _ADDRESS_BELOW_STATE:
                if d.get(part):
                    self.hit("geographic", rtype, sub(part), "address below state")
            zip_ = str(d.get("postalCode", "") or "").replace("-", "").strip()
            if len(zip_) > 3:
                self.hit("geographic", rtype, sub("postalCode"), "ZIP longer than 3 digits")
            elif zip_ and zip_.zfill(3) in self.restricted:
                self.hit("geographic", rtype, sub("postalCode"), "restricted ZIP3 not set to 000")
        for key, val in d.items():
            if key == "photo":
                self.hit("photo", rtype, sub(key), "photo element")
            elif key in _DEVICE_KEYS:
                self.hit("device", rtype, sub(key), "device identifier")
            elif key == "contentType" and str(val).startswith("image/"):
                self.hit("photo", rtype, path, "image attachment")
            elif not _already_counted(key, d, path):
                self.node(val, rtype, sub(key))


def scan_resources(
    resources: Iterable[dict[str, Any]],
    *,
    location: str = "resources",
    restricted_zip3: frozenset[str] | None = None,
    today: _dt.date | None = None,
) -> SafeHarborReport:
    """Scan FHIR resources (dicts) already in memory."""
    walker = _Walker(restricted_zip3 or load_restricted_zip3(), (today or _dt.date.today()).year)
    for res in resources:
        if isinstance(res, dict):
            walker.resource(res)
    findings = [
        Finding(kind, location, f"{rtype}.{path}", n, rule)
        for (kind, rtype, path, rule), n in sorted(walker.counts.items())
    ]
    return SafeHarborReport(findings=findings, scanned=[location])


def _read(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    name = path.name.removesuffix(".gz")
    try:
        with opener(path, "rt", encoding="utf-8-sig") as fh:
            if name.endswith(".ndjson"):
                for lineno, line in enumerate(fh, 1):
                    if line.strip():
                        try:
                            yield json.loads(line)
                        except json.JSONDecodeError:
                            raise InputError(f"{path.name} line {lineno}: not valid JSON") from None
            else:
                try:
                    yield json.load(fh)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path.name} line {exc.lineno}: not valid JSON") from None
    except OSError as exc:
        raise InputError(f"{path.name}: cannot be read ({exc.strerror or 'I/O error'})") from None


def scan_fhir_files(
    paths: Iterable[str | Path],
    *,
    restricted_zip3: frozenset[str] | None = None,
    today: _dt.date | None = None,
) -> SafeHarborReport:
    """Scan FHIR ``.ndjson``, ``.ndjson.gz``, ``.json`` and ``.json.gz`` files (and
    directories of them); findings are located by file name."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(q for q in p.rglob("*") if q.is_file() and "json" in q.name)
        else:
            files.append(p)
    report = SafeHarborReport()
    for f in files:
        report = report.merge(scan_resources(
            _read(f), location=f.name, restricted_zip3=restricted_zip3, today=today))
    return report
