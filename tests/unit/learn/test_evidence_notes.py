"""Notes on conditional samples: columns left mostly noise by the evidence (trial 19)."""

from __future__ import annotations

import math
import warnings

import pytest

from fhirsynth.errors import LowUtilityWarning
from fhirsynth.sample import evidence_noise, evidence_notes
from fhirsynth.synthesizer import Synthesizer
from learn_nets import SPEC, known_model


def _model(n_hat: float | None, eps: float):
    m = known_model()  # A -> B -> C, (A, C) -> D, E on its own
    m.info["n_patients_noisy"] = n_hat
    m.budget = {"steps": [{"name": f"table {c}", "epsilon": eps, "sensitivity": 1.0}
                          for c in "ABCDE"]}
    return m


def test_columns_whose_distribution_has_less_signal_than_noise_are_named() -> None:
    # A = a2 holds 1000 * 0.2 = 200 patients: B's table gives them 2 states under one A
    # value, D's 2 states under each of C's 3 values (noise summed over sqrt(3) cells)
    sd_small, sd_large = math.sqrt(2) / 0.1, math.sqrt(2) / 0.01
    k, weak = evidence_noise(_model(1000, 0.1), {"A"}, 0.2)
    assert k == pytest.approx(200) and weak == []
    assert 200 / (2 * math.sqrt(3) * sd_small) > 1
    k, weak = evidence_noise(_model(1000, 0.01), {"A"}, 0.2)
    assert [c for c, _ in weak] == ["D", "B"]  # the noisiest first
    assert dict(weak) == pytest.approx({"D": 200 / (2 * math.sqrt(3) * sd_large),
                                        "B": 200 / (2 * sd_large)})
    # evidence on C, which has a parent: its own table says which B goes with it
    _, weak = evidence_noise(_model(1000, 0.01), {"C"}, 0.2)
    assert dict(weak) == pytest.approx({"C": 200 / (math.sqrt(2 * 2) * sd_large),
                                        "D": 200 / (2 * math.sqrt(3) * sd_large)})
    assert evidence_noise(_model(None, 0.01), {"A"}, 0.2) is None  # no noisy count


def test_notes_name_the_noisy_columns_and_an_evidence_nothing_depends_on() -> None:
    (note,) = evidence_notes(_model(1000, 0.01), {"A"}, 0.2)
    assert "holds about 200 of the training patients" in note
    assert "in this sample D, B are mostly noise" in note
    assert evidence_notes(_model(1000, 0.1), {"A"}, 0.2) == []
    (alone,) = evidence_notes(_model(1000, 0.1), {"E"}, 0.3)
    assert alone.startswith("in this model no other modelled column depends on E")
    assert evidence_notes(_model(1000, 0.1), {"C"}, 0.3) == []  # C has a parent
    # trial 20: a condition on a column with a parent and few patients behind it: the
    # parent it is drawn with is noise, and what is drawn from that parent too
    (few,) = evidence_notes(_model(1000, 0.1), {"D"}, 0.002)
    assert "holds about 2 of the training patients" in few
    assert "in this sample A, C, B are mostly noise" in few
    (none,) = evidence_notes(_model(1000, 0.1), {"D"}, 0.0002)
    assert "holds fewer than one of the training patients" in none


def test_a_conditional_sample_of_a_noisy_fit_warns(known_data) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        noisy = Synthesizer(SPEC, epsilon=0.5, random_state=0).fit(known_data.iloc[:400])
        clear = Synthesizer(SPEC, epsilon=10.0, random_state=0).fit(known_data)
    with pytest.warns(LowUtilityWarning, match="mostly noise|depends on A"):
        noisy.sample(200, evidence=["A=a2"], random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowUtilityWarning)
        clear.sample(200, evidence=["A=a2"], random_state=1)
