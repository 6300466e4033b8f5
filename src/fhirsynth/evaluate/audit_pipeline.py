"""The privacy audit of the real pipeline: ``Synthesizer.fit`` on D and on D + one rare patient.

:func:`audit_synthesizer` draws a small cohort D from a patient table, plants the most
distinguishable patient it can build (the rarest state of every modelled column), fits the
synthesizer many times on each side with the configuration under audit and scores each
fitted model by its probability of the planted record.  Internal validation only: it reads
the private table, and its result describes that table.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fhirsynth._atomic import write_bytes_atomic
from fhirsynth.domain import TableSpec
from fhirsynth.errors import ConfigError, InputError, ReportError
from fhirsynth.evaluate.audit import (
    AuditResult,
    neighbouring_cohorts,
    rare_record,
    record_log_probability,
    run_audit,
)

__all__ = ["audit_synthesizer", "read_table", "write_result"]

logger = logging.getLogger(__name__)


def audit_synthesizer(
    spec: TableSpec,
    table: pd.DataFrame,
    *,
    epsilon: float,
    delta: float = 0.0,
    config: Any = None,
    trials: int = 500,
    rows: int = 100,
    seed: int = 0,
    confidence: float = 0.95,
    progress: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """Empirical lower bound on the epsilon of ``Synthesizer(spec, epsilon=...).fit``.

    Parameters
    ----------
    spec : TableSpec
        Public domain of the table.
    table : DataFrame
        Patient table (one row per patient); ``rows`` of them are drawn as D.
    epsilon, delta : float
        The claimed guarantee, passed to the synthesizer unchanged.
    config : LearnConfig, optional
        The configuration under audit (default: the synthesizer's default).
    trials : int
        Fits per side; half of them choose the threshold, half measure the error rates.
    rows : int
        Size of D (small, so that a fit takes milliseconds).
    seed : int
        Seeds the cohort draw, every fit and the split; the audit is reproducible.
    confidence : float
        Joint confidence of the reported bound.
    progress : callable, optional
        ``progress(done, total)`` after each fit.

    Returns
    -------
    AuditResult
        ``epsilon_lower`` above ``epsilon`` means the pipeline leaks more than it claims.
    """
    from fhirsynth.synthesizer import Synthesizer

    if rows < 2 or rows > len(table):
        raise ConfigError(f"rows ({rows}) must lie between 2 and the table size ({len(table)})")
    rng = np.random.default_rng(seed)
    d0 = table.iloc[np.sort(rng.choice(len(table), size=rows, replace=False))]
    record = rare_record(spec, d0)
    d, d_prime = neighbouring_cohorts(spec, d0, record, seed=seed)

    def release(cohort: pd.DataFrame, run_seed: int) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # small-cohort warnings, once per fit
            synth = Synthesizer(spec, epsilon=epsilon, delta=delta, config=config,
                                random_state=run_seed)
            return synth.fit(cohort).model_

    logger.info("auditing the synthesizer: %d fits per side on %d rows", trials, rows)
    return run_audit(
        release, lambda model: record_log_probability(model, record), d, d_prime,
        trials=trials, claimed_epsilon=epsilon, delta=delta, confidence=confidence,
        seed=seed, progress=progress,
    )


def read_table(path: str | Path) -> pd.DataFrame:
    """A patient CSV as text columns (the spec decides how each is encoded).

    A first line that looks like a data row is refused without quoting it
    (:func:`~fhirsynth.ingest.columns.check_header`).
    """
    from fhirsynth.ingest.columns import check_header
    from fhirsynth.ingest.sources import shown_path

    p = Path(path)
    try:
        frame = pd.read_csv(p, dtype=str, keep_default_na=False)
        check_header(p, [str(c) for c in frame.columns])
        return frame
    except FileNotFoundError:
        raise InputError(f"{shown_path(p)}: table file not found") from None
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{shown_path(p)}: not a readable CSV table "
                         f"({type(exc).__name__})") from None


def write_result(result: AuditResult, path: str | Path,
                 context: dict[str, object] | None = None) -> None:
    """Write the audit result as strict JSON (temporary file, then moved into place).

    ``context``: what was audited (spec name, the table's content fingerprint, rows drawn;
    never a seed), stored under ``"audited"`` so a result can be traced to its input.
    """
    p = Path(path)
    data: dict[str, object] = {
        k: (v if not isinstance(v, float) or math.isfinite(v) else str(v))
        for k, v in result.to_dict().items()}  # strict JSON: "inf" instead of Infinity
    if context:
        data["audited"] = context
    blob = json.dumps(data, indent=2, sort_keys=True, allow_nan=False).encode()
    try:
        write_bytes_atomic(p, blob)
    except OSError as exc:
        raise ReportError(f"{p}: cannot write the audit result ({exc.strerror})") from None
