"""Synthesizer API as a new user meets it (trial 25): seeded noise, repeated patients,
values the spec does not describe, the noiseless test hook, warning classes, arguments."""

from __future__ import annotations

import inspect
import pydoc
import warnings

import numpy as np
import pandas as pd
import pytest

from fhirsynth.domain import Column, TableSpec
from fhirsynth.errors import (
    ConfigError,
    LargeBudgetWarning,
    LowUtilityWarning,
    NotFittedError,
    PrivacyBudgetError,
    PrivacyLeakWarning,
    ReproducibleNoiseWarning,
    SafeHarborWarning,
    TableInputError,
    TableInputWarning,
)
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


# ------------------------------------------- 2. one patient, one row (as the CSV reader)
def _keyed_spec(source: str | None = None, fold: str | None = None) -> TableSpec:
    key = Column(name="patient_id", role="key",
                 source={"column": source} if source else None)
    return TableSpec(name="k", columns=(
        key,
        Column(name="sex", categories=("f", "m"), nullable=False),
        Column(name="score", kind="numeric", bounds=(0.0, 10.0), nullable=False),
    ), options={"fold": fold} if fold else {})


def _keyed_table(n: int = 300, id_column: str = "patient_id") -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({id_column: [f"P{i:05d}" for i in range(n)],
                         "sex": rng.choice(["f", "m"], n),
                         "score": rng.uniform(0, 10, n).round(1)})


@pytest.mark.parametrize("source", [None, "MRN"])
def test_a_patient_on_two_rows_is_refused_as_the_csv_reader_refuses_it(source) -> None:
    spec = _keyed_spec(source)
    df = _keyed_table(id_column=source or "patient_id")
    _quiet_fit(Synthesizer(spec, epsilon=1.0), df)  # one row per patient: fitted
    s = Synthesizer(spec, epsilon=1.0)
    with pytest.raises(TableInputError, match=r"300 patient id\(s\) appear on more than one "
                       r"row \(first repeat at position 300\); one patient must be one row"
                       ) as exc:
        _quiet_fit(s, pd.concat([df, df]))
    assert "P0" not in str(exc.value)  # no id is quoted
    assert getattr(s, "model_", None) is None
    one_twice = pd.concat([df, df.iloc[[7]]])
    with pytest.raises(TableInputError, match=r"1 patient id\(s\)"):
        _quiet_fit(s, one_twice)
    no_id = df.assign(**{source or "patient_id": df[source or "patient_id"].where(
        np.arange(len(df)) != 4)})
    with pytest.raises(TableInputError, match=r"1 row\(s\) have no patient id .* position 4"):
        _quiet_fit(s, no_id)


def test_the_spec_fold_keeps_one_row_per_patient_in_fit_too() -> None:
    df = _keyed_table()
    s = _quiet_fit(Synthesizer(_keyed_spec(fold="first"), epsilon=1.0, random_state=0),
                   pd.concat([df, df]))
    once = _quiet_fit(Synthesizer(_keyed_spec(), epsilon=1.0, random_state=0), df)
    assert s.model_.budget == once.model_.budget
    assert s.model_.info["n_patients_noisy"] == once.model_.info["n_patients_noisy"]


def test_rows_repeated_without_a_key_are_warned_as_the_cli_warns() -> None:
    spec = TableSpec(name="nk", columns=_keyed_spec().columns[1:])
    df = _keyed_table()  # its id column is not in the spec
    with pytest.warns(TableInputWarning, match=r"the table: 300 of 600 rows repeat an earlier "
                      r"row in every column; .* spends twice the stated epsilon"):
        Synthesizer(spec, epsilon=1.0).fit(pd.concat([df, df]))
    # the modelled columns alone repeat by nature (few, coarse columns): nothing to say
    with warnings.catch_warnings():
        warnings.simplefilter("error", TableInputWarning)
        Synthesizer(spec, epsilon=1.0).fit(pd.concat([df, df])[["sex", "score"]])
        Synthesizer(spec, epsilon=1.0).fit(df)


# ------------------------- 3. values the schema does not describe (as the CSV reader)
def _glucose_spec() -> TableSpec:
    return TableSpec(name="g", columns=(
        Column(name="glucose", kind="numeric", bounds=(50.0, 300.0), nullable=False),
        Column(name="smoking", categories=("never", "former", "current"), other=True,
               nullable=False),
        Column(name="score", kind="numeric", bounds=(0.0, 90.0), nullable=False,
               source={"top_code": 90}),
    ))


