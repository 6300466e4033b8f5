"""The pass/attention marks on the shareable summary page."""

from fhirsynth.domain import Column, TableSpec
from fhirsynth.report.shareable import ATTENTION, PASS, ShareableContext, _checks

SPEC = TableSpec(name="s", columns=(Column(name="mrn", role="identifier"),
                                    Column(name="sex", categories=("f", "m"))))


def _ctx(steps, total, columns=("sex",), passed=True):
    spent = sum(steps)
    bt = {"epsilon_total": total, "delta_total": 0.0, "epsilon_spent": spent, "delta_spent": 0.0,
          "composition": "basic", "steps": [{"name": f"s{i}", "epsilon": e}
                                            for i, e in enumerate(steps)]}
    return ShareableContext(
        dataset="d", created="2026-01-01", run_id="r", version="0", budget_table=bt, spec=SPEC,
        synthetic_stats=[], synthetic_columns=list(columns), n_synthetic=10,
        safe_harbor={"passed": passed, "findings": []}, software={}, hashes={}, config={},
        limitations="")


def _marks(ctx):
    return {name: mark for name, mark, _ in _checks(ctx)}


def test_fully_spent_budget_passes():
    m = _marks(_ctx([0.25, 0.75], 1.0))
    assert m["Budget accounted"] == PASS and m["Epsilon and delta in the usual range"] == PASS


def test_unspent_or_large_budget_and_leaked_identifier_need_attention():
    m = _marks(_ctx([0.5], 1.0, columns=("sex", "mrn"), passed=False))
    assert m["Budget accounted"] == ATTENTION
    assert m["Identifier columns excluded from the model"] == ATTENTION
    assert m["Safe Harbor scan of the output"] == ATTENTION
    assert _marks(_ctx([20.0], 20.0))["Epsilon and delta in the usual range"] == ATTENTION
