"""The committed zone files are what PROVENANCE.md says they are."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from streams.geo.countries import COUNTRY_CODES, COVERAGE_BOX
from streams.geo.zonefiles import data_path

pytestmark = pytest.mark.unit

FILES = ["mexico_sovereign.geojson", "mexico_sovereign_1000m.geojson", "neighbours.geojson",
         "mexico_sovereign_web.geojson"]


def _vertices(geom: dict) -> tuple[int, int, int]:
    polys = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
    return len(polys), sum(len(p) - 1 for p in polys), sum(len(r) for p in polys for r in p)


def test_sovereign_polygon_is_the_full_10_m_outline():
    doc = json.loads(data_path("mexico_sovereign.geojson").read_text(encoding="utf-8"))
    (f,) = doc["features"]
    assert f["properties"]["isoA3"] == "MEX"
    assert _vertices(f["geometry"]) == (12, 0, 21848)
    doc = json.loads(data_path("mexico_sovereign_1000m.geojson").read_text(encoding="utf-8"))
    assert _vertices(doc["features"][0]["geometry"]) == (12, 0, 1321)


def test_provenance_lists_every_file_with_its_digest_and_the_licence():
    text = data_path("PROVENANCE.md").read_text(encoding="utf-8")
    assert "© OpenStreetMap contributors" in text and "ODbL" in text
    assert "@osm_borders/maritime_10m@1.1.0" in text and "@osm_borders/maritime_1000m@1.1.0" in text
    for name in FILES:
        data = data_path(name).read_bytes()
        assert len(data) < 5 * 1024 * 1024, name
        m = re.search(rf"\| `{re.escape(name)}` \| [\d,]+ \| `([0-9a-f]{{64}})` \|", text)
        assert m, name
        assert hashlib.sha256(data).hexdigest() == m.group(1), name


def test_neighbours_have_codes_and_stay_in_the_coverage_box():
    doc = json.loads(data_path("neighbours.geojson").read_text(encoding="utf-8"))
    isos = [f["properties"]["isoA3"] for f in doc["features"]]
    assert {"USA", "GTM", "BLZ"} <= set(isos)
    assert all(i in COUNTRY_CODES for i in isos)
    for f in doc["features"]:
        g = f["geometry"]
        polys = g["coordinates"] if g["type"] == "MultiPolygon" else [g["coordinates"]]
        for p in polys:
            for ring in p:
                for x, y in ring:
                    assert COVERAGE_BOX[0] - 1e-6 <= x <= COVERAGE_BOX[2] + 1e-6
                    assert COVERAGE_BOX[1] - 1e-6 <= y <= COVERAGE_BOX[3] + 1e-6
