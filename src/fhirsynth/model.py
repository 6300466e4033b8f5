"""The fitted model: network structure, conditional tables, public spec and budget table.

A :class:`FittedModel` holds only differentially private outputs and public facts: the
parents of each node, the post-processed noisy conditional tables (in pgmpy's
``TabularCPD`` layout), the public :class:`~fhirsynth.domain.TableSpec` and the
accountant's budget table.  It never holds patient rows or exact counts.  It is saved as
JSON (written to a temporary file and moved into place), never pickled, and is available as
a pgmpy ``DiscreteBayesianNetwork`` for inference and cross-checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from fhirsynth._atomic import write_bytes_atomic
from fhirsynth.domain import TableSpec
from fhirsynth.errors import ModelError

__all__ = ["FORMAT", "FittedModel", "Node"]

FORMAT = "fhirsynth-model"
FORMAT_VERSION = 1


@dataclass
class Node:
    """One node: a spec column, or a public coarsening of one (``group_of`` set).

    ``cpd`` has shape ``(len(states), prod(parent cards))``; parent configurations are
    ordered with the first parent slowest, as in pgmpy.  A coarsening node has one parent,
    its column, and a deterministic table given by ``mapping`` (state -> group).  ``slopes``
    (numeric columns with value bins): the relative slope of the density inside each bin,
    from the model's own one-way marginal (:func:`fhirsynth.encode.bin_slopes`); decoding
    draws inside a bin from it (None: uniformly).
    """

    name: str
    states: list[str]
    parents: tuple[str, ...]
    cpd: np.ndarray
    group_of: str | None = None
    mapping: np.ndarray | None = None
    slopes: np.ndarray | None = None

    @property
    def card(self) -> int:
        return len(self.states)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "states": self.states,
                             "parents": list(self.parents)}
        if self.group_of is not None:
            assert self.mapping is not None
            d["group_of"] = self.group_of
            d["mapping"] = self.mapping.tolist()
        else:
            d["cpd"] = np.round(self.cpd, 12).tolist()
        if self.slopes is not None:
            d["slopes"] = np.round(self.slopes, 4).tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], cards: dict[str, int]) -> Node:
        parents = tuple(d["parents"])
        if "group_of" in d:
            mapping = np.asarray(d["mapping"], np.int64)
            cpd = np.zeros((len(d["states"]), mapping.size))
            cpd[mapping, np.arange(mapping.size)] = 1.0
            return cls(d["name"], list(d["states"]), parents, cpd, d["group_of"], mapping)
        cpd = np.asarray(d["cpd"], float)
        want = (len(d["states"]), int(np.prod([cards[p] for p in parents], dtype=np.int64)))
        if cpd.shape != want:
            raise ModelError(f"node {d['name']!r}: table shape {cpd.shape}, expected {want}")
        if cpd.size and not (np.all(np.isfinite(cpd)) and np.all(cpd >= 0) and np.all(cpd <= 1)
                             and np.allclose(cpd.sum(axis=0), 1.0, atol=1e-6)):
            raise ModelError(f"node {d['name']!r}: the table must hold probabilities in [0, 1] "
                             "with each parent configuration's column summing to 1")
        slopes = None if d.get("slopes") is None else np.asarray(d["slopes"], float)
        if slopes is not None and (slopes.ndim != 1 or not np.all(np.abs(slopes) <= 2.0)):
            raise ModelError(f"node {d['name']!r}: bin slopes must be a list of numbers "
                             "in [-2, 2]")
        return cls(d["name"], list(d["states"]), parents, cpd, slopes=slopes)


@dataclass
class FittedModel:
    """A fitted DP Bayesian network over the modelled columns of ``spec``.

    Attributes
    ----------
    spec : TableSpec
        The public domain the model was fitted on.
    nodes : list of Node
        All nodes in a topological order (columns and coarsening nodes).
    budget : dict
        The accountant's budget table (:meth:`fhirsynth.privacy.budget.Accountant.table`).
    info : dict
        Public facts about the fit (degree, configuration, the noisy patient count).
    version : str
        fhirsynth version that fitted the model.
    output : dict or None
        The spec's export rules (:func:`fhirsynth.export.harmonise.output_rules`: which
        columns are the age and the derived birth year, the top code, the reference year,
        the ages and birth years only the source rules tell, such as the year of a
        ``BIRTHDATE`` column; ``birth_years`` is written even when empty),
        so that a table sampled from the saved model alone matches the release's; None for
        a model saved before they were kept (and no ``birth_years`` for one saved before
        that list was: :func:`fhirsynth.export.harmonise.saved_birth_years`).
    """

    spec: TableSpec
    nodes: list[Node]
    budget: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    output: dict[str, Any] | None = None

    @cached_property
    def by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    @property
    def columns(self) -> list[str]:
        """The modelled spec columns, in spec order."""
        return [c.name for c in self.spec.modelled]

    def graph(self) -> dict[str, list[str]]:
        """Parents of each modelled column, through coarsening nodes (``age`` not ``age~g``)."""
        out = {}
        for name in self.columns:
            out[name] = [self.by_name[p].group_of or p for p in self.by_name[name].parents]
        return out

    @cached_property
    def network(self) -> Any:
        """The model as a pgmpy ``DiscreteBayesianNetwork`` with ``TabularCPD`` s."""
        from fhirsynth._pgmpy import network_classes

        DiscreteBayesianNetwork, TabularCPD = network_classes()
        net = DiscreteBayesianNetwork()
        net.add_nodes_from([n.name for n in self.nodes])
        net.add_edges_from([(p, n.name) for n in self.nodes for p in n.parents])
        cpds = []
        for n in self.nodes:
            ev = list(n.parents)
            names = {n.name: n.states, **{p: self.by_name[p].states for p in ev}}
            cpds.append(TabularCPD(
                n.name, n.card, n.cpd, evidence=ev or None,
                evidence_card=[self.by_name[p].card for p in ev] or None, state_names=names,
            ))
        net.add_cpds(*cpds)
        return net

    # --------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        spec = self.spec.to_dict()
        # the FHIR extraction rules (public configuration) travel with the model, so a
        # loaded model's samples can be written as FHIR (fhirsynth.export.fhir.write_fhir)
        for col, cd in zip(self.spec.columns, spec["columns"], strict=True):
            if col.fhir_rule:
                cd["source"] = col.source
        d = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "fhirsynth": self.version,
            "spec": spec, "info": self.info, "budget": self.budget,
            "nodes": [n.to_dict() for n in self.nodes],
        }
        if self.output is not None:
            d["output"] = self.output
        return d

    def to_json(self, path: str | Path) -> None:
        """Write the model as JSON atomically (temporary file, then rename)."""
        p = Path(path)
        blob = json.dumps(self.to_dict(), separators=(",", ":")).encode()
        try:
            write_bytes_atomic(p, blob)
        except OSError as exc:
            raise ModelError(f"{p}: cannot write the model ({exc.strerror})") from None

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, origin: str = "<model>") -> FittedModel:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ModelError(f"{origin}: not a fhirsynth model file")
        if d.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"{origin}: unsupported model format_version "
                             f"{d.get('format_version')!r} (expected {FORMAT_VERSION})")
        try:
            spec = TableSpec.from_dict(d["spec"], origin=origin)
            cards: dict[str, int] = {}
            nodes = []
            for nd in d["nodes"]:
                node = Node.from_dict(nd, cards)
                cards[node.name] = node.card
                nodes.append(node)
            output = _output_rules(d.get("output"), spec)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{origin}: malformed model file ({type(exc).__name__}: {exc})") \
                from None
        return cls(spec=spec, nodes=nodes, budget=d["budget"], info=d.get("info", {}),
                   version=str(d.get("fhirsynth", "")), output=output)

    @classmethod
    def from_json(cls, path: str | Path) -> FittedModel:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{p}: model file not found") from None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ModelError(f"{p}: not a JSON model file") from None
        return cls.from_dict(data, origin=str(p))


def _output_rules(raw: Any, spec: TableSpec) -> dict[str, Any] | None:
    """The saved export rules, checked: column names of the spec and numbers (or None)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise TypeError("'output' must be a mapping")
    for key in ("age", "birth_year", "deceased"):
        if key in raw and raw[key] not in spec:
            raise ValueError(f"output.{key} ({raw[key]!r}) is not a column of the spec")
    if "age" in raw:
        float(raw["top_code"])
    tops = raw.get("top_codes", {})
    if not isinstance(tops, dict) or any(c not in spec for c in tops):
        raise ValueError("output.top_codes must map columns of the spec to numbers")
    for v in tops.values():
        float(v)
    for key in ("ages", "birth_years"):
        names = raw.get(key, [])
        if not isinstance(names, list) or any(c not in spec for c in names):
            raise ValueError(f"output.{key} must list columns of the spec")
    if "birth_year" in raw and (isinstance(raw.get("reference_year"), bool)
                                or not isinstance(raw.get("reference_year"), int)):
        raise ValueError("output.reference_year must be an integer year")
    if "birthday_passed" in raw and not 0.0 <= float(raw["birthday_passed"]) <= 1.0:
        raise ValueError("output.birthday_passed must be a share in [0, 1]")
    if "constraints" in raw:
        from fhirsynth.constraints import parse_rules

        parse_rules(spec, raw["constraints"], "output.constraints")
    return dict(raw)
