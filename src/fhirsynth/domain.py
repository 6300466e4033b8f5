"""Public domains: what each patient column may hold, declared before any data is read.

A :class:`TableSpec` lists the columns of the patient table with their *public* domain:
category lists for categorical columns, clinical bounds (and optional bin edges and point
masses) for numeric ones, and the role a column plays (feature, target, identifier to drop,
record key).  Ingest, encode, the model and export all read the same spec, so nothing about
a domain is ever taken from the private data.

Two file forms load into a :class:`TableSpec`:

* the minimal ``*.schema.json`` form (``{"columns": {name: {type, domain|bounds, integer,
  nullable}}, "target": ..., "drop": [...]}``), read as it is;
* the YAML feature-spec form (``columns:`` as a list of mappings with ``name``), whose
  extra keys (``source:`` and the like) are kept opaque for the FHIR feature extractor.

A column entry that still holds :data:`PLACEHOLDER_KEY` (an unedited schema skeleton) is
refused, naming the first such column.  A key the loader does not know (at the top level or in
a column entry, e.g. ``nulable``) is refused too, naming it and the closest known key.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from fhirsynth.errors import SpecError

__all__ = [
    "MISSING",
    "OTHER",
    "COLUMN_KEYS",
    "PLACEHOLDER_KEY",
    "TOP_LEVEL_KEYS",
    "Column",
    "TableSpec",
    "load_spec",
]

Kind = Literal["categorical", "numeric", "boolean"]
Role = Literal["feature", "target", "drop", "key", "identifier", "quasi_identifier", "derived"]

MISSING = "<missing>"
OTHER = "<other>"
#: a column entry holding this key is an unedited skeleton placeholder: the loader refuses it
PLACEHOLDER_KEY = "fill_in"

#: keys a column entry may hold (both file forms, ``Column.to_dict`` output, skeleton hints);
#: ``source`` is the opaque FHIR extraction rule, its own keys are not checked here
COLUMN_KEYS = frozenset({
    "name", "type", "kind", "domain", "categories", "other", "bounds", "integer", "edges",
    "bins", "point_masses", "nullable", "role", "drop", "identifier", "unit", "description",
    "source", PLACEHOLDER_KEY, "name_suggests",
})
#: keys the top level of a spec may hold; ``structure``, ``sensitive`` and ``fold`` are kept
#: in :attr:`TableSpec.options` for the learner, the privacy evaluation and the CSV reader
TOP_LEVEL_KEYS = frozenset({
    "name", "columns", "target", "positive", "drop", "note", "description", "reference_date",
    "structure", "sensitive", "fold", "constraints",
})
_OPTION_KEYS = ("structure", "sensitive", "fold", "constraints")

_KINDS = ("categorical", "numeric", "boolean")
_ROLES = ("feature", "target", "drop", "key", "identifier", "quasi_identifier", "derived")
#: integer columns with at most this many values get one state per value
MAX_INTEGER_STATES = 100
#: most values a modelled column may declare (categories, bins or edges): a column beyond
#: it has no cell a DP count could estimate at any practical epsilon, and its tables would
#: not fit in memory (a trial's 200,000-category column ran for minutes at 2+ GB)
MAX_STATES = 10_000
DEFAULT_BINS = 20


@dataclass(frozen=True, kw_only=True)
class Column:
    """One column of the patient table and its public domain.

    Parameters
    ----------
    name : str
        Column name in the patient table.
    kind : {"categorical", "numeric", "boolean"}
        How the column is modelled.
    categories : tuple of str
        Categorical only: the declared value list, in a fixed order.  Numbers and booleans
        are kept as the strings data values are matched by (``0`` as ``"0"``, ``1.0`` as
        ``"1"``, ``True`` as ``"true"``); a bare string is refused (not one category per
        character).
    other : bool
        Categorical only: values outside ``categories`` map to one ``<other>`` state
        (otherwise they are an input error).
    bounds : (float, float)
        Numeric only: public clinical bounds; values outside are clipped.
    integer : bool
        Numeric only: values are whole numbers and are sampled as such.
    edges : tuple of float
        Numeric only: explicit public bin edges, first and last equal to the bounds.
    bins : int
        Numeric only: number of equal-width bins when ``edges`` is not given and the
        column is not a small-range integer.
    point_masses : tuple of float
        Numeric only: exact values modelled as states of their own (a lab value of 0).
    nullable : bool
        Whether missing is a legitimate state (it then gets a ``<missing>`` state).
    role : str
        ``feature`` or ``target`` are modelled; ``drop``, ``identifier`` and
        ``quasi_identifier`` never enter the model; ``key`` is regenerated in the output;
        ``derived`` is not modelled but computed from modelled columns after sampling
        (post-processing, e.g. birth year from age).
    unit : str
        UCUM unit of a numeric column, for export and the report.
    description : str
        Free text for the report (public).
    source : mapping
        Opaque extraction rule for the FHIR feature extractor.
    """

    name: str
    kind: Kind = "categorical"
    categories: tuple[str, ...] = ()
    other: bool = False
    bounds: tuple[float, float] | None = None
    integer: bool = False
    edges: tuple[float, ...] = ()
    bins: int = DEFAULT_BINS
    point_masses: tuple[float, ...] = ()
    nullable: bool = True
    role: Role = "feature"
    unit: str = ""
    description: str = ""
    source: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        where = f"column {self.name!r}"
        if not self.name:
            raise SpecError("a column has an empty name")
        self._normalise_lists(where)
        if self.kind not in _KINDS:
            raise SpecError(f"{where}: kind ({self.kind!r}) must be one of {_KINDS}")
        if self.role not in _ROLES:
            raise SpecError(f"{where}: role ({self.role!r}) must be one of {_ROLES}")
        if not self.modelled:
            return
        if self.kind == "categorical":
            if not self.categories:
                raise SpecError(f"{where}: a categorical column needs a declared category list")
            if len(set(self.categories)) != len(self.categories):
                raise SpecError(f"{where}: the category list has duplicates")
        declared = (len(self.categories) if self.kind == "categorical"
                    else max(self.bins, len(self.edges) - 1) if self.kind == "numeric" else 2)
        if declared > MAX_STATES:
            raise SpecError(
                f"{where}: {declared} {'categories' if self.kind == 'categorical' else 'bins'}"
                f", more than the {MAX_STATES:,} a modelled column may have: no DP count of "
                "so many cells is useful; group the values (e.g. ICD-10 codes into their "
                "3-character categories), or give the column role 'drop'")
        if self.kind == "numeric":
            self._check_numeric(where)

    def _normalise_lists(self, where: str) -> None:
        """Categories as a tuple of strings, each as the encoder spells a data value
        (:func:`_category_str`: 1, 1.0 and "1" are one category, True is "true"); bounds,
        edges and point masses as tuples, so that a column built from lists still hashes."""
        cats = () if self.categories is None else self.categories
        if isinstance(cats, str | bytes):
            raise SpecError(f"{where}: categories must be a list of values, not one string "
                            "(it would be read as one category per character); a single "
                            "category is a list of one")
        if not isinstance(cats, Iterable) or isinstance(cats, Mapping):
            raise SpecError(f"{where}: categories must be a list of values, not "
                            f"{type(cats).__name__}")
        values = []
        for i, v in enumerate(cats):
            v = v.item() if isinstance(v, np.generic) else v
            if isinstance(v, float) and not math.isfinite(v):
                raise SpecError(f"{where}: categories[{i}] is not a finite number (a NaN "
                                "is a missing value, not a category)")
            if not isinstance(v, str | int | float):
                raise SpecError(f"{where}: categories[{i}] is a {type(v).__name__}: a "
                                "category is a string, a number or a boolean (compared as "
                                "strings: 1, 1.0 and '1' are one category)")
            values.append(_category_str(v))
        object.__setattr__(self, "categories", tuple(values))
        for key in ("bounds", "edges", "point_masses"):
            seq = getattr(self, key)
            if isinstance(seq, Sequence | np.ndarray) and not isinstance(
                    seq, str | bytes | tuple):
                object.__setattr__(self, key, tuple(seq))

    def _check_numeric(self, where: str) -> None:
        if self.bounds is None:
            raise SpecError(
                f"{where}: a numeric column needs public bounds (bounds: [low, high]); "
                "bounds are never read off the data"
            )
        lo, hi = self.bounds
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise SpecError(f"{where}: bounds ({lo}, {hi}) must be finite with low < high")
        if self.edges:
            e = self.edges
            if len(e) < 2 or any(b <= a for a, b in zip(e, e[1:], strict=False)):
                raise SpecError(f"{where}: edges must be strictly increasing, at least two")
            if e[0] != lo or e[-1] != hi:
                raise SpecError(f"{where}: edges must start at {lo} and end at {hi}")
        if self.bins < 1:
            raise SpecError(f"{where}: bins ({self.bins}) must be at least 1")
        for p in self.point_masses:
            if not lo <= p <= hi:
                raise SpecError(f"{where}: point mass {p} lies outside the bounds ({lo}, {hi})")

    @property
    def modelled(self) -> bool:
        """Whether the column enters the Bayesian network."""
        return self.role in ("feature", "target")

    @property
    def fhir_rule(self) -> bool:
        """Whether the column is extracted from FHIR resources (``source: {from: ...}``)."""
        return isinstance(self.source, dict) and "from" in self.source

    # ----------------------------------------------------------------- states
    def bin_edges(self) -> np.ndarray:
        """Public bin edges of a numeric column (data-independent)."""
        assert self.kind == "numeric" and self.bounds is not None
        lo, hi = self.bounds
        if self.edges:
            return np.asarray(self.edges, dtype=float)
        if self.integer and hi - lo + 1 <= MAX_INTEGER_STATES:
            lo_i, hi_i = math.ceil(lo), math.floor(hi)
            # one state per integer: edges at half-integers
            return np.arange(lo_i, hi_i + 2, dtype=float) - 0.5
        return np.linspace(lo, hi, self.bins + 1)

    @property
    def one_state_per_integer(self) -> bool:
        """Whether a numeric column has one state per integer value (no bins to draw in)."""
        if self.kind != "numeric" or self.bounds is None or not self.integer or self.edges:
            return False
        e = self.bin_edges()
        return len(e) - 1 == round(e[-1] - e[0])

    def state_labels(self) -> list[str]:
        """Human-readable label of each encoded state, in code order."""
        if self.kind == "boolean":
            labels = ["false", "true"]
        elif self.kind == "categorical":
            labels = list(self.categories) + ([OTHER] if self.other else [])
        else:
            labels = [_fmt(p) for p in self.point_masses]
            e = self.bin_edges()
            if self.one_state_per_integer:
                labels += [_fmt(v + 0.5) for v in e[:-1]]
            else:
                last = len(e) - 2
                labels += [
                    f"[{_fmt(a)}, {_fmt(b)}{']' if i == last else ')'}"
                    for i, (a, b) in enumerate(zip(e[:-1], e[1:], strict=False))
                ]
        if self.nullable:
            labels.append(MISSING)
        return labels

    @property
    def n_states(self) -> int:
        return len(self.state_labels())

    def to_dict(self) -> dict[str, Any]:
        """The public description of the column (JSON-ready, no source rule)."""
        d: dict[str, Any] = {"name": self.name, "kind": self.kind, "role": self.role}
        if self.kind == "categorical":
            d["categories"] = list(self.categories)
            d["other"] = self.other
        if self.kind == "numeric":
            d["bounds"] = list(self.bounds) if self.bounds else None
            d["integer"] = self.integer
            if self.edges:
                d["edges"] = list(self.edges)
            d["bins"] = self.bins
            if self.point_masses:
                d["point_masses"] = list(self.point_masses)
        d["nullable"] = self.nullable
        if self.unit:
            d["unit"] = self.unit
        if self.description:
            d["description"] = self.description
        return d


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True, kw_only=True)
class TableSpec:
    """The public description of a patient table: ordered columns and their domains."""

    name: str
    columns: tuple[Column, ...]
    target: str | None = None
    positive: str | None = None
    reference_date: str | None = None
    description: str = ""
    #: mapping kept for the FHIR extractor (reference date, windows...): opaque here
    options: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        cols = self.columns
        if isinstance(cols, str | bytes | Mapping) or not isinstance(cols, Iterable):
            raise SpecError(f"spec {self.name!r}: columns must be a list of Column, not "
                            f"{type(cols).__name__}")
        cols = tuple(cols)  # a list would leave the frozen spec unhashable
        for i, c in enumerate(cols):
            if not isinstance(c, Column):
                raise SpecError(f"spec {self.name!r}: columns[{i}] is a {type(c).__name__}, "
                                "not a Column")
        object.__setattr__(self, "columns", cols)
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpecError(f"spec {self.name!r}: duplicate column names {dupes}")
        if self.target is not None and self.target not in names:
            raise SpecError(f"spec {self.name!r}: target ({self.target!r}) is not a column")
        if self.positive is not None:
            self._check_positive()

    def _check_positive(self) -> None:
        """``positive`` names a state of a categorical or boolean target (a boolean's
        ``true`` / ``false`` in any case); numbers are kept as the strings data values are
        matched by."""
        where = f"spec {self.name!r}: positive ({self.positive!r})"
        if self.target is None:
            raise SpecError(f"{where} needs a target: it names the target's positive state")
        target = self[self.target]
        pos = _category_str(self.positive).strip()
        if target.kind == "boolean":
            if pos.lower() not in ("true", "false"):
                raise SpecError(f"{where} must be true or false: the target "
                                f"{self.target!r} is boolean")
            pos = pos.lower()
        elif target.kind == "categorical" and pos not in target.categories:
            cats = ", ".join(target.categories[:10]) + (
                " ..." if len(target.categories) > 10 else "")
            raise SpecError(f"{where} is not a category of the target {self.target!r} "
                            f"(its categories: {cats})")
        object.__setattr__(self, "positive", pos)

    def __getitem__(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.columns)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def modelled(self) -> list[Column]:
        """Columns that enter the model, in spec order."""
        return [c for c in self.columns if c.modelled]

    @property
    def has_fhir_rules(self) -> bool:
        """Whether this is a FHIR feature spec (some column has a FHIR extraction rule)."""
        return any(c.fhir_rule for c in self.columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "positive": self.positive,
            "reference_date": self.reference_date,
            "columns": [c.to_dict() for c in self.columns],
        }

    def fingerprint(self) -> str:
        """sha256 of the canonical public description (ties reports to the spec)."""
        import hashlib

        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    # ---------------------------------------------------------------- loading
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, origin: str = "<spec>") -> TableSpec:
        """Build a spec from either file form (see the module docstring)."""
        if not isinstance(data, Mapping) or "columns" not in data:
            near = ([k for k in data if isinstance(k, str)
                     and difflib.get_close_matches(k, ["columns"], n=1, cutoff=0.7)]
                    if isinstance(data, Mapping) else [])
            raise SpecError(f"{origin}: a spec needs a 'columns' entry"
                            + (f" (found {near[0]!r}: a typo?)" if near else ""))
        _refuse_unknown_keys(origin, "the top level", data, TOP_LEVEL_KEYS)
        raw = data["columns"]
        drop = set(data.get("drop", ()) or ())
        items: Iterable[tuple[str, Mapping[str, Any]]]
        if isinstance(raw, Mapping):
            items = [(str(k), v) for k, v in raw.items()]
        elif isinstance(raw, Sequence) and not isinstance(raw, str | bytes):
            items = []
            for i, entry in enumerate(raw):
                if not isinstance(entry, Mapping) or "name" not in entry:
                    raise SpecError(f"{origin}: columns[{i}] needs a 'name'")
                items.append((str(entry["name"]), entry))
        else:
            raise SpecError(f"{origin}: 'columns' must be a mapping or a list")
        for name, entry in items:
            if isinstance(entry, Mapping):
                _refuse_unknown_keys(origin, f"column {name!r}", entry, COLUMN_KEYS)
        pending = [n for n, e in items if isinstance(e, Mapping) and PLACEHOLDER_KEY in e]
        if pending:
            more = f" ({len(pending) - 1} more after it)" if len(pending) > 1 else ""
            raise SpecError(
                f"{origin}: column {pending[0]!r} is still to be filled in{more}: declare its "
                "type and public domain (or a role such as identifier or drop), then delete "
                f"its {PLACEHOLDER_KEY!r} entry"
            )
        target = data.get("target")
        columns = []
        for name, entry in items:
            role = "target" if name == target else None
            if name in drop:
                role = "drop"
            try:
                columns.append(_column_from_dict(name, entry, role))
            except SpecError as exc:
                raise SpecError(f"{origin}: {exc}") from None
            except (TypeError, ValueError) as exc:
                raise SpecError(f"{origin}: column {name!r}: {exc}") from None
        for name in drop - {c.name for c in columns}:
            columns.append(Column(name=name, role="drop"))
        if not columns:
            raise SpecError(f"{origin}: 'columns' is empty: declare at least one column")
        options = {k: data[k] for k in _OPTION_KEYS if k in data}
        try:
            spec = cls(
                name=str(data.get("name", Path(origin).stem)),
                columns=tuple(columns),
                target=target,
                positive=None if data.get("positive") is None else str(data["positive"]),
                reference_date=data.get("reference_date"),
                description=str(data.get("description", data.get("note", ""))),
                options=options,
            )
        except SpecError as exc:
            raise SpecError(f"{origin}: {exc}") from None
        spec = _with_code_states(spec)
        _check_structure(spec, origin)
        from fhirsynth.constraints import parse_rules

        parse_rules(spec, spec.options.get("constraints"), origin)  # refused at load
        return spec


def _with_code_states(spec: TableSpec) -> TableSpec:
    """``spec`` with each top code and bottom code a point mass of its column.

    A top code (``source: {top_code: 90}``, a FHIR age rule) ends the column's bounds and
    stands for "that value or more"; a birth year's lower bound stands for "that year or
    earlier" (:func:`fhirsynth.export.harmonise.top_codes`, ``bottom_codes``).  Values beyond
    are clipped onto the code, so the code is a state of its own, emitted exactly, not the
    edge of a bin drawn evenly.  Both are public facts of the spec.  A column with one state
    per integer already has that state and gets none.
    """
    from fhirsynth.export.harmonise import bottom_codes, top_codes

    tops, bottoms = top_codes(spec), bottom_codes(spec)
    columns = []
    for col in spec.columns:
        if col.modelled and col.kind == "numeric" and col.bounds is not None \
                and not col.one_state_per_integer:
            lo, hi = col.bounds
            codes = [v for v, at in ((bottoms.get(col.name), lo), (tops.get(col.name), hi))
                     if v is not None and v == at and v not in col.point_masses]
            if codes:
                col = replace(col, point_masses=(*col.point_masses, *codes))
        columns.append(col)
    return replace(spec, columns=tuple(columns))


def _check_structure(spec: TableSpec, origin: str) -> None:
    """A declared ``structure`` maps modelled columns to lists of other modelled columns,
    without a cycle; else one SpecError naming the file and the columns."""
    raw = spec.options.get("structure")
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        raise SpecError(f"{origin}: 'structure' must map a column to a list of its parent "
                        "columns")
    modelled = {c.name for c in spec.modelled}
    graph: dict[str, list[str]] = {}
    for child, parents in raw.items():
        if isinstance(parents, str | bytes) or not isinstance(parents, Sequence):
            raise SpecError(f"{origin}: structure of column {child!r}: must be a list of "
                            "columns")
        for name in [child, *parents]:
            if name not in modelled:
                raise SpecError(f"{origin}: structure names {name!r}, which is not a "
                                "modelled column")
        if child in parents:
            raise SpecError(f"{origin}: structure of column {child!r}: a column cannot be "
                            "its own parent")
        graph[str(child)] = [str(x) for x in parents]
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in graph:
        if state.get(start) == 2:
            continue  # reached, and checked, from an earlier column
        path: list[str] = []
        stack = [(start, iter(graph.get(start, ())))]
        while stack:
            node, it = stack[-1]
            if state.get(node) is None:
                state[node] = 1
                path.append(node)
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                path.pop()
                stack.pop()
            elif state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                raise SpecError(f"{origin}: the declared structure has a cycle: "
                                + " <- ".join(repr(c) for c in cycle))
            elif state.get(nxt) is None:
                stack.append((nxt, iter(graph.get(nxt, ()))))


def _refuse_unknown_keys(origin: str, where: str, entry: Mapping[str, Any],
                         known: frozenset[str]) -> None:
    """One SpecError naming the first key of ``entry`` not in ``known`` and its closest match."""
    unknown = [str(k) for k in entry if k not in known]
    if not unknown:
        return
    key = unknown[0]
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = (f"did you mean {close[0]!r}?" if close
            else f"known keys: {', '.join(sorted(known))}")
    more = f" ({len(unknown) - 1} more unknown key(s) after it)" if len(unknown) > 1 else ""
    raise SpecError(f"{origin}: {where}: unknown key {key!r}{more}; {hint}")


_TYPE_ALIASES = {
    "categorical": "categorical", "category": "categorical", "string": "categorical",
    "ordinal": "categorical", "numeric": "numeric", "number": "numeric", "float": "numeric",
    "integer": "numeric", "int": "numeric", "boolean": "boolean", "bool": "boolean",
    "flag": "boolean",
}


def _column_from_dict(name: str, d: Mapping[str, Any], role: str | None) -> Column:
    if not isinstance(d, Mapping):
        raise SpecError(f"column {name!r}: expected a mapping, got {type(d).__name__}")
    role = role or str(d.get("role", "feature"))
    if d.get("drop") is True or d.get("identifier") is True:
        role = "drop" if d.get("drop") is True else "identifier"
    raw_type = str(d.get("type", d.get("kind", "categorical"))).lower()
    if raw_type not in _TYPE_ALIASES:
        raise SpecError(f"column {name!r}: type ({raw_type!r}) must be one of "
                        f"{sorted(set(_TYPE_ALIASES))}")
    kind = _TYPE_ALIASES[raw_type]
    integer = bool(d.get("integer", raw_type in ("integer", "int")))
    cats = d.get("categories", d.get("domain", ()))
    if isinstance(cats, str | bytes) or not isinstance(cats, Sequence | None):
        raise SpecError(f"column {name!r}: the category list must be a list of values, "
                        f"not {_shown(cats) if isinstance(cats, str) else type(cats).__name__}")
    if kind == "numeric" and isinstance(cats, Sequence) and not d.get("bounds") and cats:
        raise SpecError(f"column {name!r}: numeric columns take 'bounds', not a category list")
    bounds = d.get("bounds")
    if bounds is not None:
        if isinstance(bounds, str | bytes) or not isinstance(bounds, Sequence) \
                or len(bounds) != 2:
            raise SpecError(f"column {name!r}: bounds must be [low, high]")
        try:
            bounds = (_number(name, "bounds[0]", bounds[0]),
                      _number(name, "bounds[1]", bounds[1]))
        except SpecError as exc:
            raise SpecError(f"{exc}: a numeric column needs both public bounds, "
                            "[low, high]") from None
    for key in ("edges", "point_masses"):
        values = d.get(key)
        if values is not None and (isinstance(values, str | bytes)
                                   or not isinstance(values, Sequence)):
            raise SpecError(f"column {name!r}: {key} must be a list of numbers")
        for i, x in enumerate(values or ()):
            _number(name, f"{key}[{i}]", x)
    bins = d.get("bins", DEFAULT_BINS)
    if isinstance(bins, bool) or not float(_number(name, "bins", bins)).is_integer():
        raise SpecError(f"column {name!r}: bins ({_shown(bins)}) must be a whole number")
    return Column(
        name=name,
        kind=kind,  # type: ignore[arg-type]
        categories=tuple(_category_str(c) for c in (cats or ())) if kind == "categorical" else (),
        other=bool(d.get("other", False)),
        bounds=bounds,
        integer=integer,
        edges=tuple(float(x) for x in d.get("edges", ()) or ()),
        bins=int(d.get("bins", DEFAULT_BINS)),
        point_masses=tuple(float(x) for x in d.get("point_masses", ()) or ()),
        nullable=bool(d.get("nullable", True)),
        role=role,  # type: ignore[arg-type]
        unit=str(d.get("unit", "")),
        description=str(d.get("description", "")),
        source=d.get("source"),
    )


def _shown(v: Any) -> str:
    """A schema value as its file spells it (``null``, ``true``, ``"ten"``, ``10``)."""
    return json.dumps(v) if v is None or isinstance(v, bool | int | float | str) \
        else type(v).__name__


def _number(column: str, key: str, v: Any) -> float:
    """``v`` as a float, or a :class:`SpecError` naming the column and the field.

    The schema is public, so its value is quoted (``bounds[1] (null) must be a number``).
    """
    try:
        if isinstance(v, bool) or v is None:
            raise TypeError
        return float(v)
    except (TypeError, ValueError):
        raise SpecError(f"column {column!r}: {key} ({_shown(v)}) must be a number") from None


def _category_str(v: Any) -> str:
    """Categories are compared as strings; 1, 1.0 and "1" are the same category."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


