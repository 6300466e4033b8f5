"""A small known Bayesian network to generate data from, and exact joints via pgmpy."""

from __future__ import annotations

import numpy as np

from fhirsynth.domain import Column, TableSpec
from fhirsynth.model import FittedModel, Node

SPEC = TableSpec(name="known", columns=(
    Column(name="A", categories=("a0", "a1", "a2"), nullable=False),
    Column(name="B", kind="boolean", nullable=False),
    Column(name="C", categories=("c0", "c1", "c2"), nullable=False),
    Column(name="D", kind="boolean", nullable=False),
    Column(name="E", kind="numeric", bounds=(0.0, 10.0), integer=True,
           edges=(0.0, 2.0, 4.0, 6.0, 8.0, 10.0), nullable=False),
))


def known_model() -> FittedModel:
    """A -> B -> C, (A, C) -> D, E independent; strong dependencies."""
    a = np.array([[0.5], [0.3], [0.2]])
    b = np.array([[0.9, 0.2, 0.5], [0.1, 0.8, 0.5]])
    c = np.array([[0.7, 0.1], [0.2, 0.3], [0.1, 0.6]])
    d = np.array([[0.9, 0.5, 0.1, 0.8, 0.3, 0.2, 0.6, 0.4, 0.05],
                  [0.1, 0.5, 0.9, 0.2, 0.7, 0.8, 0.4, 0.6, 0.95]])
    e = np.array([[0.1], [0.3], [0.2], [0.25], [0.15]])
    labels = {c.name: c.state_labels() for c in SPEC.columns}
    nodes = [
        Node("A", labels["A"], (), a), Node("B", labels["B"], ("A",), b),
        Node("C", labels["C"], ("B",), c), Node("D", labels["D"], ("A", "C"), d),
        Node("E", labels["E"], (), e),
    ]
    return FittedModel(spec=SPEC, nodes=nodes, budget={"steps": []})


def exact_joint(model: FittedModel, columns: list[str]) -> np.ndarray:
    """Joint P(columns) by pgmpy's variable elimination, axes in ``columns`` order."""
    from pgmpy.inference import VariableElimination

    f = VariableElimination(model.network).query(columns, joint=True, show_progress=False)
    return np.transpose(f.values, [f.variables.index(c) for c in columns])


