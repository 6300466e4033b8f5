"""The report's released marginals on a dense network (many columns, four parents each)."""

from __future__ import annotations

import time

import numpy as np

from fhirsynth.domain import Column, TableSpec
from fhirsynth.model import FittedModel, Node
from fhirsynth.report.summary import MARGINAL_DRAWS, model_summary
from learn_nets import exact_joint, known_model


def _dense(d: int = 45, seed: int = 0) -> FittedModel:
    """Binary and 5-state columns, each with four random earlier parents (a large cohort
    at a generous epsilon gives such networks; exact elimination on them needs tables of
    billions of cells)."""
    rng = np.random.default_rng(seed)
    cols, nodes = [], []
    for j in range(d):
        k = 2 if j % 3 else 5
        col = Column(name=f"x{j}", categories=tuple(f"s{i}" for i in range(k)), nullable=False)
        cols.append(col)
        parents = tuple(f"x{i}" for i in sorted(rng.choice(j, size=min(j, 4), replace=False)))
        pcard = int(np.prod([cols[int(p[1:])].n_states for p in parents]))
        nodes.append(Node(col.name, col.state_labels(), parents,
                          rng.dirichlet(np.full(k, 0.7), size=pcard).T))
    return FittedModel(spec=TableSpec(name="dense", columns=tuple(cols)), nodes=nodes,
                       budget={"steps": []})


def test_dense_network_summary_is_fast_and_each_marginal_sums_to_one() -> None:
    t0 = time.perf_counter()
    summary = model_summary(_dense())
    assert time.perf_counter() - t0 < 20
    assert len(summary["released_marginals"]) == 45
    for m in summary["released_marginals"]:
        assert abs(sum(m["values"]) - 1) < 1e-5


def test_released_marginals_match_exact_inference_within_sampling_error() -> None:
    model = known_model()
    got = {m["columns"][0]: np.array(m["values"])
           for m in model_summary(model)["released_marginals"]}
    for name in ("B", "C", "D"):
        exact = exact_joint(model, [name])
        # booleans are shown on the evaluation states (false, true, then empty ones)
        assert not got[name][exact.size:].any()
        got[name] = got[name][:exact.size]
        # binomial standard error of a share from MARGINAL_DRAWS draws, 5 of them
        bound = 5 * np.sqrt(exact * (1 - exact) / MARGINAL_DRAWS) + 1e-6
        assert np.all(np.abs(got[name] - exact) <= bound), name
