"""Whether an audit record agrees with itself and with the files of its release.

:func:`check_record` is the second half of ``fhirsynth verify``: after the file hashes, it
recomputes what the record states but the files (or the record's other fields) determine: the
configuration hash, the spec hash from ``model.json``, the budget arithmetic (epsilon, delta
and, under zCDP, rho), the budget table of ``model.json``, the internal evaluation's hash and
the record's own cross-references.  Problems name the field and what disagrees, never a value
of the data: the record holds none.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Consistency", "check_record"]

MODEL_NAME = "model.json"
REPORT_NAME = "report.pdf"
EVALUATION_NAME = "internal/evaluation.json"
_STEP_KEYS = ("name", "mechanism", "epsilon", "delta", "sensitivity", "rho", "detail")
_BUDGET_KEYS = ("epsilon_total", "delta_total", "epsilon_spent", "delta_spent", "composition",
                "rho_total", "rho_spent")


@dataclass
class Consistency:
    """Outcome of :func:`check_record`.

    ``problems``: one line per failed check (field, then what disagrees); ``checked``: what
    was checked; ``not_checked``: what could not be checked and why (not a failure).
    """

    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)


#: a sha256 printed on its own (not inside a longer run of hex digits)
_HASH = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


def _hashes(obj: Any) -> list[str]:
    """Every sha256 anywhere in a (nested) record."""
    if isinstance(obj, Mapping):
        return [h for v in obj.values() for h in _hashes(v)]
    if isinstance(obj, list):
        return [h for v in obj for h in _hashes(v)]
    return [obj] if isinstance(obj, str) and _HASH.fullmatch(obj) else []


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)


def _at_most(a: float, b: float) -> bool:
    return a <= b * (1 + 1e-9) + 1e-15


def _same(a: Any, b: Any) -> bool:
    """Equal JSON values, numbers within float tolerance."""
    if _number(a) is not None and _number(b) is not None:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _map(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def _show(x: Any) -> str:
    """A record value for a message, cut short (the record holds no patient value)."""
    text = x if isinstance(x, str) else repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    v = float(x)
    return v if math.isfinite(v) else None


class _Checker:
    def __init__(self, record: Mapping[str, Any], directory: Path) -> None:
        self.r = record
        self.d = directory
        self.out = Consistency()

    def fail(self, what: str, why: str) -> None:
        self.out.problems.append(f"{what}: {why}")

    def num(self, key: str, where: Mapping[str, Any] | None = None,
            label: str | None = None) -> float | None:
        src = self.r if where is None else where
        v = _number(src.get(key))
        if v is None:
            self.fail(label or key, "missing or not a finite number")
        return v

    # ------------------------------------------------------------------ the record alone
    def config(self) -> None:
        from fhirsynth.report.audit import config_hash

        cfg = self.r.get("config")
        if not isinstance(cfg, Mapping):
            self.fail("config", "missing or not an object")
            return
        if config_hash(cfg) != self.r.get("config_sha256"):
            self.fail("config_sha256", "is not the sha256 of the recorded config")
        for key, total in (("epsilon", "epsilon_total"), ("delta", "delta_total")):
            if key in cfg and not (_number(cfg[key]) is not None and _number(self.r.get(total))
                                   is not None and _close(cfg[key], self.r[total])):
                self.fail(f"config.{key}", f"{_show(cfg[key])} differs from {total} "
                          f"{_show(self.r.get(total))}")
        self.out.checked.append("config_sha256 is the hash of config; config epsilon/delta "
                                "equal the totals")

    def steps(self) -> list[Mapping[str, Any]] | None:
        steps = self.r.get("steps")
        if not isinstance(steps, list) or not all(isinstance(s, Mapping) for s in steps):
            self.fail("steps", "missing or not a list of steps")
            return None
        return steps

    def budget(self, steps: list[Mapping[str, Any]]) -> None:
        eps = [_number(s.get("epsilon")) for s in steps]
        dlt = [_number(s.get("delta") or 0.0) for s in steps]
        for i, (s, e, d) in enumerate(zip(steps, eps, dlt, strict=True)):
            if e is None or e < 0 or d is None or not 0 <= d < 1:
                self.fail(f"steps[{i}] ({_show(s.get('name'))})", "epsilon or delta is not a "
                          "valid number")
        totals = {k: self.num(k) for k in ("epsilon_total", "epsilon_spent", "delta_total",
                                           "delta_spent")}
        if None in totals.values() or None in eps or None in dlt:
            return
        e_sum = math.fsum(eps)  # type: ignore[arg-type]
        if not _close(e_sum, totals["epsilon_spent"]):
            self.fail("epsilon_spent", f"{totals['epsilon_spent']:g} but the steps' epsilons "
                      f"add up to {e_sum:g}")
        if not _at_most(totals["epsilon_spent"], totals["epsilon_total"]):
            self.fail("epsilon_spent", f"{totals['epsilon_spent']:g} is above epsilon_total "
                      f"{totals['epsilon_total']:g}")
        zcdp = "rho_total" in self.r or "rho_spent" in self.r
        d_sum = math.fsum(dlt)  # type: ignore[arg-type]
        if zcdp:
            # the delta of a zCDP release is spent as a whole by the conversion
            want, why = (totals["delta_total"] if steps else 0.0), "delta_total (zCDP)"
        else:
            want, why = d_sum, "the sum of the steps' deltas"
        if not _close(totals["delta_spent"], want):
            self.fail("delta_spent", f"{totals['delta_spent']:g} but {why} is {want:g}")
        if not _at_most(totals["delta_spent"], totals["delta_total"]):
            self.fail("delta_spent", f"{totals['delta_spent']:g} is above delta_total "
                      f"{totals['delta_total']:g}")
        self.out.checked.append("the steps add up to epsilon_spent and delta_spent, within "
                                "the totals")
        if zcdp:
            self.rho(steps, eps, totals["epsilon_total"], totals["delta_total"])

    def rho(self, steps: list[Mapping[str, Any]], eps: list[Any], eps_total: float,
            delta_total: float) -> None:
        from fhirsynth.privacy.noise import zcdp_rho

        rho_total, rho_spent = self.num("rho_total"), self.num("rho_spent")
        rhos = [s.get("rho") for s in steps]
        if rho_total is None or rho_spent is None:
            return
        if any(r is not None and (_number(r) is None or r < 0) for r in rhos):
            self.fail("steps.rho", "a step's rho is not a valid number")
            return
        r_sum = math.fsum(r for r in rhos if r is not None)
        if not _close(r_sum, rho_spent):
            self.fail("rho_spent", f"{rho_spent:.6g} but the steps' rho add up to {r_sum:.6g}")
        if not _at_most(rho_spent, rho_total):
            self.fail("rho_spent", f"{rho_spent:.6g} is above rho_total {rho_total:.6g}")
        # the steps without rho are pure epsilon-DP; the rest of epsilon_total is under zCDP
        rest = eps_total - math.fsum(e for e, r in zip(eps, rhos, strict=True) if r is None)
        if rest > 0 and 0 < delta_total < 1:
            want = zcdp_rho(rest, delta_total)
            if not _close(rho_total, want):
                self.fail("rho_total", f"{rho_total:.6g} but epsilon {rest:.6g} and delta "
                          f"{delta_total:g} give rho {want:.6g}")
            for i, (e, r) in enumerate(zip(eps, rhos, strict=True)):
                if r is not None and not _close(r, rho_total * e / rest):
                    self.fail(f"steps[{i}].rho ({_show(steps[i].get('name'))})",
                              "is not the step's epsilon share of rho_total")
        elif rest > 0:
            self.fail("delta_total", "zCDP needs delta in (0, 1)")
        self.out.checked.append("zCDP: the steps' rho add up to rho_spent <= rho_total; "
                                "rho_total follows from epsilon and delta; each step's rho "
                                "is its epsilon share")

    def types(self) -> None:
        """Optional fields may be absent or null, never of another type."""
        for key, kind, label in (("inputs", list, "a list"),
                                 ("source_commitment", str, "a string"),
                                 ("source_fingerprint", str, "a string"),
                                 ("source_history", Mapping, "an object"),
                                 ("ledger_history", Mapping, "an object"),
                                 ("evaluation", Mapping, "an object"),
                                 ("dataset", str, "a string"), ("run_id", str, "a string"),
                                 ("composition", str, "a string")):
            if self.r.get(key) is not None and not isinstance(self.r[key], kind):
                self.fail(key, f"is not {label}")
        ev = _map(self.r.get("evaluation"))
        for key, kind, label in (("safe_harbor", Mapping, "an object"),
                                 ("synthetic_statistics", list, "a list"),
                                 ("internal_evaluation_sha256", str, "a string")):
            if ev.get(key) is not None and not isinstance(ev[key], kind):
                self.fail(f"evaluation.{key}", f"is not {label}")

    def cross_references(self) -> None:
        inputs = self.r.get("inputs")
        # schema 2: a keyed commitment; schema 1 (older releases): the plain fingerprint
        from fhirsynth.report.audit import SCHEMA_VERSION

        old = self.r.get("schema") not in (SCHEMA_VERSION, "fhirsynth-audit/2")
        key, field = (("source_fingerprint", "sha256") if old
                      else ("source_commitment", "hmac_sha256"))
        src = self.r.get(key)
        if isinstance(inputs, list) and inputs and src is not None:
            if not (isinstance(inputs[0], Mapping) and inputs[0].get(field) == src):
                self.fail(f"inputs[0].{field}", f"differs from {key}")
            self.out.checked.append(f"the inputs' {field} is {key}")
        # schema 3: the ledger-wide history; schema 2 and 1: the source's own
        name = "ledger_history" if "ledger_history" in self.r else "source_history"
        hist = self.r.get(name)
        if isinstance(hist, Mapping):
            n = hist.get("releases")
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                self.fail(f"{name}.releases", "is not a count of at least 1 (this release)")
            charges = hist.get("charges", n)  # schema 3: every charge, unfinished runs too
            if isinstance(charges, bool) or not isinstance(charges, int) or (
                    isinstance(n, int) and charges < n):
                self.fail(f"{name}.charges", "is not a count of at least its releases")
                charges = n
            n = charges
            for key, total in (("epsilon_spent_total", "epsilon_total"),
                               ("delta_spent_total", "delta_total")):
                h, t = _number(hist.get(key)), _number(self.r.get(total))
                if h is None or t is None:
                    self.fail(f"{name}.{key}", "missing or not a finite number")
                elif n == 1 and not _close(h, t):
                    self.fail(f"{name}.{key}", f"{h:g} for one release but {total} "
                              f"is {t:g}")
                elif not _at_most(t, h):
                    self.fail(f"{name}.{key}", f"{h:g} is below this release's "
                              f"{total} {t:g}")
            self.out.checked.append(f"{name} includes this release's totals")
        sh = _map(self.r.get("evaluation")).get("safe_harbor")
        if isinstance(sh, Mapping):
            if not isinstance(sh.get("passed"), bool) or \
                    sh["passed"] != (not sh.get("findings")):
                self.fail("evaluation.safe_harbor.passed", "disagrees with its findings")
            self.out.checked.append("the Safe Harbor verdict agrees with its findings")
        names = {o.get("path") for o in self.r.get("outputs", []) if isinstance(o, Mapping)}
        if REPORT_NAME not in names:
            self.fail("outputs", f"{REPORT_NAME} is not listed")

    # --------------------------------------------------------------- against the files
    def model(self, steps: list[Mapping[str, Any]] | None) -> None:
        from fhirsynth.domain import TableSpec
        from fhirsynth.errors import FhirsynthError
        from fhirsynth.report.text import clean

        names = {o.get("path") for o in self.r.get("outputs", []) if isinstance(o, Mapping)}
        path = self.d / MODEL_NAME
        if MODEL_NAME not in names or not path.is_file():
            # listed but absent: a partial copy (a full check reports it missing as well)
            why = "not given" if MODEL_NAME in names else "not in the release"
            self.out.not_checked.append(f"spec_sha256, dataset and the budget against "
                                        f"{MODEL_NAME} ({why})")
            self.out.not_checked.append(f"evaluation.synthetic_statistics (the synthetic "
                                        f"table is described with the spec in {MODEL_NAME}, "
                                        f"which is {why})")
            return
        try:
            model = json.loads(path.read_text(encoding="utf-8"))
            spec = TableSpec.from_dict(model["spec"], origin=MODEL_NAME)
            budget = model["budget"]
            if not isinstance(budget, Mapping):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError, FhirsynthError):
            self.fail(MODEL_NAME, "not a readable model (no spec or budget)")
            self.out.not_checked.append(f"evaluation.synthetic_statistics ({MODEL_NAME}, "
                                        "whose spec describes the table, is not readable)")
            return
        if spec.fingerprint() != self.r.get("spec_sha256"):
            self.fail("spec_sha256", f"is not the fingerprint of the spec in {MODEL_NAME}")
        if self.r.get("dataset") != clean(spec.name):
            self.fail("dataset", f"differs from the spec name in {MODEL_NAME}")
        for key in _BUDGET_KEYS:
            a, b = self.r.get(key), budget.get(key)
            same = (_close(a, b) if _number(a) is not None and _number(b) is not None
                    else a == b)
            if not same:
                self.fail(key, f"{_show(a)} but {MODEL_NAME}'s budget says {_show(b)}")
        msteps = budget.get("steps")
        if steps is not None and isinstance(msteps, list):
            if len(steps) != len(msteps):
                self.fail("steps", f"{len(steps)} steps but {MODEL_NAME} has {len(msteps)}")
            for i, (s, m) in enumerate(zip(steps, msteps, strict=False)):
                m = m if isinstance(m, Mapping) else {}
                for key in _STEP_KEYS:
                    a, b = s.get(key), m.get(key)
                    if a == b or (_number(a) is not None and _number(b) is not None
                                  and _close(a, b)):
                        continue
                    self.fail(f"steps[{i}].{key}", f"{_show(a)} but {MODEL_NAME} says {_show(b)}")
        elif steps is not None:
            self.fail(MODEL_NAME, "its budget has no steps")
        # a test release (noise from --seed) may not pass for a release: the record and the
        # model must agree where both say it (models from before the flag do not)
        seeded = _map(model.get("info")).get("reproducible_noise")
        said = _map(self.r.get("config")).get("reproducible_noise")
        if isinstance(seeded, bool) and bool(said) != seeded:
            self.fail("config.reproducible_noise", f"{_show(said)} but {MODEL_NAME} says "
                      f"{_show(seeded)} (a fixed seed drew its noise: a test release)")
        self.out.checked.append(f"spec_sha256, dataset, the budget (totals, steps: names, "
                                f"mechanisms, epsilons, deltas, rho) and whether a seed drew "
                                f"the noise agree with {MODEL_NAME}")
        self.statistics(spec)

    def statistics(self, spec: Any) -> None:
        import pandas as pd

        from fhirsynth.evaluate.fidelity import describe
        from fhirsynth.report.audit import jsonable

        want = _map(self.r.get("evaluation")).get("synthetic_statistics")
        tables = [o["path"] for o in self.r.get("outputs", []) if isinstance(o, Mapping)
                  and str(o.get("path", "")).endswith((".csv", ".parquet"))
                  and (self.d / o["path"]).is_file()]
        if want is None or not tables:
            self.out.not_checked.append("evaluation.synthetic_statistics (no statistics or "
                                        "no synthetic table)")
            return
        for rel in tables:
            path = self.d / rel
            try:
                # read as the release wrote it (and as `fhirsynth report` reads it back)
                df = (pd.read_parquet(path) if path.suffix == ".parquet"
                      else pd.read_csv(path, dtype=str, keep_default_na=False))
                got = json.loads(json.dumps(jsonable(describe(spec, df))))
            except Exception:  # noqa: BLE001 - any unreadable table is one failed check
                self.fail("evaluation.synthetic_statistics", f"{rel} cannot be described")
                continue
            if not _same(got, want):
                by_col = {e.get("column"): e for e in got if isinstance(e, Mapping)}
                bad = [str(_map(e).get("column")) for e in want
                       if not _same(e, by_col.get(_map(e).get("column")))] \
                    if isinstance(want, list) else []
                self.fail("evaluation.synthetic_statistics", f"differs from {rel}"
                          + (f" (columns {', '.join(bad[:5])})" if bad else ""))
        self.out.checked.append("evaluation.synthetic_statistics are those of "
                                + ", ".join(tables))

    def report(self) -> None:
        from fhirsynth.report.shareable import _fmt_eps

        path = self.d / REPORT_NAME
        if not path.is_file():  # listed but gone: also reported as missing (or not given)
            self.out.not_checked.append(f"the contents of {REPORT_NAME} (not in the folder)")
            return
        try:
            import pypdf
        except ImportError:
            self.out.not_checked.append(f"the contents of {REPORT_NAME} (pypdf not installed)")
            return
        import logging

        # a damaged file makes pypdf log its own lines ("EOF marker not found"); the
        # verdict below says it once, in verify's words
        plog = logging.getLogger("pypdf")
        level = plog.level
        plog.setLevel(logging.CRITICAL)
        try:
            pages = [pg.extract_text() or "" for pg in pypdf.PdfReader(str(path)).pages]
        except Exception:  # noqa: BLE001 - pypdf raises many kinds on a damaged file
            self.fail(REPORT_NAME, "not a readable PDF")
            return
        finally:
            plog.setLevel(level)
        first = {ln.strip() for ln in (pages[0] if pages else "").splitlines()}
        flat = "".join("".join(pages).split())
        eps, dlt = _number(self.r.get("epsilon_total")), _number(self.r.get("delta_total"))
        if eps is not None and f"ε = {_fmt_eps(eps)}" not in first:
            self.fail("epsilon_total", f"{eps:g} is not the epsilon on {REPORT_NAME}'s title page")
        if dlt is not None and f"δ = {dlt:g}" not in first:
            self.fail("delta_total", f"{dlt:g} is not the delta on {REPORT_NAME}'s title page")
        if f"run {self.r.get('run_id')}" not in first:
            self.fail("run_id", f"is not the run on {REPORT_NAME}'s title page")
        steps = self.r.get("steps")
        if eps is not None and isinstance(steps, list):
            e_sum = math.fsum(_number(_map(x).get("epsilon")) or 0.0 for x in steps)
            said = f"{len(steps)} steps add up to epsilon {e_sum:.6g} of {eps:g}"
            if "".join(said.split()) not in flat:
                self.fail("steps", f"{REPORT_NAME} does not say '{said}'")
        sh = _map(_map(self.r.get("evaluation")).get("safe_harbor"))
        if "passed" in sh:
            n = len(sh.get("findings") or [])
            said = "no identifier found" if sh["passed"] else f"{n} finding(s), see below"
            if "".join(said.split()) not in flat:
                self.fail("evaluation.safe_harbor", f"{REPORT_NAME} does not say '{said}'")
        for key in ("spec_sha256", "config_sha256"):
            if not isinstance(self.r.get(key), str) or self.r[key] not in flat:
                self.fail(key, f"is not among the hashes printed in {REPORT_NAME}")
        for o in self.r.get("outputs", []):
            if isinstance(o, Mapping) and o.get("path") != REPORT_NAME and \
                    str(o.get("sha256")) not in flat:
                self.fail(f"outputs ({_show(o.get('path'))})",
                          f"sha256 is not the one printed in {REPORT_NAME}")
        # every hash the report prints is one the record holds: an output removed from both
        # the folder and the record's list still has its hash on the report's page
        known = set(_hashes(self.r))
        extra = [h for h in _HASH.findall(flat) if h not in known]
        if extra:
            self.fail("outputs", f"{REPORT_NAME} prints {len(extra)} hash(es) that audit.json "
                      "does not hold (an output removed from the release and its record?)")
        self.out.checked.append(f"{REPORT_NAME} states the same epsilon, delta, run, number "
                                "and sum of steps, Safe Harbor verdict, spec and config "
                                "hashes and output hashes, and prints no other hash")

    def internal(self) -> None:
        want = _map(self.r.get("evaluation")).get("internal_evaluation_sha256")
        path = self.d / EVALUATION_NAME
        if want is None:
            self.out.not_checked.append("internal_evaluation_sha256 (not in the record)")
        elif not path.is_file():
            self.out.not_checked.append(f"internal_evaluation_sha256 ({EVALUATION_NAME} is "
                                        "not present: internal/ stays with the custodian)")
        else:
            try:
                got = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                got = None
            if got != want:
                self.fail("evaluation.internal_evaluation_sha256",
                          f"is not the sha256 of {EVALUATION_NAME}")
            self.out.checked.append(f"internal_evaluation_sha256 matches {EVALUATION_NAME}")


def check_record(record: Mapping[str, Any], directory: str | Path) -> Consistency:
    """Check ``record`` (a parsed ``audit.json``) against itself and ``directory``'s files.

    Parameters
    ----------
    record : mapping
        The audit record as read from ``directory/audit.json``.
    directory : str or Path
        The release directory (``model.json``, ``internal/evaluation.json`` are read).

    Returns
    -------
    Consistency
        The failed checks, the checks made, and what could not be checked.
    """
    from fhirsynth.report.audit import OLD_SCHEMAS, SCHEMA_VERSION

    c = _Checker(record, Path(directory))
    if record.get("schema") not in (SCHEMA_VERSION, *OLD_SCHEMAS):
        c.fail("schema", f"{_show(record.get('schema'))} is not {SCHEMA_VERSION!r}")
    c.types()
    c.config()
    steps = c.steps()
    if steps is not None:
        c.budget(steps)
    c.cross_references()
    c.model(steps)
    c.report()
    c.internal()
    return c.out
