"""US state names and codes: the coarsest geography a patient row may carry.

Rows keep the state (USPS two-letter code) and nothing below it.  Both the FHIR extractor
(``Patient.address.state``) and the CSV reader (a ``STATE`` column) normalise through here.
"""

from __future__ import annotations

__all__ = ["US_STATES", "state_code"]

#: USPS code -> name: the 50 states, DC, and the inhabited territories
US_STATES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan",
    "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
    "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
    "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota",
    "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee",
    "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington",
    "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming", "PR": "Puerto Rico",
    "GU": "Guam", "VI": "U.S. Virgin Islands", "AS": "American Samoa",
    "MP": "Northern Mariana Islands",
}
_BY_NAME = {name.lower(): code for code, name in US_STATES.items()}


def state_code(value: object) -> str | None:
    """The USPS code of a state given as code or name (any case); ``None`` if unknown."""
    if not isinstance(value, str):
        return None
    v = " ".join(value.split())
    if v.upper() in US_STATES:
        return v.upper()
    return _BY_NAME.get(v.lower())
