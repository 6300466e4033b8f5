"""Test inputs: a copy of the first bundles of the fixture cohort, each edited as a test needs."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

COHORT = Path(__file__).resolve().parents[1] / "fixtures" / "cohort"


def edited_cohort(dest: Path, n: int,
                  edit: Callable[[int, dict[str, Any]], None] | None = None) -> Path:
    """The first ``n`` bundles of the cohort in a new folder ``dest`` (gzipped ones stay
    gzipped); ``edit(i, bundle)`` changes bundle ``i`` (in file order) before it is written."""
    dest.mkdir(parents=True)
    for i, path in enumerate(sorted(COHORT.iterdir())[:n]):
        gz = path.suffix == ".gz"
        raw = path.read_bytes()
        bundle = json.loads(gzip.decompress(raw) if gz else raw)
        if edit is not None:
            edit(i, bundle)
        text = json.dumps(bundle).encode("utf-8")
        (dest / path.name).write_bytes(gzip.compress(text) if gz else text)
    return dest


def resources(bundle: dict[str, Any], rtype: str) -> Iterator[dict[str, Any]]:
    """The resources of one type in a bundle."""
    return (e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype)
