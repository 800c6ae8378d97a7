"""``skyfence ingest``: parse a feed (file, -, tcp://, http(s)://) into the positions topic."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from streams.cli.format import iso, parse_speed, parse_time
from streams.ingest import RECORD_FORMAT, IngestStats, KafkaOutput, Output, Pacing, StdoutOutput
from streams.ingest import run as run_feed
from streams.readers import sniff_format
from streams.settings import Settings, SettingsError

log = logging.getLogger(__name__)

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="file (plain or gzip), - for stdin, tcp://host:port, or an http(s) URL")
    p.add_argument("--format", "-f", dest="fmt", required=True, help="input format (see --help of `formats`)")
    p.add_argument("--receiver", default=None, help="receiver id (default: derived from the source)")
    p.add_argument("--stdout", action="store_true", help="print positions as JSON lines; publish nothing")
    p.add_argument("--raw", action="store_true", help="also archive the raw input to the raw topic")
    p.add_argument("--interval", type=float, default=5.0, help="HTTP polling interval in seconds")
    p.add_argument("--bbox", default=None, help="OpenSky bounding box lamin,lomin,lamax,lomax")
    p.add_argument("--reference", default=None, help="receiver position LAT,LON for Mode S local decoding")
    p.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus /metrics on this port (0: off)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(run_ingest(settings, args, replay=False))


# --- the ingest loop, shared with `skyfence replay` ------------------------------------------
class Progress:
    """One status line on stderr, refreshed at most twice a second."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled
        self._last = 0.0

    def __call__(self, stats: IngestStats, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < 0.5):
            return
        self._last = now
        sys.stderr.write(
            f"\r{self.label}: {stats.messages:,} msgs  {stats.positions:,} positions  "
            f"{stats.dead_letters:,} dead letters  sim {iso(stats.last_event)}  {stats.rate:,.0f} pos/s   "
        )
        sys.stderr.flush()

    def done(self, stats: IngestStats) -> None:
        self(stats, force=True)
        if self.enabled:
            sys.stderr.write("\n")


async def run_ingest(settings: Settings, args: argparse.Namespace, replay: bool) -> int:
    from streams.logs import setup_logging

    setup_logging(settings)
    source: str = args.file if replay else args.source
    if replay:
        path = Path(source)
        if not path.exists():
            raise SettingsError(f"replay: no such file {source}")
        fmt = args.fmt or sniff_format(path)
        pacing = Pacing(speed=parse_speed(args.speed), t_from=parse_time(args.t_from), t_to=parse_time(args.t_to))
    else:
        fmt = args.fmt
        pacing = Pacing()
    _check_format(fmt)
    receiver = args.receiver or _receiver_id(source)
    output: Output
    producer = None
    archive = None
    if args.stdout:
        output = StdoutOutput()
    else:
        from streams.cli.common import ensure_topics_explained
        from streams.kafka_io import Publisher, make_producer

        await ensure_topics_explained(settings)
        producer = make_producer(settings)
        await producer.start()
        publisher = Publisher(settings, producer)
        output = KafkaOutput(publisher)
        if args.raw:

            async def archive(chunk: bytes) -> None:
                await publisher.raw(chunk, fmt=fmt, receiver=receiver, source=source, received_at=time.time())

    if getattr(args, "metrics_port", None):
        output = _serve_metrics(output, args.metrics_port, settings, fmt)
    progress = Progress("replay" if replay else "ingest", enabled=sys.stderr.isatty() and not args.stdout)
    total = IngestStats()
    stopped = _stop_on_signals()
    pacing.stop = stopped
    try:
        while not stopped.is_set():
            # A stop ends the feed, not the run: the parsers flush, every position read is sent,
            # and the output's flush checks each delivery, as at the end of a file.
            chunks = _until_stopped(_chunks(source, fmt, settings, args), stopped)
            stats = await run_feed(chunks, fmt, output, source=source, receiver=receiver, pacing=pacing,
                                   max_message_bytes=settings.max_message_bytes, progress=progress,
                                   reference=_reference(args), archive=archive)
            _merge(total, stats)
            if stopped.is_set():
                log.info("stopped on signal: what was read is sent and delivered")
                break
            if not (replay and args.loop):
                break
            pacing = Pacing(speed=pacing.speed, t_from=pacing.t_from, t_to=pacing.t_to, stop=stopped)
    finally:
        if producer is not None:
            await producer.stop()
    progress.done(total)
    summary = total.as_dict()
    log.info("%s of %s (%s) finished: %s", "replay" if replay else "ingest", source, fmt, summary)
    if not args.stdout:
        print(
            f"{'replayed' if replay else 'ingested'} {summary['positions']:,} positions "
            f"({summary['dead_letters']:,} dead letters, {summary['skipped']:,} skipped) from {source} [{fmt}]"
        )
    return 0


