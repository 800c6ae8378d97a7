"""Geofence room: Mexico's sovereign airspace, approach rings, neighbours and user fences.

This package owns everything geometric in skyfence: the packaged OSM-derived zone files
(``data/``), their spatial indexes (``index``), the numba kernels (``kernels``), the
``Geofence`` API (``fence``), zone/fence file reading (``zonefiles``), country codes
(``countries``) and the CLI/web-facing answers (``describe``).

Importing ``streams.geo`` is cheap: names below are resolved lazily, so neither numba nor
the zone files are touched until one is used, and kernels compile only on first call.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Geofence": "streams.geo.fence",
    "Scores": "streams.geo.fence",
    "DEFAULT_RINGS_NM": "streams.geo.fence",
    "DEFAULT_HORIZON_S": "streams.geo.fence",
    "COUNTRY_NAMES": "streams.geo.countries",
    "COUNTRY_CODES": "streams.geo.countries",
    "FenceFileError": "streams.geo.zonefiles",
    "UserFence": "streams.geo.zonefiles",
    "describe_points": "streams.geo.describe",
    "check_lines": "streams.geo.describe",
    "format_point": "streams.geo.describe",
    "list_fences": "streams.geo.describe",
    "zones_geojson": "streams.geo.describe",
    "LineError": "streams.geo.describe",
}
__all__ = [
    "COUNTRY_CODES",
    "COUNTRY_NAMES",
    "DEFAULT_HORIZON_S",
    "DEFAULT_RINGS_NM",
    "FenceFileError",
    "Geofence",
    "LineError",
    "Scores",
    "UserFence",
    "check_lines",
    "describe_points",
    "format_point",
    "list_fences",
    "zones_geojson",
]

if TYPE_CHECKING:
    from streams.geo.countries import COUNTRY_CODES, COUNTRY_NAMES
    from streams.geo.describe import (
        LineError,
        check_lines,
        describe_points,
        format_point,
        list_fences,
        zones_geojson,
    )
    from streams.geo.fence import DEFAULT_HORIZON_S, DEFAULT_RINGS_NM, Geofence, Scores
    from streams.geo.zonefiles import FenceFileError, UserFence


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'streams.geo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
