"""The Synthesizer: fit a DP Bayesian network to a patient table, sample, save, load.

Orchestration only: validation of the budget (:class:`PrivacyBudget`), learning
(:func:`fhirsynth.learn.fit_model`), sampling (:func:`fhirsynth.sample.sample_model`) and
persistence (:class:`fhirsynth.model.FittedModel`).  ``fit`` is the only method that sees
patient data and keeps no reference to it.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fhirsynth import _memory
from fhirsynth.config import LearnConfig
from fhirsynth.domain import TableSpec
from fhirsynth.errors import (
    ConfigError,
    LargeBudgetWarning,
    LowUtilityWarning,
    NotFittedError,
    PrivacyBudgetError,
    PrivacyLeakWarning,
    ReproducibleNoiseWarning,
    SafeHarborWarning,
    TableInputWarning,
)
from fhirsynth.export.harmonise import output_rules, release_table
from fhirsynth.learn import check_random_state, fit_model
from fhirsynth.model import FittedModel
from fhirsynth.privacy.budget import Accountant, PrivacyBudget
from fhirsynth.privacy.noise import Noise
from fhirsynth.sample import sample_model

__all__ = ["Synthesizer"]

#: what a seeded fit (and the load of its model) warns
SEEDED_NOISE = ("the DP noise is drawn from a fixed seed (random_state): whoever knows or "
                "guesses it can remove the noise, so the model is not differentially private "
                "against them; leave random_state None for a model you share (the model "
                "records info.reproducible_noise)")
SEEDED_MODEL = ("the DP noise of this model was drawn from a fixed seed (info.reproducible_noise:"
                " it was fitted with a random_state or --seed): whoever knows or guesses the "
                "seed can remove the noise; a test model, not for sharing")
#: what a fit with the ``_noiseless`` test hook (and the load of its model) warns
NOISELESS = ("noiseless test mode (the _noiseless test hook): the model holds exact counts of "
             "the data and best-score selections, no noise was drawn, so it is not "
             "differentially private at any epsilon (info.noiseless_test_mode; its budget "
             "steps say mechanism 'none'); for tests only, never to be shared")


def _warn_safe_harbor(spec: TableSpec) -> None:
    """A :class:`~fhirsynth.errors.SafeHarborWarning` when samples of ``spec`` could fail the
    Safe Harbor scan (`run` and `fit` refuse such a spec; the library leaves it to the
    caller), at construction and at :meth:`Synthesizer.load`."""
    from fhirsynth.evaluate.safe_harbor_spec import spec_findings

    found = spec_findings(spec)
    if found:
        warnings.warn(
            "samples of this spec could fail the Safe Harbor scan: " + "; ".join(
                f"{f.where}: {f.why}" for f in found)
            + " (fhirsynth run and fit refuse this spec; see docs/csv-input.md)",
            SafeHarborWarning, stacklevel=3)


def _public_signature(method: Any) -> Any:
    """Leave the underscored keyword arguments (test hooks, the CLI's switches) out of the
    signature that ``help()`` and :func:`inspect.signature` show: they are not the API."""
    sig = inspect.signature(method)
    method.__signature__ = sig.replace(parameters=[
        p for p in sig.parameters.values() if not p.name.startswith("_")])
    return method


def _generator(random_state: int | None) -> np.random.Generator:
    return np.random.default_rng(check_random_state(random_state))


class Synthesizer:
    """Differentially private synthetic patients from a table with a public spec.

    Parameters
    ----------
    spec : TableSpec
        Public domain of every column.  A spec whose samples could fail the Safe Harbor
        scan (an age past 89, a date part; ``fhirsynth run`` and ``fit`` refuse it) is
        warned about with a :class:`~fhirsynth.errors.SafeHarborWarning`, here and at
        :meth:`load`.
    epsilon : float, > 0
        Total privacy loss of the fit (per patient), a number: a string such as ``"1"``
        (text is for the command line's parser) is refused with
        :class:`~fhirsynth.errors.PrivacyBudgetError` naming the argument, as any invalid
        epsilon or delta is.  Above the usual range (4, and 10 for "very large") a
        :class:`~fhirsynth.errors.LargeBudgetWarning` says so, as for a delta above 1e-5.
    delta : float, in [0, 1)
        0 (default): pure epsilon-DP, Laplace noise.  Above 0 it can change the noise
        (``config.mechanism``): "auto" (default) runs under zero-concentrated DP with
        Gaussian noise where the plan has enough noisy measurements (about ln(1/delta)) for
        that to give less noise, and the conversion to (epsilon, delta)-DP spends delta;
        else Laplace, and delta is left unspent.  "gaussian" always takes the Gaussian
        noise (and needs delta > 0), "laplace" never.  ``info["noise"]`` and the budget
        table say which was used.
    config : LearnConfig, optional
        Budget split and network shape.
    random_state : int in [0, 2**32 - 1], or None
        None (default): all randomness from the operating system.  An integer makes the fit
        reproducible, its DP noise included: whoever knows or guesses the seed can
        regenerate the noise and remove it, so a seeded model is a test model, not for
        sharing.  ``fit`` warns (:class:`~fhirsynth.errors.ReproducibleNoiseWarning`), the
        model records ``info["reproducible_noise"]`` (never the seed), and :meth:`load`
        warns again for such a model.  For tests and internal runs only.
    """

    def __init__(self, spec: TableSpec, *, epsilon: float, delta: float = 0.0,
                 config: LearnConfig | None = None, random_state: int | None = None) -> None:
        if not isinstance(spec, TableSpec):
            raise ConfigError(f"spec ({type(spec).__name__}) must be a TableSpec")
        self.spec = spec
        for name, value in (("epsilon", epsilon), ("delta", delta)):
            if isinstance(value, str):  # (text is parsed by the CLI, PrivacyBudget.parse)
                raise PrivacyBudgetError(
                    f"{name} ({value!r}) must be a number, not a string: the Python API takes "
                    f"numbers ({name}=1.0)")
        self.budget = PrivacyBudget(epsilon=epsilon, delta=delta)
        for note in self.budget.plausibility():
            # one channel: the CLI shows warnings, so a log line too would print it twice
            warnings.warn(note, LargeBudgetWarning, stacklevel=2)
        self.config = config or LearnConfig()
        if not isinstance(self.config, LearnConfig):
            raise ConfigError(f"config ({type(config).__name__}) must be a LearnConfig")
        # the noise the budget buys (checked now: 'gaussian' needs delta > 0)
        Noise.for_budget(self.budget, self.config.mechanism)
        self.random_state = check_random_state(random_state)
        _warn_safe_harbor(spec)

    @_public_signature
    def fit(self, table: pd.DataFrame, *, _noiseless: bool = False,
            _warn_notes: bool = True, _checked_input: bool = False) -> Synthesizer:
        """Learn from ``table`` (one row per patient); sets ``model_``, ``accountant_`` and
        ``notes_`` once the fit is complete, its warnings issued (a warning made an error, or
        any error, leaves the object as it was).

        ``table`` gets the checks the CSV reader makes
        (:func:`fhirsynth.ingest.csv.check_patient_table`), before anything is learned:

        * when it holds the spec's ``role: key`` column (under its name or the column its
          ``source`` reads), an id on more than one row is refused with
          :class:`~fhirsynth.errors.TableInputError` (a patient on two rows would spend the
          budget twice), unless the spec's ``fold`` keeps the ``first`` / ``last``; a missing
          id is refused.  Without it, more than 1% of rows that repeat an earlier row in
          every column (with a nearly unique column the model does not read, such as an id)
          are warned about;
        * a numeric column with more than 5% of its values outside its bounds (top- and
          bottom-coded values apart) is refused (the bounds are probably wrong: a glucose
          column in other units would otherwise be clipped into its top bin), fewer are
          clipped with a warning; a column with ``other: true`` that maps more than 50% of
          its values to ``other`` is refused, more than 5% warned about.

        The warnings are :class:`~fhirsynth.errors.TableInputWarning`; they and the errors
        carry counts and column names, never a value.  What the CLI's ``fit`` and ``run``
        print about the model's usefulness (every column sampled independently, missingness
        left without parents, noise likely to dominate;
        :func:`fhirsynth.report.summary.utility_notes`, from released facts only) is kept in
        ``notes_`` and issued as a :class:`~fhirsynth.errors.LowUtilityWarning` each.
        """
        if not isinstance(table, pd.DataFrame):
            raise ConfigError(f"table ({type(table).__name__}) must be a pandas DataFrame")
        if _noiseless:
            warnings.warn(NOISELESS, PrivacyLeakWarning, stacklevel=2)
        if not _checked_input:  # (the CLI and run_release checked the input as they read it)
            from fhirsynth.ingest.csv import check_patient_table

            table, said = check_patient_table(table, self.spec)
            for note in said:
                warnings.warn(note, TableInputWarning, stacklevel=2)
        if self.random_state is not None:
            warnings.warn(SEEDED_NOISE, ReproducibleNoiseWarning, stacklevel=2)
        from fhirsynth import __version__

        model, accountant = fit_model(
            self.spec, table, self.budget, self.config, random_state=self.random_state,
            version=__version__, _noiseless=_noiseless)
        # the spec's export rules (top codes, derived columns) travel with the model
        model.output = output_rules(self.spec)
        # a seeded fit's noise can be regenerated by whoever knows or guesses the seed (the
        # seed itself is never written): the model says it is a test model
        model.info["reproducible_noise"] = self.random_state is not None
        from fhirsynth.report.summary import utility_notes

        notes = utility_notes(model)
        if _warn_notes:  # (the CLI prints them itself)
            for note in notes:
                warnings.warn(note, LowUtilityWarning, stacklevel=2)
        # fitted only now: a warning turned into an error above leaves the object as it was
        self.model_, self.accountant_, self.notes_ = model, accountant, notes
        return self

    @property
    def model(self) -> FittedModel:
        """The fitted model (:class:`~fhirsynth.model.FittedModel`: structure, noisy
        conditional tables, public domain, budget table; no patient row), as :meth:`save`
        writes it.

        Raises
        ------
        NotFittedError
            Before :meth:`fit` (or :meth:`load`).
        """
        model = getattr(self, "model_", None)
        if model is None:
            raise NotFittedError("this Synthesizer is not fitted yet: call fit(table) first")
        return model

    def sample(
        self,
        n: int,
        *,
        evidence: Mapping[str, object] | Sequence[str] | str | None = None,
        random_state: int | None = None,
        sampling: str = "balanced",
        release: bool = False,
    ) -> pd.DataFrame:
        """``n`` synthetic patients; ``evidence`` restricts columns (see fhirsynth.evidence).

        ``release`` False (default): the modelled columns only.  True: the table as
        ``fhirsynth run`` writes ``synthetic/patients.*`` (the same columns, order, dtypes
        and rounding): Safe Harbor top codes and the derived birth year from the sampled
        age, and a fresh random UUIDv4 in each ``key`` column
        (:func:`fhirsynth.export.harmonise.release_table`).  The evidence constrains the
        modelled columns; derived and key columns follow from them.

        ``random_state`` None uses fresh OS randomness on every call; an integer gives
        byte-identical output.  ``sampling`` "balanced" (default) draws each column's
        values within its parent groups by systematic sampling in random row order (every
        row has the model's distribution, the table far less Monte-Carlo noise); "iid"
        draws every row independently (:mod:`fhirsynth.sample`).  The model's probability
        of the evidence is stored in ``last_evidence_probability_``; where the evidence
        leaves columns mostly noise, or ties to no other column in the model, a
        :class:`~fhirsynth.errors.LowUtilityWarning` says so
        (:func:`fhirsynth.sample.evidence_notes`).  Sampling spends no budget.

        Raises
        ------
        ConfigError
            ``n`` rows would not fit in the memory available now (estimated from the
            spec, :mod:`fhirsynth._memory`), before anything is sampled.
        """
        if isinstance(n, int | np.integer) and not isinstance(n, bool) and n > 0:
            # (other values are refused by sample_model with their own message)
            _memory.check_rows_fit(self.model.spec, int(n), _memory.available_memory(),
                                   option="n", release=False,
                                   hint="sample fewer rows per call (several calls, each "
                                        "written out before the next)")
        rng = _generator(random_state)
        df, p_e = sample_model(self.model, n, evidence=evidence, rng=rng, sampling=sampling)
        self.last_evidence_probability_ = p_e
        if evidence:
            from fhirsynth.evidence import parse_evidence
            from fhirsynth.sample import evidence_notes

            for note in evidence_notes(self.model, set(parse_evidence(self.model.spec,
                                                                      evidence)), p_e):
                warnings.warn(note, LowUtilityWarning, stacklevel=2)
        return release_table(self.model, df, rng) if release else df

    def budget_table(self) -> dict[str, Any]:
        """The privacy budget of the fit, as the audit record and ``fhirsynth inspect`` show it.

        ``epsilon_total`` / ``delta_total`` (declared), ``epsilon_spent`` / ``delta_spent``,
        ``composition`` (sequential, or zCDP with ``rho_total`` / ``rho_spent``), and
        ``steps``: every noisy measurement with its name, mechanism, epsilon (and rho),
        sensitivity and detail; the steps add up to the total.  Public: it holds no
        statistic of the data beyond what the steps released.

        Raises
        ------
        NotFittedError
            Before :meth:`fit` (or :meth:`load`).
        """
        return self.model.budget

    def save(self, path: str | Path) -> None:
        """Save the fitted model as JSON (atomic)."""
        self.model.to_json(path)

    @classmethod
    def load(cls, path: str | Path) -> Synthesizer:
        """A fitted Synthesizer from a model saved by :meth:`save`.

        A model fitted with a ``random_state`` (``info["reproducible_noise"]``) is loaded with
        a :class:`~fhirsynth.errors.ReproducibleNoiseWarning`, and one of the noiseless test
        hook (``info["noiseless_test_mode"]``, no noise at all) with a
        :class:`~fhirsynth.errors.PrivacyLeakWarning`: both are test models.  A model whose
        spec could give samples that fail the Safe Harbor scan is loaded with a
        :class:`~fhirsynth.errors.SafeHarborWarning`, as such a spec is at construction.
        """
        model = FittedModel.from_json(path)
        _warn_safe_harbor(model.spec)  # (a model fitted through the library, or an old one)
        if model.info.get("noiseless_test_mode"):
            warnings.warn(NOISELESS, PrivacyLeakWarning, stacklevel=2)
        if model.info.get("reproducible_noise"):
            warnings.warn(SEEDED_MODEL, ReproducibleNoiseWarning, stacklevel=2)
        b = model.budget
        self = cls.__new__(cls)
        self.spec = model.spec
        self.budget = PrivacyBudget(epsilon=b["epsilon_total"], delta=b["delta_total"])
        self.config = LearnConfig(**model.info.get("config", {}))
        self.random_state = None
        self.model_ = model
        acc = Accountant(self.budget, rho_total=b.get("rho_total"))
        if b.get("composition"):
            acc.composition = str(b["composition"])
        self.accountant_ = acc
        from fhirsynth.privacy.budget import Step

        acc.steps = [Step(**s) for s in b["steps"]]
        from fhirsynth.report.summary import utility_notes

        self.notes_ = utility_notes(model)  # as fit keeps them (from released facts only)
        return self
