"""Human descriptions of positions relative to named places: "83 km SW of Cabo San Lucas".

This module owns the gazetteer used in alert and track descriptions and the nearest-place
lookup. Places are airports from the ``airportsdata`` package (MIT), named by their city
(or by a cleaned airport name when the city is missing):

- Mexican airports with a city or an IATA code (public airports, named towns), plus island
  airstrips ("Isla Socorro", "Isla Cedros"), which are the only names far offshore where
  Mexico's territorial sea surrounds its islands; private ranch strips are left out because
  "31 km SE of Rancho El Durangueno" tells a reader nothing;
- airports with an IATA code south of 33.5°N in the US border and Gulf states (CA, AZ, NM,
  TX, LA, MS, AL, FL), so a flight on the US side reads "48 km NE of Laredo, Texas" rather
  than being described from a Mexican town across the border;
- airports with an IATA code in Belize, Guatemala, Honduras, El Salvador and Cuba, the
  neighbours of Mexico's southern border and the Yucatán Channel.

Foreign places carry their state or country ("Laredo, Texas", "Belize City, Belize");
Mexican places are bare ("Cabo San Lucas"), as in Mexican and international news copy.
The nearest-place search is vectorised (haversine over all places); no I/O after load.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius, the usual choice for haversine distances

# Southern edge of the band of US airports included: ~250 km north of the border at its
# northernmost (California), enough to name every US place an aircraft near Mexico is near.
US_MAX_LAT = 33.5
US_STATES = ("California", "Arizona", "New Mexico", "Texas", "Louisiana", "Mississippi", "Alabama", "Florida")
NEIGHBOURS = {"BZ": "Belize", "GT": "Guatemala", "HN": "Honduras", "SV": "El Salvador", "CU": "Cuba"}
_COUNTRIES = frozenset({"MX", "US", *NEIGHBOURS})

# Rows per block of the distance matrix: bounds temporary memory to ~block × places × 8 bytes.
_BLOCK = 4096
# Nearest-place grid: 1° cells keep each cell's exact candidate list to a handful of places
# (the index is built once, ~3,000 cells); the grid spans the places' box plus this margin,
# beyond which the brute-force search (every place) is used.
_GRID_DEG = 1.0
_GRID_MARGIN_DEG = 10.0
# Closer than this the position is described as "over" the place: the airport-to-town offset
# is already a few km, so finer distances would be false precision.
_OVER_M = 1500.0

_COMPASS8 = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
_COMPASS16 = ("N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW")

# Airport names that are a person's name, not a place: useless as "X km N of <name>".
_PERSON_TITLE = re.compile(r"^(General|Licenciado|Lic\.|Ingeniero|Captain|Don|Doctor|Dr\.)\b")
_NAME_SUFFIX = re.compile(
    r"\s+(International|Intercontinental|National|Municipal|Regional)?\s*(Airport|Airfield|Air Force Base|Air Base)$",
    re.IGNORECASE,
)
_DIRECTION_SUFFIX = re.compile(r"\s+(North|South|East|West|Northeast|Northwest|Southeast|Southwest|New|Old)$")


@dataclass(frozen=True, slots=True)
class Place:
    """A named place: display name, ISO country code, subdivision and coordinates."""

    name: str
    country: str
    subdivision: str
    lat: float
    lon: float
    code: str


def compass_point(bearing_deg: float, points: int = 8) -> str:
    """Compass point for a bearing (degrees true): 8 points (news style) or 16."""
    names = _COMPASS16 if points == 16 else _COMPASS8
    step = 360.0 / len(names)
    return names[int(((bearing_deg % 360.0) + step / 2) // step) % len(names)]


def haversine_m(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Great-circle distance in metres (broadcasting)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))), dtype=np.float64)


def initial_bearing_deg(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Initial great-circle bearing from point 1 to point 2, degrees true in [0, 360)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    y = np.sin(dl) * np.cos(p2)
    x = np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dl)
    return np.asarray(np.degrees(np.arctan2(y, x)) % 360.0, dtype=np.float64)


def destination(lat: float, lon: float, bearing_deg: float, dist_m: float) -> tuple[float, float]:
    """Point reached from (lat, lon) after dist_m along a great circle with the given bearing."""
    p1, l1, b = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    d = dist_m / EARTH_RADIUS_M
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540.0) % 360.0 - 180.0


def _clean_name(airport: dict[str, Any]) -> str | None:
    city = str(airport.get("city") or "").strip()
    if city:
        return city
    name = str(airport.get("name") or "").strip()
    if not name or _PERSON_TITLE.match(name):
        return None
    name = _NAME_SUFFIX.sub("", name).strip()
    name = _DIRECTION_SUFFIX.sub("", name).strip()
    return name or None


def _airports() -> Iterator[dict[str, Any]]:
    """The rows of ``airportsdata``'s table (the file behind ``airportsdata.load``), in ICAO order.

    Read row by row rather than through ``airportsdata.load()``, which builds a dict of all
    ~28,000 airports to keep ~500: in a worker, whose heap stays fragmented around the freed
    rows, that cost ~45 MB of resident memory for the life of the process.
    """
    from importlib.resources import files

    rows: list[dict[str, Any]] = []
    with files("airportsdata").joinpath("airports.csv").open(encoding="utf8") as f:
        reader = csv.DictReader(f, quoting=csv.QUOTE_NONNUMERIC)
        for row in reader:
            if row["country"] in _COUNTRIES and row["icao"]:
                rows.append(row)
    return iter(sorted(rows, key=lambda r: str(r["icao"])))


class Places:
    """A gazetteer with a vectorised nearest-place search."""

    def __init__(self, places: Sequence[Place]) -> None:
        if not places:
            raise ValueError("Places needs at least one place")
        self.places: tuple[Place, ...] = tuple(places)
        self._lat = np.array([p.lat for p in self.places], dtype=np.float64)
        self._lon = np.array([p.lon for p in self.places], dtype=np.float64)
        self._labels = tuple(self._label(p) for p in self.places)
        self._build_grid()

    def _build_grid(self) -> None:
        """Per 1° cell, every place that can be the nearest to some point of the cell.

        For a cell with centre c and half-diagonal h, any point x in it has
        d(p, c) - h <= d(p, x) <= d(p, c) + h (triangle inequality), so only places whose
        lower bound does not exceed the smallest upper bound can win: the lookup stays exact.
        """
        g = _GRID_DEG
        self._g_lat0 = math.floor(float(self._lat.min()) - _GRID_MARGIN_DEG)
        self._g_lon0 = math.floor(float(self._lon.min()) - _GRID_MARGIN_DEG)
        self._g_ny = int(math.ceil((float(self._lat.max()) + _GRID_MARGIN_DEG - self._g_lat0) / g))
        self._g_nx = int(math.ceil((float(self._lon.max()) + _GRID_MARGIN_DEG - self._g_lon0) / g))
        iy, ix = np.mgrid[0 : self._g_ny, 0 : self._g_nx]
        c_lat = (self._g_lat0 + (iy.ravel() + 0.5) * g).astype(np.float64)
        c_lon = (self._g_lon0 + (ix.ravel() + 0.5) * g).astype(np.float64)
        # Half-diagonal: the farthest corner from the centre (the poleward ones are not farther
        # on a sphere, the equatorward ones are; take the max of both to be safe).
        h = np.maximum(
            haversine_m(c_lat, c_lon, c_lat + g / 2, c_lon + g / 2),
            haversine_m(c_lat, c_lon, c_lat - g / 2, c_lon + g / 2),
        )
        d = haversine_m(c_lat[:, None], c_lon[:, None], self._lat[None, :], self._lon[None, :])
        ub = (d + h[:, None]).min(axis=1)
        cand = (d - h[:, None]) <= ub[:, None]
        k = int(cand.sum(axis=1).max())
        order = np.argsort(~cand, axis=1, kind="stable")[:, :k]
        self._g_cand = np.where(np.take_along_axis(cand, order, axis=1), order, -1).astype(np.intp)

    @classmethod
    def load(cls, include_neighbours: bool = True) -> Places:
        """Mexican airports, plus (by default) US border/Gulf and southern neighbours' airports."""
        out: list[Place] = []
        for ap in _airports():
            country = str(ap["country"])
            if country == "MX":
                if not (ap.get("city") or ap.get("iata") or str(ap.get("name", "")).startswith("Isla ")):
                    continue
            elif not include_neighbours or not ap.get("iata"):
                continue
            elif country == "US":
                if ap["subd"] not in US_STATES or float(ap["lat"]) > US_MAX_LAT:
                    continue
            elif country not in NEIGHBOURS:
                continue
            name = _clean_name(ap)
            if name is None:
                continue
            out.append(Place(name, country, str(ap.get("subd") or ""), float(ap["lat"]), float(ap["lon"]),
                             str(ap["icao"])))
        return cls(out)

    @staticmethod
    def _label(p: Place) -> str:
        if p.country == "MX":
            return p.name
        if p.country == "US":
            return f"{p.name}, {p.subdivision}" if p.subdivision else p.name
        return f"{p.name}, {NEIGHBOURS.get(p.country, p.country)}"

    def __len__(self) -> int:
        return len(self.places)

    def label(self, index: int) -> str:
        return self._labels[index]

    def nearest(
        self, lat: npt.ArrayLike, lon: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Index of the nearest place, distance (m) and bearing from that place (deg), per point.

        NaN coordinates give index -1 and NaN distance/bearing.
        """
        la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        n = la.shape[0]
        idx = np.full(n, -1, dtype=np.intp)
        dist = np.full(n, np.nan)
        ok = np.isfinite(la) & np.isfinite(lo)
        iy = np.floor((np.where(ok, la, 0.0) - self._g_lat0) / _GRID_DEG).astype(np.intp)
        ix = np.floor((np.where(ok, lo, 0.0) - self._g_lon0) / _GRID_DEG).astype(np.intp)
        in_grid = ok & (iy >= 0) & (iy < self._g_ny) & (ix >= 0) & (ix < self._g_nx)
        sel = np.flatnonzero(in_grid)
        if sel.size:
            cand = self._g_cand[iy[sel] * self._g_nx + ix[sel]]
            c = np.where(cand >= 0, cand, 0)
            d = haversine_m(la[sel, None], lo[sel, None], self._lat[c], self._lon[c])
            d[cand < 0] = np.inf
            j = np.argmin(d, axis=1)
            idx[sel] = cand[np.arange(sel.size), j]
            dist[sel] = d[np.arange(sel.size), j]
        far = np.flatnonzero(ok & ~in_grid)
        for s in range(0, far.size, _BLOCK):
            rows = far[s : s + _BLOCK]
            d = haversine_m(la[rows, None], lo[rows, None], self._lat[None, :], self._lon[None, :])
            j = np.argmin(d, axis=1)
            idx[rows] = j
            dist[rows] = d[np.arange(rows.size), j]
        bearing = np.full(n, np.nan)
        found = np.flatnonzero(ok)
        if found.size:
            bearing[found] = initial_bearing_deg(self._lat[idx[found]], self._lon[idx[found]], la[found], lo[found])
        return idx, dist, bearing

    def nearest_brute_force(self, lat: float, lon: float) -> tuple[int, float]:
        """Reference search over every place (tests check the grid against it)."""
        d = haversine_m(lat, lon, self._lat, self._lon)
        j = int(np.argmin(d))
        return j, float(d[j])

    def describe_many(self, lat: npt.ArrayLike, lon: npt.ArrayLike, points: int = 8) -> list[str | None]:
        """'83 km SW of Cabo San Lucas' for each point (None where the point is missing)."""
        idx, dist, bearing = self.nearest(lat, lon)
        out: list[str | None] = []
        for i, d, b in zip(idx.tolist(), dist.tolist(), bearing.tolist(), strict=True):
            out.append(None if i < 0 else self.phrase(i, d, b, points))
        return out

    def describe(self, lat: float, lon: float, points: int = 8) -> str | None:
        return self.describe_many([lat], [lon], points)[0]

    def phrase(self, index: int, dist_m: float, bearing_deg: float, points: int = 8) -> str:
        name = self._labels[index]
        if dist_m < _OVER_M:
            return f"over {name}"
        return f"{round(dist_m / 1000.0):d} km {compass_point(bearing_deg, points)} of {name}"
