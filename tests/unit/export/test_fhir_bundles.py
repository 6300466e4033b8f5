"""Synthetic FHIR as one transaction Bundle per patient (``write_fhir(..., bundles=...)``)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhirsynth.encode import decode
from fhirsynth.export.fhir import write_fhir
from fhirsynth.ingest import read_input
from fhirsynth.ingest.features import load_feature_spec


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    spec = load_feature_spec()
    rng = np.random.default_rng(4)
    cols = spec.modelled
    codes = np.column_stack([rng.integers(0, c.n_states, 40) for c in cols])
    df = decode(spec, [c.name for c in cols], codes, rng)
    tmp = tmp_path_factory.mktemp("bundles")
    paths = write_fhir(df, spec, tmp / "fhir", rng_or_seed=7, bundles=tmp / "bundles.ndjson")
    return spec, tmp, paths


def test_each_line_is_a_valid_transaction_bundle_of_one_patient(written) -> None:
    _, tmp, paths = written
    assert paths["Bundle"] == tmp / "bundles.ndjson"
    assert not (tmp / "fhir" / "Bundle.ndjson").exists()
    lines = paths["Bundle"].read_text().splitlines()
    patients = [json.loads(x) for x in paths["Patient"].read_text().splitlines()]
    assert len(lines) == len(patients) == 40
    Bundle = get_fhir_model_class("Bundle")
    for line, patient in zip(lines, patients, strict=True):
        b = json.loads(line)
        Bundle.model_validate(b)
        assert b["type"] == "transaction"
        entries = b["entry"]
        assert entries[0]["resource"] == patient  # the same patient, the same id
        full = {e["fullUrl"] for e in entries}
        for e in entries:
            assert e["fullUrl"] == f"urn:uuid:{e['resource']['id']}"
            assert e["request"] == {"method": "POST", "url": e["resource"]["resourceType"]}
            if "subject" in e["resource"]:
                # every reference resolves inside the bundle
                assert e["resource"]["subject"]["reference"] in full
                assert e["resource"]["subject"]["reference"] == f"urn:uuid:{patient['id']}"


def test_the_bundles_read_back_as_the_ndjson_does(written) -> None:
    spec, tmp, paths = written
    a, _ = read_input([paths["Bundle"]], spec, keep_test_patients=True)
    b, _ = read_input([tmp / "fhir"], spec, keep_test_patients=True)
    key = list(a.columns)
    a = a.sort_values(key).reset_index(drop=True)
    b = b.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
