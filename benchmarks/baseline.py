"""Independent-marginals baseline: each column sampled from its own Laplace-noised 1-way
marginal over the public domain, with no dependence between columns.

Each of the d modelled columns spends epsilon/d on one histogram (add/remove-one-patient
neighbours: L1 sensitivity 1), drawn by diffprivlib's Laplace mechanism and recorded as a
Step in fhirsynth's Accountant.  It is the floor every correlated method should beat.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from diffprivlib.mechanisms import Laplace

from fhirsynth.domain import TableSpec
from fhirsynth.encode import decode, encode
from fhirsynth.privacy.budget import Accountant, PrivacyBudget, Step

__all__ = ["IndependentMarginals"]


class IndependentMarginals:
    """Laplace-noised independent 1-way marginals over the public domain of ``spec``."""

    def __init__(self, spec: TableSpec, *, epsilon: float, random_state: int | None = None):
        self.spec = spec
        self.epsilon = float(epsilon)
        self.accountant = Accountant(PrivacyBudget.parse(epsilon))
        self._rng = np.random.default_rng(random_state)
        self.columns_: tuple[str, ...] = ()
        self.marginals_: list[np.ndarray] = []

    def fit(self, df: pd.DataFrame) -> IndependentMarginals:
        table = encode(self.spec, df)
        d = len(table.columns)
        eps_col = self.epsilon / d
        self.columns_ = table.columns
        self.marginals_ = []
        for j, name in enumerate(table.columns):
            self.accountant.check(eps_col, name=f"marginal {name}")
            counts = np.bincount(table.codes[:, j], minlength=table.cards[j]).astype(float)
            mech = Laplace(epsilon=eps_col, sensitivity=1.0,
                           random_state=int(self._rng.integers(2**31 - 1)))
            noisy = np.array([mech.randomise(float(c)) for c in counts])
            self.accountant.spend(Step(name=f"marginal {name}", mechanism="Laplace",
                                       epsilon=eps_col, sensitivity=1.0,
                                       detail=f"{table.cards[j]} public states"))
            p = np.clip(noisy, 0.0, None)
            self.marginals_.append(p / p.sum() if p.sum() > 0 else np.full(len(p), 1 / len(p)))
        return self

    def sample(self, n: int) -> pd.DataFrame:
        """``n`` rows, each column drawn independently from its noisy marginal."""
        codes = np.column_stack([self._rng.choice(len(p), size=n, p=p) for p in self.marginals_])
        return decode(self.spec, self.columns_, codes, self._rng)
