"""News-style descriptions relative to named places ("83 km SW of Cabo San Lucas")."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import Geod

from streams.core.places import Places, compass_point, destination, haversine_m, initial_bearing_deg

pytestmark = pytest.mark.unit

GEOD = Geod(ellps="WGS84")


def _place(places: Places, code: str):
    return next(p for p in places.places if p.code == code)


def test_83_km_sw_of_cabo_san_lucas(places):
    # Places are located at their airports: Cabo San Lucas is MMSL.
    mmsl = _place(places, "MMSL")
    lat, lon = destination(mmsl.lat, mmsl.lon, 225.0, 83_000.0)
    assert places.describe(lat, lon) == "83 km SW of Cabo San Lucas"


def test_point_83_km_sw_of_the_town_centre_reads_from_its_airport(places):
    # The brief's reference point is the town (22.8905, -109.9167); the airport sits ~6.5 km
    # NNW of it, so the same point is 86 km SW of the place as the gazetteer knows it.
    lat, lon = destination(22.8905, -109.9167, 225.0, 83_000.0)
    idx, dist, bearing = places.nearest([lat], [lon])
    assert places.places[int(idx[0])].name == "Cabo San Lucas"
    assert compass_point(float(bearing[0])) == "SW"
    assert 83_000 < dist[0] < 90_000
    assert places.describe(lat, lon) == f"{round(dist[0] / 1000)} km SW of Cabo San Lucas"


def test_us_side_of_the_border_reads_from_us_places(places, boe004):
    # BOE004's closest fix to Laredo International (KLRD) is described from the US side.
    klrd = _place(places, "KLRD")
    d = [math.dist((p.lat, p.lon), (klrd.lat, klrd.lon)) for p in boe004]
    p = boe004[int(np.argmin(d))]
    text = places.describe(p.lat, p.lon)
    assert text is not None and text.endswith(", Texas")
    assert places.describe(klrd.lat, klrd.lon) == "over Laredo, Texas"


def test_mexican_places_are_bare_and_neighbours_are_qualified(places):
    mx = [p for p in places.places if p.country == "MX"]
    assert 80 <= len(mx) <= 144
    assert all(places.label(places.places.index(p)) == p.name for p in mx)
    bz = next(p for p in places.places if p.country == "BZ")
    assert places.label(places.places.index(bz)).endswith(", Belize")
    # Island airstrips are kept: the only names far offshore.
    assert {"Isla Socorro", "Isla Cedros"} <= {p.name for p in mx}
    # Person-named airports without a city are not places.
    assert not any(p.name.startswith(("General ", "Licenciado ")) for p in places.places)


@pytest.mark.parametrize(
    ("bearing", "eight", "sixteen"),
    [(0.0, "N", "N"), (22.4, "N", "NNE"), (44.0, "NE", "NE"), (200.0, "S", "SSW"), (225.0, "SW", "SW"),
     (337.6, "N", "NNW"), (330.0, "NW", "NNW"), (359.9, "N", "N"), (-45.0, "NW", "NW")],
)  # fmt: skip
def test_compass_points(bearing, eight, sixteen):
    assert compass_point(bearing) == eight
    assert compass_point(bearing, 16) == sixteen


def test_spherical_distance_and_bearing_against_wgs84_geodesics(dal1812):
    lat = np.array([p.lat for p in dal1812[:200]])
    lon = np.array([p.lon for p in dal1812[:200]])
    d = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])
    az, _, dg = GEOD.inv(lon[:-1], lat[:-1], lon[1:], lat[1:])
    moving = dg > 500
    assert np.allclose(d[moving], dg[moving], rtol=0.006)  # sphere vs ellipsoid: < 0.6 %
    b = initial_bearing_deg(lat[:-1], lon[:-1], lat[1:], lon[1:])
    diff = (b[moving] - np.asarray(az)[moving] + 180) % 360 - 180
    assert np.abs(diff).max() < 0.5


def test_destination_inverts_distance_and_bearing():
    lat, lon = destination(22.9477, -109.937, 225.0, 83_000.0)
    assert haversine_m(22.9477, -109.937, lat, lon) == pytest.approx(83_000.0, rel=1e-9)
    assert float(initial_bearing_deg(22.9477, -109.937, lat, lon)) == pytest.approx(225.0, abs=1e-6)


def test_missing_coordinates_give_none(places):
    assert places.describe_many([math.nan, 19.43], [-99.07, -99.07]) == [None, "over Mexico City"]
