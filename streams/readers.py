"""Readers: where input bytes come from (files, stdin, receivers, HTTP APIs).

This module owns the I/O side of ingestion and nothing else: it yields byte chunks in
arrival order and never parses them (parsers live in :mod:`streams.parsers`).

Sources accepted by :func:`open_feed`:

* a file path (or ``file://`` URL), plain or gzip (detected by magic bytes, so
  ``trace_full_*.json`` files from globe_history work whatever their name);
* ``-`` for standard input (also gzip-detected);
* ``tcp://host:port``: a receiver's SBS/AVR/Beast port. A dropped or refused connection
  is retried forever with exponential backoff and jitter (``max_retries`` bounds the
  consecutive failures, for tests and one-shot tools); every reconnect is logged;
* ``http://`` / ``https://``: polled every ``poll_interval_s``; an ``aircraft.json`` URL
  or the OpenSky API (``bbox`` adds ``lamin/lomin/lamax/lomax``). HTTP 429 is honoured:
  the reader waits ``Retry-After`` (seconds or HTTP date; OpenSky's
  ``X-Rate-Limit-Retry-After-Seconds`` too) before asking again; other failures back off.

:func:`sniff_format` guesses a recorded file's format from its first bytes (gzip looked through).

Document boundaries: an EMPTY chunk ``b""`` is yielded at the end of every document
(end of file, end of each HTTP response, end of each TCP connection). Call the parser's
``flush()`` there: document formats parse on flush, and line/frame formats dead-letter a
partial line or frame left by a dropped connection. :func:`parse_feed` does exactly
this and yields :class:`~streams.messages.ParseResult` objects.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import logging
import random
import sys
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from streams.messages import ParseResult
from streams.parsers import DOCUMENT_FORMATS, Parser, make_parser

log = logging.getLogger("skyfence.feeds")

# 64 KiB reads: large enough that per-chunk overhead vanishes, small enough that a slow
# receiver's frames are passed on promptly.
CHUNK_SIZE = 64 * 1024
# First retry after 1 s, doubling to at most a minute: a receiver restart takes seconds,
# and a minute bounds how long data is missed after a long outage ends.
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 60.0
# A receiver port silent for 5 minutes is more likely a dead socket than an empty sky.
IDLE_TIMEOUT_S = 300.0
# Connecting should take well under 10 s even across the internet.
CONNECT_TIMEOUT_S = 10.0
# OpenSky's anonymous API refreshes every 10 s; polling faster only burns quota.
POLL_INTERVAL_S = 10.0
# One HTTP response may take this long (a whole-world OpenSky reply is ~5 MiB).
HTTP_TIMEOUT_S = 30.0
# Bounds memory for one response; the parser refuses bigger documents as oversize.
MAX_BODY_BYTES = 64 * 1024 * 1024
# Honour Retry-After however long, but not absurd values (one day covers daily quotas).
RETRY_AFTER_MAX_S = 86_400.0
# Decompressed output per step, so a gzip bomb cannot allocate more than this at once.
GUNZIP_STEP = 1024 * 1024

Sleep = Callable[[float], Awaitable[None]]


def backoff_delay(failures: int, initial_s: float, max_s: float, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with +-50 % jitter, so many workers do not reconnect in step."""
    base = min(max_s, initial_s * (2 ** max(0, failures - 1)))
    return base * (0.5 + rng())


def retry_after_s(headers: Mapping[str, str], default: float, now: float | None = None) -> float:
    """Seconds to wait from a 429 reply's headers (delta-seconds or HTTP-date)."""
    for name in ("Retry-After", "X-Rate-Limit-Retry-After-Seconds"):
        value = headers.get(name)
        if not value:
            continue
        value = value.strip()
        try:
            return min(RETRY_AFTER_MAX_S, max(0.0, float(value)))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            continue
        ref = time.time() if now is None else now
        return min(RETRY_AFTER_MAX_S, max(0.0, when.timestamp() - ref))
    return default


