"""Shared fixtures of the core tests: reference tables and the two real recordings."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

from streams.core.classify import Classifier
from streams.core.config import EngineConfig
from streams.core.engine import Engine
from streams.core.places import Places
from streams.messages import Position
from streams.parsers import parse_bytes

DATA = Path(__file__).resolve().parents[1] / "data"
CORE_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    return Classifier.load()


@pytest.fixture(scope="session")
def places() -> Places:
    return Places.load()


def _parse(fmt: str, name: str) -> list[Position]:
    result = parse_bytes(fmt, gzip.decompress((DATA / name).read_bytes()))
    assert not result.dead_letters
    return result.positions


@pytest.fixture(scope="session")
def dal1812() -> list[Position]:
    """readsb trace_full of ac671b (N899DN): DAL1812 crosses Yucatán, then three US legs."""
    return _parse("trace", "readsb_trace_full_ac671b.json.gz")


@pytest.fixture(scope="session")
def boe004() -> list[Position]:
    """BOE004, the Boeing 787 test flight that passes ~26 nm from Mexico near Laredo."""
    return _parse("traffic-json", "traffic_dreamliner_boeing.json.gz")


@pytest.fixture(scope="session")
def make_engine(classifier: Classifier, places: Places) -> Callable[..., Engine]:
    """An engine on the real zones, policy "all" unless told; ``**cfg`` are EngineConfig fields."""
    from streams.geo import Geofence

    fence = Geofence.load()

    def _make(**cfg: object) -> Engine:
        cfg.setdefault("alert_policy", "all")
        return Engine(EngineConfig(**cfg), fence, classifier, places)  # type: ignore[arg-type]

    return _make