class _DuplicateKey(ValueError):
    """A JSON object of a spec file names one key twice."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (it keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if isinstance(key, str | int | float | bool) and key in seen:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_spec(path: str | Path) -> TableSpec:
    """Load a ``*.schema.json`` or a YAML feature spec from ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SpecError(f"{p}: spec file not found") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = (json.loads(text, object_pairs_hook=_unique_keys) if p.suffix == ".json"
                else yaml.load(text, Loader=_UniqueKeyLoader))  # noqa: S506 (a SafeLoader)
    except _DuplicateKey as exc:
        line = f" (line {exc.args[1]})" if len(exc.args) > 1 else ""
        raise SpecError(f"{p}: the key {exc.args[0]!r} appears twice in one mapping{line}; "
                        "the file would keep only the last, silently") from None
    except json.JSONDecodeError as exc:
        # json's messages end with "at" before the position, given here as line and column
        msg = exc.msg.removesuffix(" at")
        if "control character" in msg:
            msg += " (a line break or tab inside a quoted string?)"
        raise SpecError(f"{p}: line {exc.lineno} column {exc.colno}: {msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}" if mark is not None else "somewhere"
        raise SpecError(f"{p}: {at}: not valid YAML") from None
    except RecursionError:  # (json and yaml parse nested lists and objects recursively)
        raise SpecError(f"{p}: nested too deep to be a spec (lists or objects inside one "
                        "another hundreds of levels deep)") from None
    return TableSpec.from_dict(data, origin=str(p))
