"""Synthesizer API: budget always adds up, bad input, save/load, constant columns."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from fhirsynth.config import LearnConfig
from fhirsynth.domain import Column, TableSpec
from fhirsynth.errors import (
    ConfigError,
    LowUtilityWarning,
    NotFittedError,
    PrivacyBudgetError,
    TooFewRowsError,
)
from fhirsynth.synthesizer import Synthesizer
from learn_nets import SPEC

CONFIGS = [
    {},
    {"degree": 0},
    {"degree": 1},
    {"degree": 2, "count_share": 0.0},
    {"structure_share": 0.0},
    {"structure_share": 0.6, "count_share": 0.2, "theta": 0.0},
    {"max_parent_states": 2, "parent_groups": 2, "max_candidates": 1},
]


@pytest.mark.parametrize("epsilon", [0.01, 1.0, 1.5, 7.3, 1000.0])
@pytest.mark.parametrize("cfg", CONFIGS)
def test_recorded_steps_sum_to_the_declared_total(known_data, epsilon, cfg) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        s = Synthesizer(SPEC, epsilon=epsilon, config=LearnConfig(**cfg), random_state=1)
    s.fit(known_data.iloc[:3000])
    table = s.model_.budget
    total = math.fsum(st["epsilon"] for st in table["steps"])
    assert total == pytest.approx(epsilon, rel=1e-12)
    assert table["epsilon_total"] == epsilon and table["delta_spent"] == 0
    names = [st["name"] for st in table["steps"]]
    assert sum(n.startswith("table ") for n in names) == len(SPEC.columns)
    assert all(st["epsilon"] > 0 for st in table["steps"])


@pytest.mark.parametrize("eps", [0, -1, "abc", float("nan"), float("inf"), None])
def test_bad_epsilon_names_the_parameter(eps) -> None:
    with pytest.raises(PrivacyBudgetError, match="epsilon"):
        Synthesizer(SPEC, epsilon=eps)


@pytest.mark.parametrize("delta", [1, 1.5, -0.1, float("nan")])
def test_bad_delta_names_the_parameter(delta) -> None:
    with pytest.raises(PrivacyBudgetError, match="delta"):
        Synthesizer(SPEC, epsilon=1.0, delta=delta)


def test_huge_epsilon_is_accepted_with_a_plausibility_warning(known_data) -> None:
    with pytest.warns(UserWarning, match="very large"):
        s = Synthesizer(SPEC, epsilon=1e9, random_state=0)
    s.fit(known_data.iloc[:500])
    assert s.model_.budget["epsilon_spent"] == pytest.approx(1e9)


def test_degree_larger_than_the_columns_is_refused(known_data) -> None:
    s = Synthesizer(SPEC, epsilon=1.0, config=LearnConfig(degree=9))
    with pytest.raises(ConfigError, match=r"degree \(9\) must be at most .* \(4\)"):
        s.fit(known_data.iloc[:100])


@pytest.mark.parametrize("kwargs,match", [
    ({"structure_share": 1.0}, r"structure_share \(1.0\) must be"),
    ({"count_share": -0.1}, r"count_share \(-0.1\) must be"),
    ({"structure_share": 0.6, "count_share": 0.5}, "must be < 1"),
    ({"degree": -1}, r"degree \(-1\)"),
    ({"degree": None, "count_share": 0.0}, r"degree \(None\) must be given"),
    ({"min_rows": 0}, r"min_rows \(0\)"),
    ({"theta": float("nan")}, r"theta \(nan\)"),
    ({"mechanism": "exponential"}, "mechanism"),
    ({"selection": "gumbel"}, r"selection \('gumbel'\) must be"),
])
def test_config_validation_names_field_and_value(kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        LearnConfig(**kwargs)


def test_too_few_rows_is_refused_and_override_warns(known_data) -> None:
    s = Synthesizer(SPEC, epsilon=1.0)
    with pytest.raises(TooFewRowsError, match="need at least 50 rows .* got 5"):
        s.fit(known_data.iloc[:5])
    s = Synthesizer(SPEC, epsilon=1.0, config=LearnConfig(allow_few_rows=True))
    with pytest.warns(LowUtilityWarning, match="below min_rows"):
        s.fit(known_data.iloc[:5])
    assert len(s.sample(20)) == 20


def test_not_fitted_errors() -> None:
    s = Synthesizer(SPEC, epsilon=1.0)
    with pytest.raises(NotFittedError, match="call fit"):
        s.sample(3)
    with pytest.raises(NotFittedError):
        s.save("x.json")


def test_non_dataframe_and_bad_n_are_clear_errors(known_data) -> None:
    s = Synthesizer(SPEC, epsilon=1.0)
    with pytest.raises(ConfigError, match="DataFrame"):
        s.fit(known_data.to_numpy())
    s.fit(known_data.iloc[:200])
    with pytest.raises(ConfigError, match=r"n \(-1\)"):
        s.sample(-1)
    assert len(s.sample(0)) == 0


def test_save_load_roundtrip_is_json_without_rows(tmp_path, known_data) -> None:
    s = Synthesizer(SPEC, epsilon=2.0, random_state=3).fit(known_data)
    path = tmp_path / "m.json"
    s.save(path)
    blob = json.loads(path.read_text())
    assert set(blob) == {"format", "format_version", "fhirsynth", "spec", "info", "budget",
                         "nodes", "output"}
    # the spec's export rules: none without FHIR age rules; the birth years only the source
    # rules tell, listed even when there is none (a model.json without the list is older)
    assert blob["output"] == {"birth_years": []}
    assert "n_patients_noisy" in blob["info"]  # the noisy count only, never the exact one
    assert not list(tmp_path.glob(".*.tmp"))
    t = Synthesizer.load(path)
    a = s.sample(1000, random_state=9)
    b = t.sample(1000, random_state=9)
    pd.testing.assert_frame_equal(a, b)
    assert t.accountant_.spent_epsilon == pytest.approx(2.0)
    assert t.model_.graph() == s.model_.graph()


def test_fit_keeps_no_reference_to_the_data(known_data) -> None:
    s = Synthesizer(SPEC, epsilon=1.0, random_state=0).fit(known_data)
    for value in vars(s).values():
        assert value is not known_data
        assert not isinstance(value, pd.DataFrame | np.ndarray)


def test_bounds_excluding_every_value_clip_into_the_edge_bins() -> None:
    # documented behaviour: values outside public bounds are clipped (never read off the
    # data); the learner works and the output stays inside the bounds.  Synthesizer.fit
    # refuses such a table (more than 5% outside: the bounds are probably wrong, trial 25)
    from fhirsynth.errors import TableInputError
    from fhirsynth.learn import fit_model
    from fhirsynth.privacy.budget import PrivacyBudget
    from fhirsynth.sample import sample_model

    spec = TableSpec(name="x", columns=(
        Column(name="v", kind="numeric", bounds=(0.0, 1.0), nullable=False),
        Column(name="g", categories=("a", "b"), nullable=False),
    ))
    df = pd.DataFrame({"v": np.linspace(50, 60, 200), "g": ["a", "b"] * 100})
    with pytest.raises(TableInputError, match="200 of 200 values .* outside"):
        Synthesizer(spec, epsilon=1.0, random_state=0).fit(df)
    model, _ = fit_model(spec, df, PrivacyBudget(epsilon=1.0), random_state=0)
    out, _ = sample_model(model, 500, rng=np.random.default_rng(0))
    assert out["v"].between(0, 1).all()


def _nullable_spec(structure: dict | None) -> TableSpec:
    spec = TableSpec(name="n", columns=(
        Column(name="g", categories=("a", "b"), nullable=False),
        Column(name="v", kind="numeric", bounds=(0.0, 50.0), integer=True),
        Column(name="w", kind="numeric", bounds=(0.0, 1.0), bins=5),
    ), options={"structure": structure} if structure is not None else {})
    return spec


def _nullable_data(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    g = rng.choice(["a", "b"], n)
    v = np.where(g == "a", rng.integers(0, 51, n).astype(str), "")
    return pd.DataFrame({"g": g, "v": v, "w": rng.random(n).round(3).astype(str)})


@pytest.mark.parametrize("structure", [None, {"v": ["g"]}, {"v": ["g"], "w": ["v"]},
                                       {"g": [], "v": ["g"], "w": ["g", "v"]}])
@pytest.mark.parametrize("epsilon", [0.5, 3.0])
def test_declared_structure_and_missingness_tables_add_up(structure, epsilon) -> None:
    s = Synthesizer(_nullable_spec(structure), epsilon=epsilon, random_state=2)
    s.fit(_nullable_data())
    steps = s.model_.budget["steps"]
    assert math.fsum(st["epsilon"] for st in steps) == pytest.approx(epsilon, rel=1e-12)
    names = {st["name"] for st in steps}
    graph = s.model_.graph()
    # a nullable column's missingness gets a table of its own only when it has parents
    for col in ("v", "w"):
        assert f"table {col}" in names
        assert (f"table {col} (missing or not)" in names) == bool(graph[col])
    if structure:
        for child, parents in structure.items():
            assert sorted(s.model_.graph()[child]) == sorted(parents)


@pytest.mark.parametrize("structure,match", [
    ({"v": ["g"], "g": ["v"]}, "cycle"),
    ({"v": ["nope"]}, "'nope', which is not a modelled column"),
    ({"v": "g"}, "must be a list"),
])
def test_bad_declared_structure_is_a_clear_error(structure, match) -> None:
    s = Synthesizer(_nullable_spec(structure), epsilon=1.0, random_state=0)
    with pytest.raises(ConfigError, match=match):
        s.fit(_nullable_data())


def test_seeded_fits_are_identical_and_unseeded_fits_differ(known_data) -> None:
    def blob(seed):
        s = Synthesizer(SPEC, epsilon=1.0, random_state=seed).fit(known_data.iloc[:2000])
        return json.dumps(s.model_.to_dict(), sort_keys=True)

    assert blob(5) == blob(5)
    assert blob(None) != blob(None)


@pytest.mark.parametrize("delta", [0.0, 1e-9, 1e-5, 0.5])
def test_laplace_records_delta_and_leaves_it_unspent(known_data, delta) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        s = Synthesizer(SPEC, epsilon=1.2, delta=delta, random_state=0,
                        config=LearnConfig(mechanism="laplace"))
    table = s.fit(known_data.iloc[:1000]).model_.budget
    assert table["delta_total"] == delta and table["delta_spent"] == 0.0
    assert math.fsum(st["epsilon"] for st in table["steps"]) == pytest.approx(1.2, rel=1e-12)
    assert "rho_total" not in table
    assert all(st["mechanism"] != "gaussian (diffprivlib)" for st in table["steps"])


@pytest.mark.parametrize("delta", [1e-9, 1e-5])
def test_gaussian_runs_under_zcdp_and_the_rhos_add_up(known_data, delta) -> None:
    from fhirsynth.privacy.noise import zcdp_rho

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        s = Synthesizer(SPEC, epsilon=1.2, delta=delta, random_state=0,
                        config=LearnConfig(mechanism="gaussian"))
    model = s.fit(known_data.iloc[:1000]).model_
    table = model.budget
    # the patient count is a pure eps-DP Laplace step; the rest is zCDP over what is left
    count = [st for st in table["steps"] if st["name"] == "patient count"]
    assert count[0]["mechanism"] == "laplace (diffprivlib)" and "rho" not in count[0]
    rho = zcdp_rho(1.2 - count[0]["epsilon"], delta)
    assert table["rho_total"] == pytest.approx(rho, rel=1e-12)
    assert math.fsum(st.get("rho", 0.0) for st in table["steps"]) == pytest.approx(rho,
                                                                                 rel=1e-9)
    assert table["delta_spent"] == delta and table["epsilon_spent"] == pytest.approx(1.2)
    assert "zero-concentrated" in table["composition"]
    rest = {st["mechanism"] for st in table["steps"] if st["name"] != "patient count"}
    assert rest <= {"gaussian (diffprivlib)", "exponential (diffprivlib)"}
    assert "gaussian (diffprivlib)" in rest and model.info["noise"] == "gaussian"
    assert s.sample(200, random_state=0).shape[0] == 200


def _wide(d: int, n: int = 3000) -> tuple[TableSpec, pd.DataFrame]:
    rng = np.random.default_rng(0)
    spec = TableSpec(name="wide", columns=tuple(
        Column(name=f"b{j}", kind="boolean", nullable=False) for j in range(d)))
    return spec, pd.DataFrame({f"b{j}": rng.random(n) < 0.3 for j in range(d)})


@pytest.mark.parametrize("d,expected", [(4, "laplace"), (40, "gaussian")])
def test_auto_takes_gaussian_noise_only_where_it_is_the_smaller(d, expected) -> None:
    # 4 columns: about 11 measurements, fewer than e^2 / (4 rho) (about 21 at delta 1e-9):
    # Laplace noise is smaller; 40 columns: about 120, Gaussian noise is far smaller
    spec, df = _wide(d)
    s = Synthesizer(spec, epsilon=1.0, delta=1e-9, random_state=0).fit(df)
    assert s.model_.info["noise"] == expected
    assert ("rho_total" in s.model_.budget) == (expected == "gaussian")


def test_gaussian_without_delta_is_refused_before_any_fit() -> None:
    with pytest.raises(ConfigError, match="gaussian.*delta"):
        Synthesizer(SPEC, epsilon=1.0, random_state=0, config=LearnConfig(mechanism="gaussian"))


def test_a_saved_zcdp_model_keeps_its_accounting(known_data, tmp_path) -> None:
    s = Synthesizer(SPEC, epsilon=1.0, delta=1e-8, random_state=0,
                    config=LearnConfig(mechanism="gaussian")).fit(known_data.iloc[:800])
    assert "rho_total" in s.accountant_.table()
    s.save(tmp_path / "m.json")
    back = Synthesizer.load(tmp_path / "m.json")
    assert back.accountant_.table() == s.accountant_.table()
