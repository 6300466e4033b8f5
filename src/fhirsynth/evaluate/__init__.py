"""Evaluation of a release: fidelity, privacy risk and the empirical privacy audit."""
