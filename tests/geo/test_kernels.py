"""The numba kernels on their own: conformal sphere, exact candidate lists, point in polygon."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from streams.geo import kernels as K
from streams.geo.index import build_distance_index, build_pip_pack, densify, polygon_edges

pytestmark = pytest.mark.unit


def _conformal_closed_form(lat_deg: float) -> float:
    s = math.sin(math.radians(lat_deg))
    psi = math.atanh(s) - K.E_WGS84 * math.atanh(K.E_WGS84 * s)
    return math.atan(math.sinh(psi))


@pytest.mark.parametrize("lat", np.linspace(-89.5, 89.5, 37))
def test_conformal_latitude_series_matches_closed_form(lat):
    x, y, z, k = K.to_unit(float(lat), 37.0)
    assert math.isclose(x * x + y * y + z * z, 1.0, rel_tol=1e-14)
    assert abs(math.asin(z) - _conformal_closed_form(float(lat))) < 1e-10
    # Scale factor: ellipsoid parallel radius over the conformal sphere's.
    phi = math.radians(float(lat))
    n_radius = K.A_WGS84 / math.sqrt(1 - K.E2_WGS84 * math.sin(phi) ** 2)
    assert math.isclose(k, n_radius * math.cos(phi) / (K.A_WGS84 * math.sqrt(x * x + y * y)), rel_tol=1e-9)


def test_from_unit_inverts_to_unit():
    rng = np.random.default_rng(0)
    for lat, lon in zip(rng.uniform(-89, 89, 500), rng.uniform(-180, 180, 500), strict=True):
        x, y, z, _ = K.to_unit(lat, lon)
        la, lo = K.from_unit(x, y, z)
        # Both series are good to ~4e-11 rad; 1e-8° is about a millimetre.
        assert abs(la - lat) < 1e-8
        assert abs((lo - lon + 180) % 360 - 180) < 1e-9


def test_densify_splits_long_edges_along_the_lon_lat_line():
    pe = np.array([[-117.0, 32.5, -110.0, 31.3], [-100.0, 20.0, -100.0, 20.001]])
    d = densify(pe, 2000.0)
    assert d.shape[0] > 300
    assert np.allclose(d[0, :2], pe[0, :2]) and np.allclose(d[-2, 2:], pe[0, 2:])
    assert np.allclose(d[:-1, 2:], np.vstack([d[1:-1, :2], pe[0, 2:]]))
    lat0, lat1 = np.radians(d[:, 1]), np.radians(d[:, 3])
    h = np.sin((lat1 - lat0) / 2) ** 2 + np.cos(lat0) * np.cos(lat1) * np.sin(np.radians(d[:, 2] - d[:, 0]) / 2) ** 2
    assert (2 * 6371008.8 * np.arcsin(np.sqrt(h)) <= 2000.0).all()
    # The straight lon/lat line: every piece's end points lie on it.
    t = (d[:-1, 0] - pe[0, 0]) / (pe[0, 2] - pe[0, 0])
    assert np.allclose(d[:-1, 1], pe[0, 1] + t * (pe[0, 3] - pe[0, 1]))


def _brute_chord2(E: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Squared chord from each unit vector p[i] to its nearest arc of E, re-derived in numpy."""
    A, B, n = E[:, 0:3], E[:, 3:6], E[:, 6:9]
    out = np.empty(p.shape[0])
    for i, q in enumerate(p):
        s = n @ q
        on = ((np.cross(n, A) @ q) >= 0) & ((np.cross(B, n) @ q) >= 0) & (np.abs(n).sum(axis=1) > 0)
        foot = 2 * s * s / (1 + np.sqrt(np.clip(1 - s * s, 0, 1)))
        ends = np.minimum(((A - q) ** 2).sum(axis=1), ((B - q) ** 2).sum(axis=1))
        out[i] = np.where(on, np.minimum(foot, ends), ends).min()
    return out


