"""Synthesizer API as a new user meets it (trial 25): seeded noise, repeated patients,
values the spec does not describe, the noiseless test hook, warning classes, arguments."""

from __future__ import annotations

import warnings

import pytest

from fhirsynth.errors import ReproducibleNoiseWarning
from fhirsynth.synthesizer import Synthesizer
from learn_nets import SPEC


def _quiet_fit(synth: Synthesizer, table, **kw) -> Synthesizer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return synth.fit(table, **kw)


# ----------------------------------------------------------------- 1. seeded noise is said
def test_a_seeded_fit_and_the_load_of_its_model_warn_that_the_noise_is_reproducible(
        known_data, tmp_path) -> None:
    s = Synthesizer(SPEC, epsilon=1.0, random_state=42)
    with pytest.warns(ReproducibleNoiseWarning, match="guesses it can remove the noise") as rec:
        s.fit(known_data.iloc[:300])
    said = " ".join(str(w.message) for w in rec if w.category is ReproducibleNoiseWarning)
    assert "leave random_state None" in said and "reproducible_noise" in said
    assert "42" not in said  # the seed itself is never said
    assert s.model_.info["reproducible_noise"] is True
    s.save(tmp_path / "m.json")
    with pytest.warns(ReproducibleNoiseWarning, match="a test model, not for sharing"):
        Synthesizer.load(tmp_path / "m.json")


def test_an_unseeded_fit_and_its_model_say_nothing_of_seeds(known_data, tmp_path) -> None:
    s = Synthesizer(SPEC, epsilon=1.0)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        s.fit(known_data.iloc[:300])
        s.save(tmp_path / "m.json")
        Synthesizer.load(tmp_path / "m.json")
    assert not [w for w in rec if w.category is ReproducibleNoiseWarning]
