"""Fixtures of the learn tests: a known network and 30,000 rows drawn from it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fhirsynth.model import FittedModel
from fhirsynth.sample import sample_model
from learn_nets import known_model


@pytest.fixture(scope="session")
def known() -> FittedModel:
    return known_model()


@pytest.fixture(scope="session")
def known_data(known: FittedModel) -> pd.DataFrame:
    df, _ = sample_model(known, 30_000, rng=np.random.default_rng(123))
    return df