def _stop_on_signals() -> asyncio.Event:
    """SIGTERM/SIGINT stop reading; what was read is flushed to Kafka before exit."""
    import signal

    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    return stopped


async def _until_stopped(chunks: AsyncIterator[bytes], stopped: asyncio.Event) -> AsyncIterator[bytes]:
    """``chunks`` until they end or ``stopped`` is set, whichever comes first (a live feed
    waiting for its next chunk is not waited for)."""
    it = aiter(chunks)
    waiter = asyncio.ensure_future(stopped.wait())
    try:
        while not stopped.is_set():
            nxt = asyncio.ensure_future(anext(it))
            await asyncio.wait({nxt, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not nxt.done():
                nxt.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await nxt
                return
            try:
                chunk = nxt.result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        waiter.cancel()
        closer = getattr(it, "aclose", None)
        if closer is not None:
            await closer()


def _serve_metrics(output: Output, port: int, settings: Settings, fmt: str) -> Output:
    from prometheus_client import start_http_server

    from streams.metrics import create_metrics

    metrics = create_metrics()
    start_http_server(port, addr=settings.web_host, registry=metrics.registry)
    return MeteredOutput(output, metrics, fmt)


class MeteredOutput:
    """Counts what an ingest process sends, for its own /metrics endpoint."""

    def __init__(self, inner: Output, metrics: Any, fmt: str) -> None:
        self.inner, self.metrics, self.fmt = inner, metrics, fmt

    async def positions(self, positions: Any) -> None:
        await self.inner.positions(positions)
        self.metrics.positions_in.labels(self.fmt, "ingest").inc(len(positions))

    async def dead_letters(self, dead: Any) -> None:
        await self.inner.dead_letters(dead)
        for d in dead:
            self.metrics.dead_letters.labels(d.input_format, d.reason).inc()

    async def flush(self) -> None:
        await self.inner.flush()


def _merge(total: IngestStats, s: IngestStats) -> None:
    total.messages += s.messages
    total.positions += s.positions
    total.dead_letters += s.dead_letters
    total.skipped += s.skipped
    total.filtered += s.filtered
    # event times too, so the final progress line shows the simulated time reached
    if s.first_event is not None:
        total.first_event = s.first_event if total.first_event is None else min(total.first_event, s.first_event)
    if s.last_event is not None:
        total.last_event = s.last_event
    for k, v in s.dead_reasons.items():
        total.dead_reasons[k] = total.dead_reasons.get(k, 0) + v


def _check_format(fmt: str) -> None:
    from streams.parsers import FORMATS

    if fmt != RECORD_FORMAT and fmt not in FORMATS:
        raise SettingsError(f"unknown format {fmt!r}; one of: {', '.join([*sorted(FORMATS), RECORD_FORMAT])}")


def _reference(args: argparse.Namespace) -> tuple[float, float] | None:
    text = getattr(args, "reference", None)
    if not text:
        return None
    try:
        lat, lon = (float(x) for x in text.split(","))
    except ValueError:
        raise SettingsError(f"--reference {text!r}: give the receiver position as LAT,LON") from None
    return lat, lon


def _receiver_id(source: str) -> str:
    if source == "-":
        return "stdin"
    if "://" in source:
        return source.split("://", 1)[1].split("/", 1)[0]
    return Path(source).name


def _chunks(source: str, fmt: str, settings: Settings, args: argparse.Namespace) -> AsyncIterator[bytes]:
    from streams.readers import open_feed

    kwargs: dict[str, Any] = {}
    if getattr(args, "interval", None):
        kwargs["poll_interval_s"] = args.interval
    if getattr(args, "bbox", None):
        kwargs["bbox"] = tuple(float(x) for x in args.bbox.split(","))
    return open_feed(source, fmt=fmt, **kwargs)
