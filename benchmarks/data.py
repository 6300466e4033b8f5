"""Benchmark inputs: the shared tabular datasets, their fixed 80/20 split and public domains.

Owns the dataset registry (Adult, stroke), the seeded split every method shares and the
public-domain JSON handed to the peer adapters (states taken from the fhirsynth spec, never
from the data).  Scoring (and its <= 16-bin discretisation) is fhirsynth.evaluate's.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fhirsynth.domain import TableSpec, load_spec

#: the shared folder (holding data/ and cases/): $FHIRSYNTH_SHARED, else ../shared beside the repo
SHARED = Path(os.environ.get("FHIRSYNTH_SHARED") or
              Path(__file__).resolve().parents[2] / "shared").expanduser()
SHARED_TABULAR = SHARED / "data" / "tabular"
#: the shared Synthea cohort: one FHIR bundle per patient
SHARED_SYNTHEA = SHARED / "data" / "fhir" / "synthea-r4" / "bundles"
#: the Synthea patient table's outcome for TSTR (the default feature spec declares none)
SYNTHEA_TARGET = "hypertension"
SPLIT_SEED = 20261204
_NA = ["", "N/A", "NA", "NaN", "nan", "null", "None"]


@dataclass(frozen=True)
class Dataset:
    """One benchmark table: spec, train (80%) and real holdout (20%)."""

    name: str
    spec: TableSpec
    schema_path: Path
    train: pd.DataFrame
    holdout: pd.DataFrame


def read_table(csv_path: Path, spec: TableSpec) -> pd.DataFrame:
    """Modelled columns of a CSV: categoricals as declared strings, numerics as floats."""
    cols = spec.modelled
    dtypes = {c.name: str for c in cols if c.kind != "numeric"}
    df = pd.read_csv(csv_path, dtype=dtypes, keep_default_na=False, na_values=_NA)
    out = pd.DataFrame(index=df.index)
    for c in cols:
        if c.kind == "numeric":
            assert c.bounds is not None
            out[c.name] = pd.to_numeric(df[c.name], errors="coerce").clip(*c.bounds)
        else:
            out[c.name] = df[c.name].astype(object)
    return out.reset_index(drop=True)


def read_synthea(bundles: Path = SHARED_SYNTHEA) -> tuple[TableSpec, Path, pd.DataFrame]:
    """The shared Synthea cohort folded into fhirsynth's default patient table.

    Booleans become the strings ``true`` / ``false`` (the peers' declared categories),
    categoricals strings, numerics floats; the default spec gets ``hypertension`` as its
    outcome so that TSTR has a label (a public choice of the benchmark, not of the data).
    """
    import dataclasses

    from fhirsynth.ingest import read_fhir
    from fhirsynth.ingest.features import default_spec_path

    spec = load_spec(default_spec_path())
    spec = dataclasses.replace(spec, target=SYNTHEA_TARGET, positive="true")
    raw, _ = read_fhir([bundles], spec)
    out = pd.DataFrame(index=raw.index)
    for c in spec.modelled:
        s = raw[c.name]
        if c.kind == "numeric":
            out[c.name] = pd.to_numeric(s, errors="coerce").astype(float)
        elif c.kind == "boolean":
            out[c.name] = s.map(lambda v: v if pd.isna(v) else ("true" if v else "false"))
            out[c.name] = out[c.name].astype(object)
        else:
            out[c.name] = s.astype(object).where(s.notna(), None)
    return spec, default_spec_path(), out.reset_index(drop=True)


def load_dataset(name: str, *, root: Path = SHARED_TABULAR, subsample: int | None = None,
                 seed: int = SPLIT_SEED) -> Dataset:
    """Load ``name`` (a table in ``root``, or ``synthea``) and split it 80/20 (fixed seed)."""
    if name == "synthea":
        spec, schema, df = read_synthea()
    else:
        schema = root / f"{name}.schema.json"
        spec = load_spec(schema)
        df = read_table(root / f"{name}.csv", spec)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(df))
    if subsample is not None:
        idx = idx[:subsample]
    cut = int(round(0.8 * len(idx)))
    return Dataset(name, spec, schema, df.iloc[idx[:cut]].reset_index(drop=True),
                   df.iloc[idx[cut:]].reset_index(drop=True))


def public_domain(spec: TableSpec) -> dict:
    """The public domain of the modelled columns as JSON for the adapters.

    Numeric states are fhirsynth's own public bins (``Column.bin_edges``; one state per
    integer for small integer ranges), so every method models the same state space.
    """
    cols = []
    for c in spec.modelled:
        d: dict = {"name": c.name, "kind": c.kind, "nullable": c.nullable}
        if c.kind == "numeric":
            if c.point_masses:
                raise ValueError(f"column {c.name!r}: point masses are not passed to peers")
            d.update(bounds=list(c.bounds or ()), integer=c.integer,
                     edges=[float(x) for x in c.bin_edges()])
            d["n_states"] = len(d["edges"]) - 1 + int(c.nullable)
        elif c.kind == "boolean":
            d.update(kind="categorical", categories=["false", "true"])
            d["n_states"] = 2 + int(c.nullable)
        else:
            d["categories"] = list(c.categories) + (["<other>"] if c.other else [])
            d["n_states"] = len(d["categories"]) + int(c.nullable)
        cols.append(d)
    return {"name": spec.name, "target": spec.target, "positive": spec.positive, "columns": cols}


def write_public_domain(spec: TableSpec, path: Path) -> Path:
    path.write_text(json.dumps(public_domain(spec), indent=1))
    return path
