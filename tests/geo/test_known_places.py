"""Known places from the issue and the news-story use case, on the real OSM zone files."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Geod

from streams.geo.fence import NM_M, Geofence

pytestmark = pytest.mark.unit

GEOD = Geod(ellps="WGS84")
CABO_SAN_LUCAS = (22.8905, -109.9167)


def _tolerance(ref_m: np.ndarray) -> np.ndarray:
    return np.maximum(0.005 * np.abs(ref_m), 50.0)


def test_83_km_southwest_of_cabo_is_outside_but_inside_the_100_nm_ring(fence, sovereign_geom, boundary_ref):
    lon, lat, _ = GEOD.fwd(CABO_SAN_LUCAS[1], CABO_SAN_LUCAS[0], 225.0, 83_000.0)
    s = fence.score([lat], [lon])
    assert not s.inside[0]
    assert not shapely.contains_xy(sovereign_geom, lon, lat)
    ref_d, _ = boundary_ref.distance(np.array([lat]), np.array([lon]))
    assert abs(s.dist_m[0] - ref_d[0]) <= _tolerance(ref_d)[0]
    # It is a ring zone (buffer), and the ring holding it is at most 100 nm.
    assert s.zone[0] >= 1
    assert fence.rings_nm[s.zone[0] - 1] <= 100.0
    assert s.dist_m[0] <= 100.0 * NM_M
    assert fence.zone_names()[s.zone[0]].endswith("beyond the sovereign limit")
    assert s.country_names()[0] == "INTL"


def test_cabo_point_zone_follows_configured_rings(sovereign_geom):
    lon, lat, _ = GEOD.fwd(CABO_SAN_LUCAS[1], CABO_SAN_LUCAS[0], 225.0, 83_000.0)
    only_big = Geofence.load(rings_nm=(100.0,))
    only_small = Geofence.load(rings_nm=(5.0, 20.0))
    assert only_big.score([lat], [lon]).zone[0] == 1
    assert only_small.score([lat], [lon]).zone[0] == -1


@pytest.mark.parametrize(
    ("name", "lat", "lon", "inside", "country"),
    [
        ("Tijuana", 32.5149, -117.0382, True, "MEX"),
        ("San Diego", 32.7157, -117.1611, False, "USA"),
        ("Isla Guadalupe, ~13 km off its west coast", 29.05, -118.50, True, "MEX"),
        ("beyond Isla Guadalupe's 12 nm", 29.05, -118.80, False, "INTL"),
        ("Isla Socorro, ~7 km off its west coast", 18.75, -111.15, True, "MEX"),
        ("Isla Clarión's waters", 18.36, -114.60, True, "MEX"),
        ("Arrecife Alacranes", 22.45, -89.70, True, "MEX"),
        ("Calexico", 32.6789, -115.4989, False, "USA"),
        ("Mexicali", 32.6245, -115.4523, True, "MEX"),
        ("Nogales, Arizona", 31.3404, -110.9343, False, "USA"),
        ("Nogales, Sonora", 31.3086, -110.9422, True, "MEX"),
        ("El Paso", 31.7587, -106.4869, False, "USA"),
        ("Ciudad Juárez", 31.6904, -106.4245, True, "MEX"),
        ("Laredo", 27.5064, -99.5075, False, "USA"),
        ("Nuevo Laredo", 27.4763, -99.5164, True, "MEX"),
        ("Brownsville", 25.9017, -97.4975, False, "USA"),
        ("Matamoros", 25.8690, -97.5027, True, "MEX"),
        ("Mexico City", 19.4326, -99.1332, True, "MEX"),
        ("Guatemala City", 14.6349, -90.5069, False, "GTM"),
        ("Belize City", 17.5046, -88.1962, False, "BLZ"),
        ("Havana", 23.1136, -82.3666, False, "CUB"),
        ("Clipperton Island", 10.30, -109.22, False, "FRA"),
        ("Gulf of Mexico, 250 km off Yucatán", 25.0, -90.0, False, "INTL"),
        ("Houston", 29.76, -95.37, False, "USA"),
        ("Paris (outside the neighbour data)", 48.8566, 2.3522, False, "UNK"),
    ],
)
def test_known_place(fence, sovereign_geom, boundary_ref, name, lat, lon, inside, country):
    s = fence.score([lat], [lon])
    assert bool(s.inside[0]) is inside, name
    assert bool(shapely.contains_xy(sovereign_geom, lon, lat)) is inside, name
    assert s.country_names()[0] == country, name
    assert bool(s.dist_m[0] < 0) is inside
    assert bool(s.zone[0] == 0) is inside
    if abs(lat) < 50:
        ref_d, _ = boundary_ref.distance(np.array([lat]), np.array([lon]))
        assert abs(abs(s.dist_m[0]) - ref_d[0]) <= _tolerance(ref_d)[0], name


def test_us_side_of_the_land_border_is_us_airspace_all_along(fence, neighbour_geoms):
    """Points 30 m to 1.5 km north of the land border are never 'international'.

    They are built from points just inside Mexico near the border, moved across it along the
    bearing to the nearest boundary point; the 1000 m US outline alone would leave gaps here.
    """
    rng = np.random.default_rng(11)
    lon = rng.uniform(-116.9, -97.3, 400_000)
    lat = rng.uniform(25.8, 32.8, 400_000)
    # The land border: the Rio Grande east of El Paso (the Gulf coast is at -97.15); west of it
    # north of 31.25°N as far as the Colorado River, then north of 32.35°N to Tijuana. Further
    # south the Baja and Gulf of California coasts face the sea.
    land_border = (lon >= -106.6) | ((lat >= 31.25) & (lon >= -114.9)) | ((lat >= 32.35) & (lon >= -117.0))
    lat, lon = lat[land_border], lon[land_border]
    s = fence.score(lat, lon)
    near = s.inside & (s.dist_m > -1500.0)
    lat, lon, d, b = lat[near], lon[near], -s.dist_m[near], s.bearing_deg[near]
    assert lat.shape[0] > 500
    offset = rng.uniform(30.0, 1500.0, lat.shape[0])
    lon2, lat2, _ = GEOD.fwd(lon, lat, b, d + offset)
    s2 = fence.score(lat2, lon2)
    out = ~s2.inside & (s2.dist_m > 10.0)
    assert out.mean() > 0.95  # a few land back in Mexico across a meander of the Rio Grande
    names = np.array(s2.country_names())[out]
    assert set(names) == {"USA"}, {n: int((names == n).sum()) for n in set(names)}
    usa = dict(neighbour_geoms)["USA"]
    assert shapely.contains_xy(usa, lon2[out], lat2[out]).all()
