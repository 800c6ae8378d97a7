"""Shared fixtures of the geofence tests: one Geofence per session and its references."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely

from streams.geo.fence import Geofence
from streams.geo.index import polygon_edges
from streams.geo.zonefiles import data_path, load_packaged
from tests.geo.reference import BoundaryReference

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def fence() -> Geofence:
    g = Geofence.load()
    g.warm()
    return g


@pytest.fixture(scope="session")
def sovereign_geom() -> shapely.Geometry:
    doc = json.loads(data_path("mexico_sovereign.geojson").read_text(encoding="utf-8"))
    geom = shapely.geometry.shape(doc["features"][0]["geometry"])
    shapely.prepare(geom)
    return geom


@pytest.fixture(scope="session")
def sovereign_edges() -> np.ndarray:
    return polygon_edges([p for _, ps in load_packaged("mexico_sovereign.geojson") for p in ps])


@pytest.fixture(scope="session")
def boundary_ref(sovereign_edges: np.ndarray) -> BoundaryReference:
    return BoundaryReference(sovereign_edges)


@pytest.fixture(scope="session")
def neighbour_geoms() -> list[tuple[str, shapely.Geometry]]:
    doc = json.loads(data_path("neighbours.geojson").read_text(encoding="utf-8"))
    out = []
    for f in doc["features"]:
        g = shapely.geometry.shape(f["geometry"])
        shapely.prepare(g)
        out.append((f["properties"]["isoA3"], g))
    return out
