"""``skyfence export`` files opened by readers nobody here wrote (issue 19, evidence files).

Real recordings: DAL1812 crossing Yucatán (readsb trace) with BOE004 near Laredo, and the P-8
racetrack off Baja (a real tanker racetrack moved; tests/data/behaviour). GDAL's ogrinfo (Debian
gdal-bin) must read every layer with the right feature count and geometry type; fastkml must
parse the KML back; the geojson package must find every GeoJSON valid.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import geojson
import orjson
import pytest

from streams.settings import Settings
from tests.e2e.test_pipeline import BOEING, TRACE, skyfence
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.unit

RACETRACK = REPO_ROOT / "tests" / "data" / "behaviour" / "p8_racetrack_off_baja.json.gz"
RACETRACK_CSV = REPO_ROOT / "tests" / "data" / "behaviour" / "p8_racetrack_off_baja.csv"


def _ogr(path: Path) -> dict[str, tuple[str, int]]:
    """Layer -> (geometry type, feature count) as GDAL reports them."""
    assert shutil.which("ogrinfo"), "ogrinfo (Debian gdal-bin) is installed by dev/setup.sh"
    out = subprocess.run(["ogrinfo", "-ro", "-so", "-al", str(path)], capture_output=True, text=True,
                         check=True).stdout
    layers = {}
    for block in out.split("Layer name: ")[1:]:
        name = block.splitlines()[0].strip()
        geom = re.search(r"Geometry: (.+)", block)
        count = re.search(r"Feature Count: (\d+)", block)
        assert geom and count, block
        layers[name] = (geom.group(1).strip(), int(count.group(1)))
    return layers


def _ogr_geoms(path: Path, layer: str) -> set[str]:
    """Geometry types of every feature of one layer (GDAL's WKT names)."""
    out = subprocess.run(["ogrinfo", "-ro", "-al", "-geom=SUMMARY", str(path), layer], capture_output=True,
                         text=True, check=True).stdout
    return {m.split(" ")[0] for m in re.findall(r"^\s+((?:POINT|LINESTRING|POLYGON|MULTI\w+)[^\n]*)", out, re.M)}


def test_export_of_real_crossings_opens_in_gdal_and_fastkml(tmp_path: Path) -> None:
    out = tmp_path / "ev"
    proc = skyfence(Settings(), "export", str(TRACE), str(BOEING), "--all-aircraft", "--out", str(out))
    assert "evidence.kml" in proc.stdout
    layers = {p.stem: orjson.loads(p.read_bytes()) for p in out.glob("*.geojson")}
    for name, fc in layers.items():
        assert geojson.loads(orjson.dumps(fc).decode()).is_valid, name
    tracks = layers["tracks"]["features"]
    assert {f["properties"]["callsign"] for f in tracks} == {"DAL1812", "BOE004"}
    assert all(len(f["geometry"]["coordinates"][0]) == 3 for f in tracks)  # lon, lat, altitude
    alerts = layers["alerts"]["features"]
    assert any(f["properties"]["transition"] == "entered" for f in alerts)
    assert all(f["properties"]["headline"] for f in alerts)
    expected = {"tracks": ("3D Line String", len(tracks)), "alerts": ("3D Point", len(alerts)),
                "closest_approach": ("3D Point", 2), "zones": ("Multi Polygon", 1),
                "rings": ("Multi Line String", 3)}
    for name, want in expected.items():
        assert _ogr(out / f"{name}.geojson")[name] == want, name
    # the KML: one folder per layer, GDAL reads each as a layer with every feature
    kml = _ogr(out / "evidence.kml")
    assert kml["tracks"][1] == len(tracks) and kml["alerts"][1] == len(alerts) and kml["closest_approach"][1] == 2
    assert _ogr_geoms(out / "evidence.kml", "tracks") == {"LINESTRING"}
    assert _ogr_geoms(out / "evidence.kml", "alerts") == {"POINT"}
    assert _ogr_geoms(out / "evidence.kml", "zones") == {"POLYGON"}
    # fastkml parses it back: the folders, the alert placemarks with their text
    from fastkml import kml as fkml

    doc = fkml.KML.parse(str(out / "evidence.kml"))
    folders = {f.name: f for f in doc.features[0].features}
    assert set(folders) == {"tracks", "closest_approach", "alerts", "patterns", "zones", "rings"}
    texts = [p.description for p in folders["alerts"].features]
    assert len(texts) == len(alerts) and all("Mexican sovereign airspace" in t for t in texts)


def test_export_of_the_p8_racetrack_has_its_pattern(tmp_path: Path) -> None:
    out = tmp_path / "p8"
    skyfence(Settings(aircraft_csv=str(RACETRACK_CSV)), "export", str(RACETRACK), "--out", str(out))
    pats = orjson.loads((out / "patterns.geojson").read_bytes())["features"]
    assert [p["properties"]["kind"] for p in pats] == ["racetrack"]
    assert _ogr(out / "patterns.geojson")["patterns"] == ("Polygon", 1)
    assert _ogr(out / "evidence.kml")["patterns"][1] == 1