async def _gunzip_if_needed(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Pass chunks through, decompressing when the stream starts with gzip magic."""
    head = b""
    it = chunks.__aiter__()
    async for chunk in it:
        head += chunk
        if len(head) >= 2:
            break
    if head[:2] != b"\x1f\x8b":
        if head:
            yield head
        async for chunk in it:
            yield chunk
        return
    d = zlib.decompressobj(wbits=31)
    pending = head
    # Whether the current member has taken input: after a member's end marker a fresh
    # decompressor waits for a next member that may never come, which is no truncation.
    started = False
    while True:
        try:
            while pending:
                started = True
                out = d.decompress(pending, GUNZIP_STEP)
                pending = d.unconsumed_tail
                if out:
                    yield out
                if d.eof:
                    # Concatenated gzip members (as `cat a.gz b.gz` makes) continue here.
                    rest = d.unused_data + pending
                    d = zlib.decompressobj(wbits=31)
                    started = False
                    pending = rest
                    if not rest:
                        break
        except zlib.error as exc:
            # Corrupt compressed data: pass the rest on undecoded so the parser refuses
            # it as a dead letter instead of the reader failing or dropping it.
            log.error("gzip stream is corrupt (%s); passing the rest on undecoded", exc)
            yield pending
            async for chunk in it:
                yield chunk
            return
        try:
            pending = await it.__anext__()
        except StopAsyncIteration:
            break
    tail = d.flush()
    if tail:
        yield tail
    if started and not d.eof:
        log.warning("gzip stream ended before its end marker (file cut short?)")


def _gunzip_body(body: bytes, limit: int) -> bytes:
    """A response body stored gzipped without Content-Encoding (tar1090's globe_history
    .json files are served that way by some web servers) is decompressed, up to ``limit``+1."""
    if body[:2] != b"\x1f\x8b":
        return body
    d = zlib.decompressobj(wbits=31)
    try:
        return d.decompress(body, limit + 1)
    except zlib.error:
        return body  # not gzip after all: the parser will say what it is


async def _read_stream(f: BinaryIO, chunk_size: int) -> AsyncIterator[bytes]:
    while True:
        data = await asyncio.to_thread(f.read, chunk_size)
        if not data:
            return
        yield data


async def _file_chunks(path: str, chunk_size: int) -> AsyncIterator[bytes]:
    f = await asyncio.to_thread(open, path, "rb")
    try:
        async for chunk in _gunzip_if_needed(_read_stream(f, chunk_size)):
            yield chunk
    finally:
        f.close()
    yield b""


async def _stdin_chunks(stdin: BinaryIO | None, chunk_size: int) -> AsyncIterator[bytes]:
    f = stdin if stdin is not None else sys.stdin.buffer
    async for chunk in _gunzip_if_needed(_read_stream(f, chunk_size)):
        yield chunk
    yield b""


def _host_port(url: str) -> tuple[str, int]:
    rest = url[len("tcp://") :].rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected tcp://host:port, got {url!r}")
    return host.strip("[]"), int(port)


async def _tcp_chunks(
    url: str,
    *,
    chunk_size: int,
    max_retries: int | None,
    backoff_initial_s: float,
    backoff_max_s: float,
    idle_timeout_s: float | None,
    sleep: Sleep,
) -> AsyncIterator[bytes]:
    host, port = _host_port(url)
    failures = 0
    while True:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            failures += 1
            if max_retries is not None and failures > max_retries:
                log.error("%s: giving up after %d failed attempts (%s)", url, failures, exc)
                return
            delay = backoff_delay(failures, backoff_initial_s, backoff_max_s)
            log.warning("%s: connect failed (%s); retry %d in %.1f s", url, exc, failures, delay)
            await sleep(delay)
            continue
        log.info("%s: connected", url)
        got_data = False
        try:
            while True:
                data = await asyncio.wait_for(reader.read(chunk_size), idle_timeout_s)
                if not data:
                    log.warning("%s: connection closed by peer", url)
                    break
                got_data = True
                yield data
        except (OSError, TimeoutError) as exc:
            log.warning("%s: connection lost (%s)", url, exc or type(exc).__name__)
        finally:
            writer.close()
            with suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()
        yield b""
        failures = 1 if got_data else failures + 1
        if max_retries is not None and failures > max_retries:
            log.error("%s: giving up after %d failed attempts", url, failures)
            return
        delay = backoff_delay(failures, backoff_initial_s, backoff_max_s)
        log.warning("%s: reconnecting in %.1f s", url, delay)
        await sleep(delay)


async def _http_chunks(
    url: str,
    *,
    bbox: tuple[float, float, float, float] | None,
    headers: Mapping[str, str] | None,
    poll_interval_s: float,
    max_polls: int | None,
    max_retries: int | None,
    backoff_initial_s: float,
    backoff_max_s: float,
    max_body_bytes: int,
    sleep: Sleep,
) -> AsyncIterator[bytes]:
    import aiohttp  # only HTTP sources need it; keeps `import streams.readers` light

    params: dict[str, str] = {}
    if bbox is not None:
        lamin, lomin, lamax, lomax = bbox
        params = {"lamin": str(lamin), "lomin": str(lomin), "lamax": str(lamax), "lomax": str(lomax)}
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    loop = asyncio.get_running_loop()
    polls = 0
    failures = 0
    async with aiohttp.ClientSession(timeout=timeout, headers=dict(headers or {})) as session:
        while max_polls is None or polls < max_polls:
            polls += 1
            started = loop.time()
            body: bytes | None = None
            wait: float | None = None
            try:
                async with session.get(url, params=params or None) as resp:
                    if resp.status == 429:
                        wait = retry_after_s(resp.headers, backoff_delay(1, poll_interval_s, backoff_max_s))
                        log.warning("%s: HTTP 429, waiting %.1f s as asked", url, wait)
                    elif resp.status != 200:
                        failures += 1
                        log.warning("%s: HTTP %d", url, resp.status)
                    else:
                        buf = bytearray()
                        async for piece in resp.content.iter_chunked(CHUNK_SIZE):
                            buf += piece
                            if len(buf) > max_body_bytes:
                                break  # the parser refuses it as oversize; no need for more
                        body = _gunzip_body(bytes(buf), max_body_bytes)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                failures += 1
                log.warning("%s: request failed (%s)", url, exc or type(exc).__name__)
            if body is not None:
                failures = 0
                yield body
                yield b""
                wait = max(0.0, poll_interval_s - (loop.time() - started))
            elif wait is None:
                if max_retries is not None and failures > max_retries:
                    log.error("%s: giving up after %d failed polls", url, failures)
                    return
                wait = backoff_delay(failures, max(backoff_initial_s, poll_interval_s), backoff_max_s)
            if max_polls is not None and polls >= max_polls:
                return
            await sleep(wait)


def open_feed(
    source: str,
    *,
    fmt: str,
    chunk_size: int = CHUNK_SIZE,
    poll_interval_s: float = POLL_INTERVAL_S,
    bbox: tuple[float, float, float, float] | None = None,
    headers: Mapping[str, str] | None = None,
    max_retries: int | None = None,
    max_polls: int | None = None,
    backoff_initial_s: float = BACKOFF_INITIAL_S,
    backoff_max_s: float = BACKOFF_MAX_S,
    idle_timeout_s: float | None = IDLE_TIMEOUT_S,
    max_body_bytes: int = MAX_BODY_BYTES,
    stdin: BinaryIO | None = None,
    sleep: Sleep = asyncio.sleep,
) -> AsyncIterator[bytes]:
    """Async iterator of byte chunks from ``source``; ``b""`` marks a document's end.

    ``fmt`` is the input format (a key of ``streams.parsers.FORMATS``); ``bbox`` is
    ``(lamin, lomin, lamax, lomax)`` for OpenSky; ``headers`` go with every HTTP request
    (e.g. an OpenSky bearer token). ``max_retries`` (TCP: consecutive failed
    connections, a connection that delivered data and then dropped counting as the first;
    HTTP: consecutive failed polls, 429s not counted) and ``max_polls`` default to
    None = run forever. ``sleep`` is injectable so tests can observe backoff and Retry-After
    without waiting. Raises ValueError for a malformed source or bbox.
    """
    if bbox is not None:
        if fmt != "opensky":
            raise ValueError("bbox applies to the opensky format only")
        lamin, lomin, lamax, lomax = bbox
        if not (-90 <= lamin < lamax <= 90 and -180 <= lomin < lomax <= 180):
            raise ValueError(f"bbox must be (lamin, lomin, lamax, lomax), got {bbox}")
    if source == "-":
        return _stdin_chunks(stdin, chunk_size)
    if source.startswith("tcp://"):
        _host_port(source)
        return _tcp_chunks(
            source,
            chunk_size=chunk_size,
            max_retries=max_retries,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
            idle_timeout_s=idle_timeout_s,
            sleep=sleep,
        )
    if source.startswith(("http://", "https://")):
        return _http_chunks(
            source,
            bbox=bbox,
            headers=headers,
            poll_interval_s=poll_interval_s,
            max_polls=max_polls,
            max_retries=max_retries,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
            max_body_bytes=max_body_bytes,
            sleep=sleep,
        )
    if "://" in source and not source.startswith("file://"):
        raise ValueError(f"unsupported source {source!r}: use a path, '-', tcp://, http(s)://")
    path = source[len("file://") :] if source.startswith("file://") else source
    return _file_chunks(path, chunk_size)


async def parse_feed(
    source: str,
    *,
    fmt: str,
    parser: Parser | None = None,
    receiver: str | None = None,
    reference: tuple[float, float] | None = None,
    **feed_kwargs: object,
) -> AsyncIterator[ParseResult]:
    """Read ``source`` and parse it: one ParseResult per chunk or document end.

    Builds ``make_parser(fmt, source=source, receiver=receiver, reference=reference)``
    unless a ``parser`` is given; other keyword arguments go to :func:`open_feed`.
    Empty results are not yielded. Order is the feed's order.
    """
    if parser is None:
        # A response cut at max_body_bytes must read as oversize, not as a truncated
        # document: the document parser's limit follows the reader's.
        limit = feed_kwargs.get("max_body_bytes") if fmt in DOCUMENT_FORMATS else None
        parser = make_parser(
            fmt,
            source=source,
            receiver=receiver,
            reference=reference,
            max_message_bytes=limit if isinstance(limit, int) else None,
        )
    p = parser
    async for chunk in open_feed(source, fmt=fmt, **feed_kwargs):  # type: ignore[arg-type]
        result = p.feed(chunk) if chunk else p.flush()
        if result.messages:
            yield result
    result = p.flush()
    if result.messages:
        yield result


def sniff_format(path: Path) -> str:
    """Guess a file's format from its first bytes (gzip is looked through)."""
    from streams.ingest import RECORD_FORMAT
    from streams.parsers import detect_format
    from streams.settings import SettingsError

    with open(path, "rb") as f:
        head = f.read(4096)
    if head[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as g:
            head = g.read(4096)
    if head.lstrip().startswith(b'{"schema":"record.v1"'):
        return RECORD_FORMAT
    fmt = detect_format(head)
    if fmt is None:
        raise SettingsError(f"cannot tell the format of {path}; give it with --format")
    return fmt
