"""Pipeline benchmark on the real local broker and Redis: throughput, latency, memory, scaling.

    .venv/bin/python bench/bench_pipeline.py [--quick]

Workload: the two real recordings in tests/data (DAL1812's readsb trace, BOE004's flight)
replicated onto many synthetic aircraft (own icao24, staggered start), so the pipeline sees
real geometry, real gaps and real duplicates, at any volume. Every phase runs against one
private broker + Redis started by this script, with a fresh topic prefix per phase:

1. reference: plain aiokafka + orjson reading the positions topic (the ceiling for any consumer);
2. throughput: one `skyfence worker` process draining a pre-filled positions topic
   (decode + validate, track, gate, classify, geofence, alert, changelog, Redis sink);
3. latency: the recordings interpolated to one position a second and replayed at 60x real
   time (a fleet sized so that this is ~20,000 positions/s), each copy shifted so that its
   crossing or closest approach falls at a random moment of the run; for every alert, Redis
   PUBLISH arrival time minus the wall time the producer sent the position that triggered it;
4. memory: the worker's resident memory (per-aircraft state size is bench_engine.py's figure);
5. scaling: two workers, showing how partitions and aircraft are shared.

Figures are ratios against the reference where they can be, since the machine is shared
(2 cores for broker, worker, producer and this script). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import itertools
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streams.kafka_io import Publisher, ensure_topics, make_producer  # noqa: E402
from streams.records import Position  # noqa: E402
from streams.settings import Settings, child_env  # noqa: E402
from streams.sources import parse_bytes  # noqa: E402
from streams.stack import LocalStack, free_port  # noqa: E402
from streams.status import client_kwargs  # noqa: E402
from streams.topics import POSITIONS  # noqa: E402

DATA = ROOT / "tests" / "data"


def base_flights() -> list[list[Position]]:
    trace = parse_bytes("trace", gzip.decompress((DATA / "readsb_trace_full_ac671b.json.gz").read_bytes()))
    boe = parse_bytes("traffic-json", gzip.decompress((DATA / "traffic_dreamliner_boeing.json.gz").read_bytes()))
    return [sorted(ps, key=lambda p: p.event_time) for ps in (trace.positions, boe.positions)]


def interpolate(flight: list[Position], step_s: float = 1.0, max_gap_s: float = 60.0) -> list[Position]:
    """One position every ``step_s`` along a recorded flight, straight between recorded points
    at most ``max_gap_s`` apart (coverage holes stay holes); the recordings are thinned."""
    out: list[Position] = []
    for a, b in itertools.pairwise(flight):
        out.append(a)
        dt = b.event_time - a.event_time
        if dt > max_gap_s:
            continue
        for j in range(1, int(dt / step_s)):
            f = j * step_s / dt
            alt = None if a.alt_baro_ft is None or b.alt_baro_ft is None else a.alt_baro_ft + f * (
                b.alt_baro_ft - a.alt_baro_ft)
            out.append(Position(a.icao24, a.event_time + j * step_s, a.lat + f * (b.lat - a.lat),
                                a.lon + f * (b.lon - a.lon), a.input_format, alt, None, a.ground_speed_kt,
                                a.track_deg, a.vertical_rate_fpm, a.callsign, a.squawk, a.on_ground, a.source))
    out.append(flight[-1])
    return out


def latency_fleet(rate: float, seconds: float, compression: float, t_start: float) -> list[Position]:
    """Copies of the two flights at 1 Hz, each with its event (DAL1812's entry into Mexico, BOE004's
    closest approach) at a random moment of a window of ``seconds * compression`` event seconds."""
    import numpy as np

    from streams.geo import Geofence

    fence = Geofence.load()
    flights, anchors = [], []
    for f in base_flights():
        scores = fence.score(np.array([p.lat for p in f]), np.array([p.lon for p in f]))
        i = int(np.flatnonzero(scores.inside)[0]) if scores.inside.any() else int(np.argmin(scores.dist_m))
        flights.append(interpolate(f))
        anchors.append(f[i].event_time)
    window = seconds * compression
    rng = np.random.default_rng(1812)
    out: list[Position] = []
    k = 0
    while len(out) < rate * seconds:  # copies until the window holds rate x seconds positions
        f, anchor = flights[k % 2], anchors[k % 2]
        shift = t_start + rng.uniform(0.15, 0.85) * window - anchor
        icao = f"{0x3c8000 + k:06x}"
        for p in f:
            t = p.event_time + shift
            if t_start <= t < t_start + window:
                out.append(Position(icao, t, p.lat, p.lon, p.input_format, p.alt_baro_ft, p.alt_geom_ft,
                                    p.ground_speed_kt, p.track_deg, p.vertical_rate_fpm, f"LAT{k:05d}", p.squawk,
                                    p.on_ground, p.source, "bench"))
        k += 1
    out.sort(key=lambda p: p.event_time)
    return out


def fleet(n_aircraft: int, stagger_s: float, t_start: float) -> list[Position]:
    """Real flights copied onto synthetic aircraft, in event-time order."""
    flights = base_flights()
    out: list[Position] = []
    for k in range(n_aircraft):
        f = flights[k % len(flights)]
        shift = t_start + k * stagger_s - f[0].event_time
        icao = f"{0x3c0000 + k:06x}"  # a German-block range nothing in the recordings uses
        for p in f:
            out.append(Position(icao, p.event_time + shift, p.lat, p.lon, p.input_format, p.alt_baro_ft,
                                p.alt_geom_ft, p.ground_speed_kt, p.track_deg, p.vertical_rate_fpm,
                                f"SYN{k:05d}", p.squawk, p.on_ground, p.source, "bench"))
    out.sort(key=lambda p: p.event_time)
    return out


class Worker:
    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.log = log
        self._f = open(log, "wb")  # closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=child_env(settings),
                                     stdout=self._f, stderr=subprocess.STDOUT, cwd=ROOT)

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.log.read_text()[-3000:])
            if b"Worker ready" in self.log.read_bytes():
                return
            time.sleep(0.2)
        raise TimeoutError(self.log.read_text()[-3000:])

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    async def metrics(self) -> dict[str, float]:
        import aiohttp

        async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{self.settings.web_port}/metrics"
        ) as r:
            text = await r.text()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    async def ready_info(self) -> dict[str, object]:
        import aiohttp

        async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{self.settings.web_port}/health/ready"
        ) as r:
            return dict(await r.json())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._f.close()


def phase_settings(base: Settings, name: str) -> Settings:
    tag = f"b{name}{int(time.time() * 1000) % 10**8}"
    return base.replace(topic_prefix=tag, app_id=f"skyfence-{tag}", redis_prefix=tag, alert_policy="all",
                        store="memory://", web_port=free_port(), log_level="info")


async def produce_all(settings: Settings, positions: list[Position], chunk: int = 20000) -> float:
    await ensure_topics(settings)
    producer = make_producer(settings, linger_ms=20)
    await producer.start()
    pub = Publisher(settings, producer)
    t0 = time.perf_counter()
    for i in range(0, len(positions), chunk):
        await pub.positions(positions[i : i + chunk])
    await producer.flush()
    await producer.stop()
    return time.perf_counter() - t0


async def reference_consume(settings: Settings, expect: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(POSITIONS.name(settings), **client_kwargs(settings), group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    n = 0
    t0 = time.perf_counter()
    try:
        while n < expect:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for r in records:
                    n += len(orjson.loads(r.value)["icao24"])  # position-batch.v2: one array per field
    finally:
        await consumer.stop()
    return n / (time.perf_counter() - t0)


async def wait_processed(w: Worker, total: int, t_ready: float, timeout: float) -> float:
    """Positions/s from the worker's readiness to its counter reaching ``total`` (start-up included)."""
    deadline = time.monotonic() + timeout
    n = 0.0
    while time.monotonic() < deadline:
        m = await w.metrics()
        n = sum(v for k, v in m.items() if k.startswith("skyfence_positions_in_total"))
        if n >= total:
            return n / (time.perf_counter() - t_ready)
        await asyncio.sleep(0.1)
    raise TimeoutError(f"worker processed {n} of {total}")


