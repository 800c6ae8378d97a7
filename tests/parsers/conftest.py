"""Shared fixtures for the parser tests: the real recordings in tests/data/."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from tests.parsers._constructed import load_trace

DATA = Path(__file__).resolve().parent.parent / "data"
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def beast_bytes() -> bytes:
    return (DATA / "dump1090_sample.beast.bin").read_bytes()


@pytest.fixture(scope="session")
def sbs_bytes() -> bytes:
    return (DATA / "sbs1_msgs.txt").read_bytes()


@pytest.fixture(scope="session")
def trace_bytes() -> bytes:
    with gzip.open(DATA / "readsb_trace_full_ac671b.json.gz") as f:
        return f.read()


@pytest.fixture(scope="session")
def trace_doc() -> dict[str, Any]:
    return load_trace()


@pytest.fixture(scope="session")
def boeing_bytes() -> bytes:
    with gzip.open(DATA / "traffic_dreamliner_boeing.json.gz") as f:
        return f.read()


@pytest.fixture(scope="session")
def rs1090_rows() -> list[dict[str, Any]]:
    with gzip.open(DATA / "rs1090_full_flight_short.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="session")
def pymodes_rows() -> list[tuple[float, str]]:
    with open(DATA / "pymodes_sample_data_adsb.csv", newline="") as f:
        return [(float(r[0]), r[1]) for r in csv.reader(f)]


@pytest.fixture(scope="session")
def schemas() -> dict[str, Any]:
    return {
        "position": json.loads((SCHEMAS / "position.v1.json").read_text()),
        "deadletter": json.loads((SCHEMAS / "deadletter.v1.json").read_text()),
    }
