"""Production store: a worker on RocksDB (rocksdict) keeps aircraft state across a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from streams.agents import ROCKSDB_OPTIONS
from streams.settings import Settings
from tests.e2e.test_pipeline import TRACE, analyze, redis_alerts, skyfence

pytestmark = pytest.mark.integration


async def _rejected(settings: Settings) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{settings.web_port}/metrics") as r:
        text = await r.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("skyfence_positions_rejected_total{"))


async def test_rocksdb_worker_alerts_and_keeps_state_across_restart(settings: Settings, start_worker) -> None:
    settings = settings.replace(alert_policy="all", store="rocksdb://")
    first = start_worker("rocks1", settings_=settings)
    skyfence(settings, "replay", str(TRACE), "--format", "trace", "--speed", "max")
    expected = analyze(settings, str(TRACE), "trace")
    alerts = await redis_alerts(settings, expect=len(expected))
    assert sorted(a["event_id"] for a in alerts) == sorted(a["event_id"] for a in expected)
    assert first.stop() == 0
    tables = Path(settings.data_dir) / settings.app_id
    assert any("aircraft-state" in str(p) for p in tables.rglob("*")), "no RocksDB table files in the app's folder"
    # RocksDB records the options each database was opened with: ours, not Faust's 64 MiB
    # write buffers (x3 per partition), which let memtables of rewritten states grow to 1.5 GB.
    options = [p.read_text() for p in tables.rglob("OPTIONS-*")]
    assert options, "no RocksDB OPTIONS file"
    for text in options:
        assert f"write_buffer_size={ROCKSDB_OPTIONS['write_buffer_size']}" in text
        assert f"max_write_buffer_number={ROCKSDB_OPTIONS['max_write_buffer_number']}" in text

    # Restarted, the worker finds DAL1812's state in RocksDB: the same flight again is entirely
    # old news (late or duplicate). With the state lost it would be tracked afresh instead.
    start_worker("rocks2", settings_=settings)
    skyfence(settings, "replay", str(TRACE), "--format", "trace", "--speed", "max")
    for _ in range(60):
        if await _rejected(settings) >= 2400:
            break
        await asyncio.sleep(0.5)
    assert await _rejected(settings) >= 2400
    again = await redis_alerts(settings, expect=len(alerts), settle=3.0)
    assert len(again) == len(alerts)
