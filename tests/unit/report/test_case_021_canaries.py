"""Case 021: no identifier value of the input reaches the shareable report or the audit record."""

import re

import numpy as np
import pandas as pd
import pytest

from fhirsynth.domain import TableSpec
from fhirsynth.privacy.budget import Accountant, PrivacyBudget, Step
from fhirsynth.report import write_reports

pypdf = pytest.importorskip("pypdf")

IDENTIFIERS = ["Id", "BIRTHDATE", "SSN", "DRIVERS", "FIRST", "LAST", "ADDRESS", "CITY", "ZIP",
               "LAT", "LON"]


@pytest.mark.shared_data
def test_identifier_values_never_reach_shareable_outputs(shared_cases, tmp_path):
    real = pd.read_csv(shared_cases / "021-identifier-columns" / "input-patients.csv",
                       dtype=str, keep_default_na=False)
    spec = TableSpec.from_dict({
        "name": "case-021",
        "columns": {
            "Id": {"role": "key"}, "BIRTHDATE": {"role": "identifier"},
            "SSN": {"role": "identifier"}, "DRIVERS": {"role": "identifier"},
            "FIRST": {"role": "identifier"}, "LAST": {"role": "identifier"},
            "ADDRESS": {"role": "identifier"}, "CITY": {"role": "quasi_identifier"},
            "STATE": {"type": "categorical", "domain": ["Massachusetts"], "other": True},
            "ZIP": {"role": "quasi_identifier"}, "LAT": {"role": "identifier"},
            "LON": {"role": "identifier"},
            "GENDER": {"type": "categorical", "domain": ["F", "M"]},
            "HEALTHCARE_EXPENSES": {"type": "numeric", "bounds": [0, 2000000]},
        },
    })
    rng = np.random.default_rng(0)
    synth = pd.DataFrame({
        "Id": [f"00000000-0000-4000-8000-{i:012d}" for i in range(60)],
        "STATE": "Massachusetts", "GENDER": rng.choice(["F", "M"], 60),
        "HEALTHCARE_EXPENSES": rng.uniform(0, 2e6, 60).round(2),
    })
    synth.to_csv(tmp_path / "synthetic.csv", index=False)
    acc = Accountant(PrivacyBudget(epsilon=1.0))
    acc.spend(Step(name="marginals", mechanism="Laplace", epsilon=1.0, sensitivity=2.0))
    paths = write_reports(tmp_path, spec=spec, real_train=real.iloc[:50],
                          real_holdout=real.iloc[50:], synthetic=synth,
                          budget_table=acc.table(), outputs=["synthetic.csv"])
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(str(paths.report)).pages)
    audit = paths.audit.read_text(encoding="utf-8")
    raw = paths.report.read_bytes()
    values = {v for c in IDENTIFIERS for v in real[c] if len(v) >= 5}
    assert len(values) > 400
    # whole tokens: a 5-digit ZIP inside a random run id or a sha256 is not a leak
    def found(v: str) -> bool:
        pat = r"(?<![0-9A-Za-z])" + re.escape(v) + r"(?![0-9A-Za-z])"
        return bool(re.search(pat, text) or re.search(pat, audit)
                    or re.search(pat.encode(), raw))

    leaked = sorted(v for v in values if found(v))
    assert leaked == []
    # the regenerated key column is exempt from the unique-id rule; the scan passes
    assert '"passed": true' in audit
