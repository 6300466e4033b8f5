"""DP noise of the fit: neighbouring-dataset ratio test and the scale of the table noise."""

from __future__ import annotations

import math

import numpy as np

from fhirsynth.learn.parameters import noisy_joint
from fhirsynth.privacy.budget import Accountant, PrivacyBudget

EPS = 1.0
DRAWS = 4000


def _draws(n_in_cell: int, seed: int) -> np.ndarray:
    """Noisy count of cell 0 of a 2-cell table, DRAWS times, from one seeded stream."""
    rs = np.random.RandomState(seed)
    child = np.array([0] * n_in_cell + [1] * 7)
    out = np.empty(DRAWS)
    for i in range(DRAWS):
        acc = Accountant(PrivacyBudget(epsilon=EPS))
        t = noisy_joint(child, 2, np.zeros(child.size, np.int64), 1, epsilon=EPS,
                        accountant=acc, name="t", random_state=rs)
        out[i] = t[0, 0]
    return out


def test_neighbouring_tables_satisfy_the_epsilon_ratio() -> None:
    d, d_prime = _draws(5, 0), _draws(6, 1)  # D' = D plus one patient in cell 0
    # diffprivlib's test style: P[out in S | D] <= e^eps P[out in S | D'] + slack, where the
    # slack covers the sampling error of two empirical frequencies over DRAWS draws
    slack = 4 * math.sqrt(0.25 / DRAWS) * 2
    for t in np.linspace(0, 11, 23):
        for a, b in ((d, d_prime), (d_prime, d)):
            p_a, p_b = np.mean(a <= t), np.mean(b <= t)
            assert p_a <= math.exp(EPS) * p_b + slack
            q_a, q_b = np.mean(a > t), np.mean(b > t)
            assert q_a <= math.exp(EPS) * q_b + slack


def test_table_noise_has_the_declared_laplace_scale() -> None:
    noise = _draws(5, 2) - 5
    # Laplace(b = 1/eps): sd = sqrt(2)/eps; the sd of the sample sd is about sd * 0.035
    # for 4000 draws (kurtosis 6); 5 sigma bounds
    sd = math.sqrt(2) / EPS
    assert abs(noise.std() - sd) < 5 * 0.035 * sd
    assert abs(np.mean(np.abs(noise)) - 1 / EPS) < 5 * (1 / EPS) / math.sqrt(DRAWS)
    assert abs(noise.mean()) < 5 * sd / math.sqrt(DRAWS)