def test_candidate_lists_give_exactly_the_brute_force_nearest_edge(sovereign_edges):
    """The pruned per-cell lists lose nothing: same nearest chord as scanning every edge."""
    idx = build_distance_index(sovereign_edges)
    rng = np.random.default_rng(42)
    regional = np.column_stack([rng.uniform(5, 40, 600), rng.uniform(-126, -77, 600)])
    coastal = np.column_stack([rng.uniform(15, 32, 3000), rng.uniform(-118, -87, 3000)])
    worldwide = np.column_stack([np.degrees(np.arcsin(rng.uniform(-0.99, 0.99, 200))), rng.uniform(-180, 180, 200)])
    pts = np.vstack([regional, coastal, worldwide])
    got = np.empty(pts.shape[0])
    units = np.empty((pts.shape[0], 3))
    for i, (la, lo) in enumerate(pts):
        x, y, z, _ = K.to_unit(la, lo)
        units[i] = (x, y, z)
        got[i], _ = K.nearest_edge(la, lo, x, y, z, *idx.as_tuple())
    want = _brute_chord2(idx.E, units)
    assert np.allclose(got, want, rtol=1e-12, atol=1e-18)


def test_candidate_lists_are_short_where_it_matters(sovereign_edges):
    idx = build_distance_index(sovereign_edges)
    fine = np.diff(idx.f_start)
    assert fine.min() >= 1
    assert fine.mean() < 10
    assert np.percentile(fine, 99) < 100
    # Far points (most of a world feed, and every far step of the march) scan a global cell's
    # list: 1.125° cells hold 9.7 edges on average, where the 4.5° cells of before held 90.8.
    assert np.diff(idx.g_start).mean() < 20
    assert idx.dg[8] == idx.dg[9] == 4.5 / 64  # the fine cells stay ~7.8 km


STAR = np.array([[0, 0], [4, 1], [8, 0], [7, 4], [8, 8], [4, 7], [0, 8], [1, 4], [0, 0]], float)
HOLE = np.array([[3, 3], [5, 3], [5, 5], [3, 5], [3, 3]], float)


def test_pip_matches_shapely_on_lattice_points_through_vertices():
    """Points sharing x or y with vertices, rays through vertices, horizontal edges: all exact."""
    pack = build_pip_pack([polygon_edges([[STAR, HOLE]])])
    geom = shapely.Polygon(STAR, [HOLE])
    xs, ys = np.meshgrid(np.arange(-1, 9.01, 0.25), np.arange(-1, 9.01, 0.25))
    lon, lat = xs.ravel(), ys.ravel()
    got = np.empty(lon.shape[0], bool)
    K.contains(lat, lon, *pack.as_tuple(), got)
    on_boundary = shapely.intersects_xy(geom.boundary, lon, lat)
    assert on_boundary.sum() > 20
    want = shapely.contains_xy(geom, lon, lat)
    assert (got == want)[~on_boundary].all()


def test_pip_parallel_kernel_agrees(sovereign_edges):
    pack = build_pip_pack([sovereign_edges])
    rng = np.random.default_rng(9)
    lat, lon = rng.uniform(10, 35, 50_000), rng.uniform(-120, -85, 50_000)
    a = np.empty(lat.shape[0], bool)
    b = np.empty(lat.shape[0], bool)
    K.contains(lat, lon, *pack.as_tuple(), a)
    K.contains_par(lat, lon, *pack.as_tuple(), b)
    assert (a == b).all() and 0.1 < a.mean() < 0.9


def test_pip_pack_keeps_polygons_apart():
    sq = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], float)
    far = sq + 10.0
    pack = build_pip_pack([polygon_edges([[sq]]), np.zeros((0, 4)), polygon_edges([[far]])])
    p = pack.as_tuple()
    assert K.pip_one(0, 0.5, 0.5, *p) and not K.pip_one(2, 0.5, 0.5, *p)
    assert K.pip_one(2, 10.5, 10.5, *p) and not K.pip_one(0, 10.5, 10.5, *p)
    assert not K.pip_one(1, 0.5, 0.5, *p)
    assert not K.pip_one(0, math.nan, 0.5, *p)
