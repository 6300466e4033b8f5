"""The released marginal of a numeric column is spread over the report's 16 evaluation bins the
way the synthetic values are (trial 14: 20 model bins moved by their midpoints made the
"released" bars spike at every fourth bin beside a smooth synthetic histogram)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fhirsynth.domain import Column
from fhirsynth.evaluate.discretise import discretise_column
from fhirsynth.report.summary import _on_eval_states


@pytest.mark.parametrize("col", [
    Column(name="age", kind="numeric", bounds=(0, 90), integer=False, nullable=True),
    Column(name="glucose", kind="numeric", bounds=(50, 300), nullable=False),
    Column(name="age", kind="numeric", bounds=(0, 90), integer=True, nullable=True, bins=20,
           edges=tuple(np.linspace(0, 90, 21))),
])
def test_a_uniform_model_marginal_stays_uniform_on_the_evaluation_bins(col: Column) -> None:
    n_states = len(col.state_labels())
    n_value = len(col.bin_edges()) - 1
    values = np.zeros(n_states)
    values[:n_value] = 0.9 / n_value
    if col.nullable:
        values[-1] = 0.1
    labels, out = _on_eval_states(col, values)
    # what uniform synthetic values in the bounds give on the same bins
    rng = np.random.default_rng(0)
    x = rng.uniform(*col.bounds, 200_000)
    if col.integer:
        x = np.round(x)
    synth = np.bincount(discretise_column(col, pd.Series(x)), minlength=len(labels))
    synth = 0.9 * synth / synth.sum()
    k = len(labels) - 2  # value bins (then other, missing)
    assert np.allclose(out[:k], synth[:k], atol=0.006), (out[:k], synth[:k])
    assert out.sum() == pytest.approx(1.0 if col.nullable else 0.9)
    if col.nullable:
        assert out[labels.index("<missing>")] == pytest.approx(0.1)
