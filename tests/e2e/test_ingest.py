"""`skyfence ingest` moves real recordings into the real broker; `--stdout` needs no broker."""

from __future__ import annotations

import base64
import gzip
import subprocess
import sys
import time

import orjson
import pytest

from streams.codec import decode_position_batch
from streams.messages import Position
from streams.parsers import parse_bytes
from streams.settings import Settings, child_env
from streams.topics import DEADLETTER, POSITIONS, RAW, partition_for
from tests.kafka_helpers import read_topic
from tests.paths import REPO_ROOT

DATA = REPO_ROOT / "tests" / "data"


def _run(settings: Settings | None, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = child_env()
    if settings is not None:
        env.update(settings.to_env())
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, input=stdin, timeout=120)


@pytest.mark.integration
async def test_ingest_sbs_file_into_broker_with_raw_archive(settings: Settings) -> None:
    path = DATA / "sbs1_msgs.txt"
    expected = parse_bytes("sbs", path.read_bytes())
    bad = b"MSG,3,1,1,ZZZZZZ,1,,,,,,,,,,,,,,,,\nnot an sbs line at all\n"
    proc = _run(settings, "ingest", "--format", "sbs", "--raw", "-", stdin=path.read_bytes() + bad)
    assert proc.returncode == 0, proc.stderr.decode()

    batches = await read_topic(settings, POSITIONS.name(settings), expect=1)
    positions = [p for v in batches for p in _decode(v)]
    assert len(positions) == len(expected.positions) > 0
    for p in positions:
        assert p.input_format == "sbs" and p.receiver == "stdin"
    dead = [orjson.loads(v) for v in await read_topic(settings, DEADLETTER.name(settings), expect=2)]
    assert len(dead) == len(expected.dead_letters) + 2
    assert {d["raw_text"] for d in dead} >= {"MSG,3,1,1,ZZZZZZ,1,,,,,,,,,,,,,,,,", "not an sbs line at all"}
    raw = [orjson.loads(v) for v in await read_topic(settings, RAW.name(settings), expect=1)]
    assert b"".join(base64.b64decode(r["data_b64"]) for r in raw) == path.read_bytes() + bad


def _decode(value: bytes) -> list[Position]:
    positions, dead = decode_position_batch(value, time.time())
    assert dead == []
    return positions.to_positions()


@pytest.mark.integration
async def test_positions_are_partitioned_by_aircraft(settings: Settings) -> None:
    proc = _run(settings, "ingest", "--format", "sbs", str(DATA / "sbs1_msgs.txt"))
    assert proc.returncode == 0, proc.stderr.decode()
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from streams.kafka_io import client_kwargs

    consumer = AIOKafkaConsumer(**client_kwargs(settings), enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(POSITIONS.name(settings), p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        for _ in range(20):
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for r in records:
                    for p in _decode(r.value):
                        assert partition_for(p.icao24, settings.partitions) == tp.partition
                        seen += 1
        assert seen > 0
    finally:
        await consumer.stop()


@pytest.mark.unit
def test_stdout_mode_prints_positions_and_dead_letters_without_broker() -> None:
    data = gzip.decompress((DATA / "readsb_trace_full_ac671b.json.gz").read_bytes())
    proc = _run(None, "ingest", "--format", "trace", "--stdout", "-", stdin=data)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.splitlines()
    assert len(lines) == 2500
    first = orjson.loads(lines[0])
    assert first["icao24"] == "ac671b" and first["schema"] == "position.v1"
    proc = _run(None, "ingest", "--format", "trace", "--stdout", "-", stdin=b'{"icao": "ac671b", "trace": 5}')
    assert proc.returncode == 0
    assert proc.stdout == b""
    dl = [orjson.loads(x) for x in proc.stderr.splitlines() if x.startswith(b"{")]
    assert len(dl) == 1 and dl[0]["schema"] == "deadletter.v1"


@pytest.mark.integration
async def test_a_stopped_live_ingest_sends_and_counts_everything_it_read(settings: Settings) -> None:
    """SIGTERM while a receiver is still sending: ingest stops reading, sends what it read, and its
    summary counts exactly what reached the positions topic (nothing read is lost or left uncounted)."""
    import asyncio
    import re
    import signal

    lines = (DATA / "sbs1_msgs.txt").read_bytes().splitlines(keepends=True)
    stop_sending = asyncio.Event()

    async def receiver(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        i = 0
        while not stop_sending.is_set():  # a live feed: lines keep coming until the test ends
            writer.write(b"".join(lines[i % len(lines) : i % len(lines) + 20]))
            await writer.drain()
            i += 20
            await asyncio.sleep(0.01)
        writer.close()

    server = await asyncio.start_server(receiver, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = child_env()
    env.update(settings.to_env())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.cli", "ingest", f"tcp://127.0.0.1:{port}", "--format", "sbs",
        env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        await read_topic(settings, POSITIONS.name(settings), expect=20, settle=0.0)  # positions are flowing
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        stop_sending.set()
        server.close()
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    m = re.search(rb"ingested ([\d,]+) positions", out)
    assert m, out
    said = int(m[1].replace(b",", b""))
    got = sum(len(_decode(v)) for v in await read_topic(settings, POSITIONS.name(settings), expect=1 << 30,
                                                          timeout=10.0))
    assert said == got > 0