async def settled_metrics(w: Worker, quiet_s: float = 3.0, timeout: float = 60.0) -> dict[str, float]:
    """Metrics once the alert counter stopped moving: the last batches' alerts come after the
    last position is counted, so reading at that moment undercounts them."""
    deadline = time.monotonic() + timeout
    last, since = -1.0, time.monotonic()
    while True:
        m = await w.metrics()
        n = sum(v for k, v in m.items() if k.startswith("skyfence_alerts_total"))
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= quiet_s or time.monotonic() > deadline:
            return m
        await asyncio.sleep(0.25)


async def latency_phase(base: Settings, rate: float, seconds: float, tmp: Path) -> dict[str, float]:
    import redis.asyncio as aioredis

    s = phase_settings(base, "lat")
    await ensure_topics(s)
    w = Worker(s, tmp / "worker-latency.log")
    try:
        w.wait_ready()
        # Event time runs 60x wall time: the engine's event-time waits (2 s reorder tolerance, 30 s
        # dwell) cost 1/60 of their real length here; see the README.
        compression = 60.0
        t_base = time.time() - 86400
        positions = latency_fleet(rate, seconds, compression, t_base)
        n_air = len({p.icao24 for p in positions})
        import gc

        gc.freeze()  # the fleet is 600k objects: a full collection here would delay receipts, not alerts
        client = aioredis.Redis.from_url(s.redis_url)
        pubsub = client.pubsub()
        await pubsub.subscribe(s.redis_key("alerts"))
        received: list[tuple[float, dict]] = []

        async def listen() -> None:
            async for msg in pubsub.listen():
                if msg["type"] == "message":
                    received.append((time.time(), orjson.loads(msg["data"])))

        listener = asyncio.create_task(listen())
        producer = make_producer(s, linger_ms=1)
        await producer.start()
        pub = Publisher(s, producer)
        sent_at: dict[tuple[str, float], float] = {}
        slice_s = 0.05  # 50 ms slices: a steady replay without a sleep per position
        t0 = time.perf_counter()
        i = 0
        while i < len(positions):
            due = t0 + (positions[i].event_time - t_base) / compression
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            horizon = t_base + (time.perf_counter() - t0 + slice_s) * compression
            j = i
            while j < len(positions) and positions[j].event_time < horizon:
                j += 1
            chunk = positions[i:j]
            now = time.time()
            for p in chunk:
                sent_at[(p.icao24, round(p.event_time, 3))] = now
            await pub.positions(chunk)
            i = j
        achieved = len(positions) / (time.perf_counter() - t0)
        await producer.flush()
        await producer.stop()
        await asyncio.sleep(5.0)
        listener.cancel()
        await pubsub.aclose()
        await client.aclose()
        lat = []
        for t_recv, a in received:
            t_ev = a.get("confirmed_event_time") or a.get("event_time")
            key = (a.get("icao24"), round(float(t_ev), 3)) if t_ev is not None else None
            if key in sent_at:
                lat.append(t_recv - sent_at[key])
        lat.sort()

        def pct(q: float) -> float:
            return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

        return {"rate_target": rate, "rate_achieved": round(achieved), "aircraft": n_air,
                "event_time_compression": compression, "alerts": len(received),
                "alerts_matched": len(lat), "p50_ms": round(pct(0.50), 1), "p99_ms": round(pct(0.99), 1),
                "max_ms": round(lat[-1] * 1000, 1) if lat else float("nan")}
    finally:
        w.stop()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small volumes (CI keeps the script alive)")
    args = ap.parse_args()
    n_air = 30 if args.quick else 500
    lat_seconds = 8.0 if args.quick else 30.0
    tmp = Path(tempfile.mkdtemp(prefix="skyfence-bench-"))
    stack = LocalStack(Settings.from_env(kafka_port=0, redis_port=0, partitions=8), tmp / "stack")
    stack.up(log=lambda m: print(m, file=sys.stderr))
    base = stack.settings_for_clients()
    results: dict[str, object] = {"quick": args.quick}
    try:
        # --- 1 + 2: reference consumer and worker throughput on the same pre-filled topic
        positions = fleet(n_air, stagger_s=600.0, t_start=time.time() - 30 * 86400)
        s = phase_settings(base, "tp")
        produce_s = await produce_all(s, positions)
        ref_rate = await reference_consume(s, len(positions))
        w = Worker(s, tmp / "worker-throughput.log")
        try:
            w.wait_ready()
            rate = await wait_processed(w, len(positions), time.perf_counter(), timeout=900)
            m = await settled_metrics(w)
            rss1 = w.rss_mb()
        finally:
            w.stop()
        results.update(
            positions=len(positions), aircraft=n_air, produce_rate=round(len(positions) / produce_s),
            reference_rate=round(ref_rate), worker_rate=round(rate), worker_vs_reference=round(rate / ref_rate, 3),
            alerts=int(sum(v for k, v in m.items() if k.startswith("skyfence_alerts_total"))),
            worker_rss_mb=round(rss1, 1),
        )
        # --- 3: latency at 20k positions/s
        results["latency"] = await latency_phase(base, 20000.0, lat_seconds, tmp)
        # --- 5: two workers share partitions and aircraft
        s2 = phase_settings(base, "two")
        await produce_all(s2, fleet(max(8, n_air // 4), stagger_s=600.0, t_start=time.time() - 30 * 86400))
        w1 = Worker(s2, tmp / "w1.log")
        s2b = s2.replace(web_port=free_port())
        w2 = Worker(s2b, tmp / "w2.log")
        try:
            w1.wait_ready()
            w2.wait_ready()
            await asyncio.sleep(8.0)
            info = [await w1.ready_info(), await w2.ready_info()]
            tracked2 = [(await w1.metrics()).get("skyfence_tracked_aircraft", 0), (await w2.metrics()).get(
                "skyfence_tracked_aircraft", 0)]
        finally:
            w1.stop()
            w2.stop()
        results["two_workers"] = {"assigned_partitions": [i.get("assigned_partitions") for i in info],
                                  "tracked_aircraft": tracked2, "aircraft_total": max(8, n_air // 4)}
    finally:
        stack.down()
    lat = results["latency"]
    assert isinstance(lat, dict)
    two = results["two_workers"]
    assert isinstance(two, dict)
    rows = [
        ("positions in the workload", f"{results['positions']:,} ({n_air} aircraft)"),
        ("plain aiokafka + orjson (reference)", f"{results['reference_rate']:,} positions/s"),
        ("one worker, end to end", f"{results['worker_rate']:,} positions/s"),
        ("worker / reference", f"{results['worker_vs_reference']}"),
        ("alerts raised", f"{results['alerts']:,}"),
        ("worker resident memory after the run", f"{results['worker_rss_mb']} MB"),
        ("latency at 20k/s: achieved rate", f"{lat['rate_achieved']:,} positions/s"),
        ("latency p50 / p99 / max",
         f"{lat['p50_ms']} / {lat['p99_ms']} / {lat['max_ms']} ms ({lat['alerts_matched']} alerts)"),
        ("two workers: partitions (all topics)", f"{two['assigned_partitions']}"),
        ("two workers: aircraft each", f"{two['tracked_aircraft']} of {two['aircraft_total']}"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'pipeline benchmark':<{width}}  result")
    print("-" * (width + 40))
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(orjson.dumps(results).decode())


if __name__ == "__main__":
    asyncio.run(main())