def _glucose_table(n: int = 400, *, times: float = 1.0, outside: int = 0,
                   unlisted: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    glucose = rng.uniform(60, 250, n) * times
    glucose[:outside] = 400.0
    smoking = rng.choice(["never", "former", "current"], n).astype(object)
    smoking[n - unlisted:] = "unknown"
    # a top-coded column: values above its top are expected (clipped into "90 or more")
    score = np.where(rng.random(n) < 0.3, 95.0, rng.uniform(0, 90, n))
    return pd.DataFrame({"glucose": glucose.round(1), "smoking": smoking, "score": score})


def test_a_column_mostly_outside_its_bounds_is_refused_as_the_cli_refuses_it() -> None:
    s = Synthesizer(_glucose_spec(), epsilon=1.0)
    # a trial: glucose in other units (x10) became all 241-300 without a word
    with pytest.raises(TableInputError, match=r"column 'glucose': \d[\d,]* of 400 values .* "
                       r"outside the schema's bounds \[50, 300\] .* the bounds are probably "
                       "wrong") as exc:
        s.fit(_glucose_table(times=10))
    assert "score" not in str(exc.value)  # top-coded values are expected
    assert getattr(s, "model_", None) is None
    with pytest.warns(TableInputWarning, match=r"the table: 8 value\(s\) outside the schema's "
                      r"bounds, clipped to them .*glucose 8 above \[50, 300\]"):
        s.fit(_glucose_table(outside=8))  # 2%: clipped, with a warning


def test_values_mapped_to_other_are_warned_then_refused_as_the_cli_does() -> None:
    s = Synthesizer(_glucose_spec(), epsilon=1.0)
    with pytest.warns(TableInputWarning, match=r"column 'smoking': 80 of 400 values \(20%\) "
                      r"are not in its category list and were mapped to 'other'"):
        s.fit(_glucose_table(unlisted=80))
    with pytest.raises(TableInputError, match=r"column 'smoking': 240 of 400 values \(60%\) .* "
                       r"would map them all to one 'other' category"):
        s.fit(_glucose_table(unlisted=240))
    with warnings.catch_warnings():  # 1%: nothing to say
        warnings.simplefilter("error", TableInputWarning)
        s.fit(_glucose_table(unlisted=4))


# ------------------------------------------------------ 4. the noiseless test hook is said
def test_the_noiseless_hook_warns_at_fit_and_load_and_its_budget_says_no_noise(
        known_data, tmp_path) -> None:
    s = Synthesizer(SPEC, epsilon=1.0)
    with pytest.warns(PrivacyLeakWarning, match="no noise was drawn, so it is not "
                      "differentially private"):
        s.fit(known_data.iloc[:300], _noiseless=True)
    b = s.budget_table()
    assert s.model_.info["noiseless_test_mode"] is True
    assert "noiseless test mode" in b["composition"] and "not differentially private" in (
        b["composition"])
    assert {st["mechanism"] for st in b["steps"]} == {"none (noiseless test mode)"}
    s.save(tmp_path / "m.json")
    with pytest.warns(PrivacyLeakWarning, match="noiseless test mode"):
        again = Synthesizer.load(tmp_path / "m.json")
    assert again.accountant_.composition == b["composition"]
    # a real fit says nothing of it
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrivacyLeakWarning)
        real = Synthesizer(SPEC, epsilon=1.0).fit(known_data.iloc[:300])
    assert "laplace" in real.budget_table()["steps"][0]["mechanism"].lower()


def test_help_shows_no_private_argument_of_fit() -> None:
    assert list(inspect.signature(Synthesizer.fit).parameters) == ["self", "table"]
    assert "_noiseless" not in pydoc.render_doc(Synthesizer.fit)


# ------------------------------------------------------- 5. warning classes of their own
def _age_spec(top: float) -> TableSpec:
    return TableSpec(name="a", columns=(
        Column(name="age", kind="numeric", bounds=(0.0, top), integer=True, nullable=False),
        Column(name="sex", categories=("f", "m"), nullable=False),
    ))


def test_a_spec_that_could_fail_safe_harbor_is_said_at_construction_and_at_load(
        tmp_path) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.integers(0, 100, 300), "sex": rng.choice(["f", "m"], 300)})
    with pytest.warns(SafeHarborWarning, match=r"could fail the Safe Harbor scan: column "
                      r"'age'"):
        s = Synthesizer(_age_spec(100), epsilon=1.0)
    _quiet_fit(s, df).save(tmp_path / "m.json")
    with pytest.warns(SafeHarborWarning, match="could fail the Safe Harbor scan"):
        Synthesizer.load(tmp_path / "m.json")
    with warnings.catch_warnings():  # a spec ending its ages at 89: nothing to say
        warnings.simplefilter("error", SafeHarborWarning)
        _quiet_fit(Synthesizer(_age_spec(89), epsilon=1.0), df.assign(
            age=df["age"].clip(upper=89))).save(tmp_path / "ok.json")
        Synthesizer.load(tmp_path / "ok.json")


@pytest.mark.parametrize("kw,match", [({"epsilon": 7.0}, "above the usual range"),
                                      ({"epsilon": 50.0}, "very large"),
                                      ({"epsilon": 1.0, "delta": 1e-3}, "delta = 0.001 is large")])
def test_a_large_budget_is_a_large_budget_warning(kw, match) -> None:
    with pytest.warns(LargeBudgetWarning, match=match):
        Synthesizer(SPEC, **kw)


def test_the_warning_classes_are_exported_and_catchable_as_before() -> None:
    import fhirsynth

    for cls, base in ((SafeHarborWarning, UserWarning), (LargeBudgetWarning, UserWarning),
                      (TableInputWarning, UserWarning),
                      (ReproducibleNoiseWarning, RuntimeWarning)):
        assert getattr(fhirsynth, cls.__name__) is cls and issubclass(cls, base)


