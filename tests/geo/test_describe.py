"""What `skyfence fences` and `skyfence fences check` print, and the zones GeoJSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from streams.geo.describe import (
    LineError,
    check_lines,
    compass,
    describe_points,
    format_point,
    list_fences,
    zones_geojson,
)

pytestmark = pytest.mark.unit


def test_describe_points_matches_scores_and_is_json(fence):
    lat, lon = [32.7157, 32.5149, 22.36, 95.0], [-117.1611, -117.0382, -110.47, 0.0]
    ds = describe_points(fence, lat, lon, [35000.0, np.nan, 1000.0, 0.0])
    json.dumps(ds, allow_nan=False)
    s = fence.score(lat[:3], lon[:3])
    san_diego, tijuana, cabo, bad = ds
    assert san_diego["airspace"] == "USA" and san_diego["airspace_label"] == "US airspace"
    r12, r50, r100 = (f"within {nm} nm ({km} km) beyond the sovereign limit"
                      for nm, km in ((12, 22), (50, 93), (100, 185)))
    assert san_diego["inside"] == {"MEX sovereign": False, r12: True, r50: True, r100: True}
    assert san_diego["zone"] == r12
    assert san_diego["signed_distance_m"] == pytest.approx(s.dist_m[0], abs=0.05)
    assert san_diego["distance_nm"] == pytest.approx(s.dist_m[0] / 1852.0, abs=0.005)
    assert san_diego["bearing_compass"] == "S" and san_diego["alt_ft"] == 35000.0
    assert tijuana["inside"]["MEX sovereign"] and tijuana["signed_distance_m"] < 0 and tijuana["alt_ft"] is None
    assert "Inside Mexican sovereign airspace" in tijuana["summary"]
    assert cabo["zone"] == r50 and not cabo["inside"][r12]
    assert f"{r50}; in international airspace" in cabo["summary"]
    assert bad == {"lat": 95.0, "lon": 0.0, "alt_ft": 0.0, "valid": False, "error": "latitude 95.0 is outside -90..90"}


def test_format_point_for_a_person(fence):
    text = format_point(describe_points(fence, [32.7157], [-117.1611], [35000.0])[0])
    assert text.splitlines()[0] == "32.71570, -117.16110 at 35000 ft"
    assert "Outside Mexican sovereign airspace, 20.3 km (11.0 nm)" in text
    assert "airspace: US airspace" in text


def test_check_lines_keeps_order_and_reports_bad_lines(fence):
    lines = ["# header", "32.5,-117.0", "", "abc", "1,2,3,4", "91,0", " 22.36 , -110.47 , 35000 ", "nan,1",
             "19.43,-99.13,high", "10,-200"]
    one = list(check_lines(fence, lines, batch=1))
    many = list(check_lines(fence, lines, batch=3))
    assert [type(r).__name__ for r in one] == [type(r).__name__ for r in many]
    assert [r.line_no if isinstance(r, LineError) else r["line"] for r in one] == [2, 4, 5, 6, 7, 8, 9, 10]
    errors = {r.line_no: r.reason for r in one if isinstance(r, LineError)}
    assert errors == {
        4: "expected 'lat,lon[,alt_ft]', got 1 field(s)",
        5: "expected 'lat,lon[,alt_ft]', got 4 field(s)",
        6: "latitude 91.0 is outside -90..90",
        8: "lat must be finite",
        9: "alt_ft 'high' is not a number",
        10: "longitude -200.0 is outside -180..180",
    }
    good = [r for r in one if not isinstance(r, LineError)]
    assert good[0]["inside"]["MEX sovereign"] and good[1]["alt_ft"] == 35000.0
    assert good == [r for r in many if not isinstance(r, LineError)]
    assert str(one[1]) == "line 4: expected 'lat,lon[,alt_ft]', got 1 field(s): 'abc'"
    assert one[1].to_dict() == {"line": 4, "input": "abc", "error": "expected 'lat,lon[,alt_ft]', got 1 field(s)"}


def test_compass():
    assert [compass(b) for b in (0.0, 11.2, 11.3, 180.0, 348.8, 359.9)] == ["N", "N", "NNE", "S", "N", "N"]
    assert compass(math.nan) is None


def test_list_fences_lists_every_zone(fence):
    zones = list_fences(fence)
    assert [z["kind"] for z in zones] == ["sovereign", "buffer", "buffer", "buffer", "airspace"]
    assert zones[0]["vertices"] == 21848 and zones[0]["polygons"] == 12
    assert "not a legal zone" in zones[1]["description"]
    assert {"USA", "GTM", "BLZ"} <= set(zones[-1]["countries"])


def test_zones_geojson_rings_lie_at_their_distance(fence):
    doc = zones_geojson(fence)
    json.dumps(doc, allow_nan=False)
    kinds = [f["properties"]["kind"] for f in doc["features"]]
    assert kinds == ["sovereign", "buffer", "buffer", "buffer"]
    assert doc["features"][0]["geometry"]["type"] == "MultiPolygon"
    for f, ring_m in zip(doc["features"][1:], fence.ring_m, strict=True):
        assert f["geometry"]["type"] == "MultiLineString"
        pts = np.array([p for line in f["geometry"]["coordinates"] for p in line])
        assert pts.shape[0] > 300
        d, _ = fence.distance(pts[:, 1], pts[:, 0])
        # A 0.05° raster with linear interpolation: within a few hundred metres of the ring.
        assert np.percentile(np.abs(d - ring_m), 99) < 500.0
        assert np.abs(d - ring_m).max() < 3000.0
