"""UCUM unit normalisation for the observation features of a feature spec.

Each numeric observation column declares one target unit (its ``unit:``).  A value in
another unit is converted by a fixed, documented table: linear factors for mass and length,
and analyte-specific conversions (cholesterol mmol/L to mg/dL, HbA1c IFCC mmol/mol to NGSP %
by the IFCC-NGSP master equation).  A feature spec may add linear factors of its own for
one column (``factors: {"umol/L": 0.01131}``).  A unit neither knows yields ``None``: the
caller records an issue and drops the value, so units are never silently mixed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

__all__ = ["ANALYTES", "accepted_units", "convert", "normalise_unit"]

#: spellings seen in EHR exports, mapped to their UCUM code (keys are lower-cased)
_ALIASES = {
    "lb": "[lb_av]", "lbs": "[lb_av]", "[lb_av]": "[lb_av]", "pound": "[lb_av]",
    "in": "[in_i]", "inch": "[in_i]", "inches": "[in_i]", "[in_i]": "[in_i]",
    "ft": "[ft_i]", "[ft_i]": "[ft_i]",
    "kg": "kg", "g": "g", "cm": "cm", "m": "m", "mm": "mm",
    "kg/m2": "kg/m2", "kg/m^2": "kg/m2", "kg/m²": "kg/m2",
    "mm[hg]": "mm[Hg]", "mmhg": "mm[Hg]", "mm hg": "mm[Hg]",
    "mg/dl": "mg/dL", "mmol/l": "mmol/L", "mmol/mol": "mmol/mol", "%": "%",
}

#: (from, to) -> multiplicative factor, for analyte-independent conversions
_LINEAR: dict[tuple[str, str], float] = {
    ("[lb_av]", "kg"): 0.45359237,
    ("g", "kg"): 0.001,
    ("[in_i]", "cm"): 2.54,
    ("[ft_i]", "cm"): 30.48,
    ("m", "cm"): 100.0,
    ("mm", "cm"): 0.1,
}

#: analyte-specific conversions: (analyte, from, to) -> function
ANALYTES: dict[tuple[str, str, str], Callable[[float], float]] = {
    # total cholesterol, molar mass 386.65 g/mol: 1 mmol/L = 38.67 mg/dL
    ("cholesterol", "mmol/L", "mg/dL"): lambda v: v * 38.67,
    # HbA1c, IFCC-NGSP master equation: NGSP % = 0.09148 * IFCC mmol/mol + 2.152
    ("hba1c", "mmol/mol", "%"): lambda v: 0.09148 * v + 2.152,
}


def normalise_unit(unit: str | None) -> str | None:
    """The UCUM code for a unit spelling, or the spelling itself when unknown."""
    if unit is None:
        return None
    u = unit.strip()
    return _ALIASES.get(u.lower(), u)


def accepted_units(target: str, analyte: str | None = None,
                   factors: Mapping[str, float] | None = None) -> list[str]:
    """The UCUM codes :func:`convert` turns into ``target`` (``target`` first), for messages
    saying which units a column takes."""
    dst = normalise_unit(target) or target
    units = {src for (src, to) in _LINEAR if to == dst}
    units |= {src for (a, src, to) in ANALYTES if a == analyte and to == dst}
    units |= {normalise_unit(u) or u for u in (factors or {})}
    return [dst, *sorted(units - {dst})]


def convert(
    value: float, unit: str | None, target: str, analyte: str | None = None,
    factors: Mapping[str, float] | None = None,
) -> float | None:
    """``value`` in ``unit`` expressed in ``target``; ``None`` when no conversion is known.

    Parameters
    ----------
    value : float
        The measured value.
    unit : str or None
        UCUM code (or a known alias) of the value; ``None`` or empty is unknown.
    target : str
        UCUM code of the column.
    analyte : str, optional
        Name of the analyte for analyte-specific conversions (``cholesterol``, ``hba1c``).
    factors : mapping of str to float, optional
        The column's own factors (a feature spec's ``factors:``), keyed by UCUM code: the
        value in that unit times the factor is the value in ``target``.  They take
        precedence over the fixed table.
    """
    src = normalise_unit(unit)
    dst = normalise_unit(target)
    if not src or dst is None:
        return None
    if src == dst:
        return float(value)
    if factors and src in factors:
        return float(value) * float(factors[src])
    if (src, dst) in _LINEAR:
        return float(value) * _LINEAR[(src, dst)]
    if analyte and (analyte, src, dst) in ANALYTES:
        return float(ANALYTES[(analyte, src, dst)](float(value)))
    return None
