"""User fences: GeoJSON loading, validation errors and membership with altitude bands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely

from streams.geo.describe import list_fences
from streams.geo.fence import Geofence
from streams.geo.zonefiles import FenceFileError, data_path, load_fence_file, parse_fences

pytestmark = pytest.mark.unit

# Around Tijuana airport (MMTJ) and a band above it; a donut around Mexico City with the city
# itself as the hole; a two-part fence over the Yucatán channel.
FENCES = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature", "properties": {"name": "MMTJ low", "upper_ft": 10000},
         "geometry": {"type": "Polygon", "coordinates": [[[-117.05, 32.5], [-116.9, 32.5], [-116.9, 32.6],
                                                           [-117.05, 32.6], [-117.05, 32.5]]]}},
        {"type": "Feature", "properties": {"name": "MMTJ band", "lower_ft": 20000, "upper_ft": 45000},
         "geometry": {"type": "Polygon", "coordinates": [[[-117.05, 32.5], [-116.9, 32.5], [-116.9, 32.6],
                                                           [-117.05, 32.6], [-117.05, 32.5]]]}},
        {"type": "Feature", "properties": {"name": "CDMX ring"},
         "geometry": {"type": "Polygon", "coordinates": [
             [[-99.6, 19.0], [-98.6, 19.0], [-98.6, 19.9], [-99.6, 19.9], [-99.6, 19.0]],
             [[-99.3, 19.3], [-98.9, 19.3], [-98.9, 19.6], [-99.3, 19.6], [-99.3, 19.3]]]}},
        {"type": "Feature", "properties": {"name": "channel"},
         "geometry": {"type": "MultiPolygon", "coordinates": [
             [[[-87.0, 21.0], [-86.0, 21.0], [-86.0, 22.0], [-87.0, 22.0], [-87.0, 21.0]]],
             [[[-85.0, 21.0], [-84.5, 21.0], [-84.5, 21.5], [-85.0, 21.0]]]]}},
    ],
}


@pytest.fixture(scope="module")
def fenced(tmp_path_factory) -> Geofence:
    p = tmp_path_factory.mktemp("fences") / "fences.geojson"
    p.write_text(json.dumps(FENCES), encoding="utf-8")
    return Geofence.load(user_fences=p)


def test_fences_load_with_names_and_bands(fenced):
    assert fenced.fence_names == ["MMTJ low", "MMTJ band", "CDMX ring", "channel"]
    low, band, ring, channel = fenced.fences
    assert (low.lower_ft, low.upper_ft) == (None, 10000.0)
    assert (band.lower_ft, band.upper_ft) == (20000.0, 45000.0)
    assert len(ring.polygons[0]) == 2 and len(channel.polygons) == 2
    listed = [f for f in list_fences(fenced) if f["kind"] == "user"]
    assert [f["name"] for f in listed] == fenced.fence_names
    assert listed[1]["lower_ft"] == 20000.0 and listed[3]["polygons"] == 2


def test_altitude_bands(fenced):
    lat = np.full(6, 32.55)
    lon = np.full(6, -117.0)
    alt = np.array([5000.0, 10000.0, 15000.0, 20000.0, 46000.0, np.nan])
    f = fenced.score(lat, lon, alt).fences
    assert f[:, 0].tolist() == [True, True, False, False, False, False]  # upper bound inclusive, NaN out
    assert f[:, 1].tolist() == [False, False, False, True, False, False]
    assert not f[:, 2:].any()


def test_hole_and_multipolygon(fenced):
    lat = np.array([19.43, 19.1, 21.5, 21.1, 21.4, 21.5])
    lon = np.array([-99.13, -99.5, -86.5, -84.6, -84.9, -85.5])
    f = fenced.score(lat, lon).fences  # no altitude: unbanded fences only
    assert f[:, 2].tolist() == [False, True, False, False, False, False]
    assert f[:, 3].tolist() == [False, False, True, True, False, False]


def test_large_real_polygon_as_fence_matches_shapely(tmp_path):
    """The US outline (11,634 vertices) as a user fence with a band, against shapely."""
    doc = json.loads(data_path("neighbours.geojson").read_text(encoding="utf-8"))
    usa = next(f for f in doc["features"] if f["properties"]["isoA3"] == "USA")
    fence_doc = {"type": "Feature", "properties": {"name": "US", "lower_ft": 1000}, "geometry": usa["geometry"]}
    p = tmp_path / "us.geojson"
    p.write_text(json.dumps(fence_doc), encoding="utf-8")
    g = Geofence.load(user_fences=p)
    rng = np.random.default_rng(8)
    lon, lat = rng.uniform(-126, -77, 100_000), rng.uniform(4, 41, 100_000)
    alt = rng.choice([500.0, 30000.0, np.nan], 100_000)
    got = g.score(lat, lon, alt).fences[:, 0]
    geom = shapely.geometry.shape(usa["geometry"])
    inside = shapely.contains_xy(geom, lon, lat)
    assert 0.2 < inside.mean() < 0.6
    assert np.array_equal(got, inside & (alt == 30000.0))


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([1, 2], "expected a GeoJSON object"),
        ({"type": "Point", "coordinates": [0, 0]}, "expected a FeatureCollection"),
        ({"type": "FeatureCollection", "features": {}}, "'features' must be a list"),
        ({"type": "Feature", "properties": {"name": "x"}, "geometry": {"type": "LineString", "coordinates": []}},
         "must be Polygon or MultiPolygon"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "first == last"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0], [0, 0]]]}, "fewer than 3 distinct"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [1, 1], [0, 0]]]}, "within ±180/±90"),
        ({"type": "Polygon", "coordinates": [[[0, 0], ["a", 0], [1, 1], [0, 0]]]}, "not numbers"),
        ({"type": "Polygon", "coordinates": []}, "at least one ring"),
        ({"type": "Feature", "properties": {"name": "b", "lower_ft": 5000, "upper_ft": 1000},
          "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}, "is above upper_ft"),
        ({"type": "Feature", "properties": {"name": "b", "lower_ft": "high"},
          "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}, "finite number of feet"),
        ({"type": "Feature", "properties": {"name": ""},
          "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}, "non-empty string"),
        ({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"name": "a"},
             "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}},
            {"type": "Feature", "properties": {"name": "a"},
             "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}]},
         "duplicate fence name"),
    ],
)
def test_bad_fence_documents_are_refused_with_a_reason(doc, message):
    with pytest.raises(FenceFileError, match=message):
        parse_fences(doc, "test.geojson")


def test_bad_fence_files_are_refused_with_a_reason(tmp_path: Path):
    with pytest.raises(FenceFileError, match="cannot read fence file"):
        load_fence_file(tmp_path / "missing.geojson")
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(FenceFileError, match=r"not valid JSON .* line 1"):
        load_fence_file(bad)
    binary = tmp_path / "bin.geojson"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FenceFileError, match="not UTF-8"):
        Geofence.load(user_fences=binary)


def test_unnamed_fences_get_numbered_names_and_no_fences_is_fine():
    fences = parse_fences({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]})
    assert fences[0].name == "fence 1"
    assert parse_fences({"type": "FeatureCollection", "features": []}) == []
    g = Geofence.load()
    assert g.score([20.0], [-100.0]).fences.shape == (1, 0)