# ----------------------------------------------------------------- 6. argument checks
@pytest.mark.parametrize("seed", [-1, 2**32, "abc", 1.5, True])
def test_a_bad_random_state_is_a_config_error_naming_it(known_data, seed) -> None:
    with pytest.raises(ConfigError, match=r"random_state \("):
        Synthesizer(SPEC, epsilon=1.0, random_state=seed)
    s = _quiet_fit(Synthesizer(SPEC, epsilon=1.0), known_data.iloc[:200])
    with pytest.raises(ConfigError, match=r"random_state \("):
        s.sample(3, random_state=seed)


def test_the_largest_seeds_are_accepted(known_data) -> None:
    s = _quiet_fit(Synthesizer(SPEC, epsilon=1.0, random_state=2**32 - 1), known_data.iloc[:200])
    assert len(s.sample(3, random_state=np.int64(0))) == 3


@pytest.mark.parametrize("kw,name", [({"epsilon": "1"}, "epsilon"),
                                     ({"epsilon": 1.0, "delta": "0"}, "delta")])
def test_a_budget_given_as_text_is_refused_naming_the_argument(kw, name) -> None:
    with pytest.raises(PrivacyBudgetError, match=rf"{name} \('[01]'\) must be a number, not a "
                       "string"):
        Synthesizer(SPEC, **kw)


# -------------------------------------------------- 7. exports, docstrings, consistency
def test_every_exception_and_warning_class_is_exported_from_the_package() -> None:
    import fhirsynth
    from fhirsynth import errors

    classes = [n for n in errors.__all__ if n != "Issue"]
    assert {"LowUtilityWarning", "EvidenceError", "NotFittedError", "TableInputError"} <= set(
        classes)
    for name in classes:
        assert name in fhirsynth.__all__ and getattr(fhirsynth, name) is getattr(errors, name)


def test_model_and_budget_table_say_what_they_are_and_delta_is_described_truly() -> None:
    assert "NotFittedError" in (Synthesizer.model.__doc__ or "")
    assert "steps" in (Synthesizer.budget_table.__doc__ or "")
    doc = Synthesizer.__doc__ or ""
    assert "spends none of it" not in doc
    assert "Gaussian" in doc[doc.index("delta :"):doc.index("config :")]


def test_a_loaded_synthesizer_has_the_notes_of_the_fitted_one(known_data, tmp_path) -> None:
    s = _quiet_fit(Synthesizer(SPEC, epsilon=0.05, random_state=0), known_data.iloc[:200])
    assert s.notes_  # a tiny epsilon: the notes say the noise dominates
    s.save(tmp_path / "m.json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = Synthesizer.load(tmp_path / "m.json")
    assert again.notes_ == s.notes_


def _target_spec(target: Column, positive: object) -> TableSpec:
    return TableSpec(name="t", target=target.name, positive=positive, columns=(
        Column(name="sex", categories=("f", "m"), nullable=False), target))


@pytest.mark.parametrize("target,positive,match", [
    (Column(name="y", categories=("0", "1"), nullable=False, role="target"), "yes",
     r"positive \('yes'\) is not a category of the target 'y' \(its categories: 0, 1\)"),
    (Column(name="y", kind="boolean", nullable=False, role="target"), "1",
     "must be true or false"),
])
def test_a_positive_state_outside_the_target_is_refused(target, positive, match) -> None:
    with pytest.raises(ConfigError, match=match):
        _target_spec(target, positive)


def test_a_positive_state_needs_a_target_and_is_kept_as_data_values_are_matched() -> None:
    with pytest.raises(ConfigError, match="needs a target"):
        TableSpec(name="t", positive="1", columns=(Column(name="sex", categories=("f", "m")),))
    cat = Column(name="y", categories=("0", "1"), nullable=False, role="target")
    assert _target_spec(cat, 1).positive == "1"
    flag = Column(name="y", kind="boolean", nullable=False, role="target")
    assert _target_spec(flag, True).positive == "true"
    assert _target_spec(flag, "False").positive == "false"
    assert TableSpec.from_dict({"target": "y", "positive": True, "columns": {
        "y": {"type": "boolean"}}}).positive == "true"


# --------------------------------------------- 8. a fit that raises leaves nothing behind
@pytest.mark.parametrize("category", [LowUtilityWarning, ReproducibleNoiseWarning,
                                      TableInputWarning])
def test_a_warning_made_an_error_leaves_the_synthesizer_unfitted(known_data, category) -> None:
    rows = known_data.iloc[:200]
    if category is TableInputWarning:  # rows repeated, with an id the spec does not model
        rows = pd.concat([rows, rows]).assign(record=[f"R{i}" for i in range(200)] * 2)
    s = Synthesizer(SPEC, epsilon=0.05, random_state=0)  # noise-bound: LowUtilityWarnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", category)
        with pytest.raises(category):
            s.fit(rows)
    assert not hasattr(s, "model_") and not hasattr(s, "notes_")
    with pytest.raises(NotFittedError):
        s.sample(3)
