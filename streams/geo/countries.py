"""Country codes of the airspace a position is in, as reported in ``Scores.country``.

This module owns the fixed int8 codes; they never depend on the order of features in a data
file, so a code stored in a topic or table means the same country after a rebuild.
``scripts/build_zones.py`` refuses to build a neighbour that has no code here.
"""

from __future__ import annotations

_NAMES = (
    "INTL",  # international airspace: inside the coverage box but in no country's land + 12 nm
    "MEX",
    "USA",
    "GTM",
    "BLZ",
    "HND",
    "SLV",
    "NIC",
    "CRI",
    "PAN",
    "COL",
    "ECU",
    "CUB",
    "BHS",
    "CYM",
    "JAM",
    "FRA",  # Clipperton Island's territorial sea
    "UNK",  # outside the coverage box: no neighbour data there, so no claim either way
)
COUNTRY_NAMES: dict[int, str] = dict(enumerate(_NAMES))
COUNTRY_CODES: dict[str, int] = {name: code for code, name in COUNTRY_NAMES.items()}
CODE_INTL = COUNTRY_CODES["INTL"]
CODE_MEX = COUNTRY_CODES["MEX"]
CODE_UNK = COUNTRY_CODES["UNK"]
# Neighbour polygons were clipped to this box (lon0, lat0, lon1, lat1) by scripts/build_zones.py;
# outside it a position not in Mexico is 'UNK', not 'INTL'.
COVERAGE_BOX = (-125.0, 5.0, -78.0, 40.0)
# Human wording for describe output.
AIRSPACE_LABELS: dict[str, str] = {
    "INTL": "international airspace",
    "MEX": "Mexican sovereign airspace",
    "USA": "US airspace",
    "UNK": "unknown (outside the bundled neighbour data)",
}


def airspace_label(name: str) -> str:
    """'US airspace', 'international airspace', or '<ISO3> airspace' for other neighbours."""
    return AIRSPACE_LABELS.get(name, f"{name} airspace")
