"""A real receiver in the loop, without an antenna: a local ``dump1090-mutability``.

This module owns running Debian's ``dump1090-mutability`` in ``--net-only`` mode on
loopback ports chosen free (like :mod:`streams.stack` runs Kafka and Redis), playing
recorded Mode S frames into its input ports at the recording's pace, serving its
``--write-json`` folder over HTTP (this dump1090 has no web server of its own), restarting
it on the same ports, and stopping exactly the process it started. Used by the receiver
tests and by ``skyfence demo --receiver``.

What dump1090 does with the frames is its own business: it checks and forwards them on its
outputs, which skyfence then reads as it would read a receiver with an antenna:

* ``beast_url`` (``--net-bo-port``): Beast binary, ``skyfence ingest ... --format beast``;
* ``avr_url`` (``--net-ro-port``): AVR text ``*<hex>;``, ``--format avr``;
* ``sbs_url`` (``--net-sbs-port``): BaseStation lines with dump1090's own decoding, ``--format sbs``;
* ``json_url``: ``aircraft.json`` snapshots dump1090 writes every second, ``--format readsb-json``.

Frames go in as AVR lines on the raw input port (``--net-ri-port``; dump1090 then stamps no
time, and its Beast output carries a zero counter) or as Beast frames on the Beast input port
(``--net-bi-port``) with the recording's times as the receiver's 12 MHz counter, which
dump1090 passes on, so skyfence's event times keep the recording's spacing at any play speed.

Recordings (:func:`load_recording`): rs1090/traffic JSON lines (``timestamp``, ``frame``),
pyModeS CSV (``timestamp,"hex",...``) or a Beast capture (``nc receiver 30005 > file``),
plain or gzip.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import orjson

from streams.parsers.beast import BeastFrame, split_frames
from streams.parsers.modes import MLAT_MAGIC_TICKS, TICKS_PER_S
from streams.settings import Settings
from streams.stack import free_port, port_open

# The Debian package (bookworm: 1.15~20180310.4a16df3+dfsg-8.1), installed by dev/setup.sh.
DUMP1090 = "dump1090-mutability"
# Loopback only: a test receiver must not be reachable from the network.
HOST = "127.0.0.1"
# dump1090 opens its ports in well under a second; 30 s covers a loaded 2-core CI machine.
START_TIMEOUT_S = 30.0
# dump1090 exits within milliseconds of SIGTERM; after 10 s it is stuck and gets SIGKILL.
STOP_TIMEOUT_S = 10.0
# A Beast counter of 0 means "no timestamp" (to dump1090 and to our parser), so the
# recording's first frame is placed at 1 s of receiver uptime instead.
TICKS_OFFSET = int(TICKS_PER_S)
# The Beast counter is 48 bits wide.
TICKS_MODULO = 1 << 48
# Recordings carry no signal level; Beast needs one byte, and 0 reads as "unknown" (dump1090
# writes 0 itself for frames it got without one).
SIGNAL_UNKNOWN = 0
# The player sleeps only when it is this far ahead of the recording's pace: fine enough for
# speed 1 to look live, coarse enough that a busy recording is not one sleep per frame.
PLAY_STEP_S = 0.005


class ReceiverError(RuntimeError):
    """dump1090 cannot start or stop; the message names the cause and the fix."""


# --- recordings ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RecordedFrame:
    """One Mode S frame as received: reception time (s) and the message bytes (7 or 14)."""

    t: float
    msg: bytes


def load_recording(path: str | Path) -> list[RecordedFrame]:
    """The frames of a recording file, in file order (see the module docstring for formats).

    Raises ValueError naming the line for a line that is not a frame.
    """
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    head = data.lstrip()[:1]
    if data[:1] == b"\x1a":
        return _beast_recording(data)
    if head == b"{":
        return _jsonl_recording(data, path)
    return _csv_recording(data, path)


def _jsonl_recording(data: bytes, path: str | Path) -> list[RecordedFrame]:
    frames = []
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = orjson.loads(line)
            frames.append(RecordedFrame(float(d["timestamp"]), bytes.fromhex(d["frame"])))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{n}: not a {{timestamp, frame}} line ({exc})") from None
    return frames


def _csv_recording(data: bytes, path: str | Path) -> list[RecordedFrame]:
    frames = []
    for n, row in enumerate(csv.reader(io.StringIO(data.decode("utf-8", "replace"))), 1):
        if not row:
            continue
        try:
            frames.append(RecordedFrame(float(row[0]), bytes.fromhex(row[1])))
        except (IndexError, ValueError) as exc:
            raise ValueError(f"{path}:{n}: not a timestamp,hex line ({exc})") from None
    return frames


def _beast_recording(data: bytes) -> list[RecordedFrame]:
    items, _ = split_frames(data, final=True, max_garbage=len(data) + 1)
    return [
        RecordedFrame(item.ticks / TICKS_PER_S, item.msg)
        for item in items
        # Mode A/C replies carry no address (dump1090 drops them without --modeac anyway)
        if isinstance(item, BeastFrame) and item.ftype != 0x31
    ]


def avr_line(msg: bytes) -> bytes:
    """A frame as dump1090's raw input reads it: ``*<HEX>;``."""
    return b"*" + msg.hex().upper().encode() + b";\n"


def beast_frame(msg: bytes, ticks: int, signal_level: int = SIGNAL_UNKNOWN) -> bytes:
    """A Beast frame (``0x1a``, type, 6-byte counter, signal, message; ``0x1a`` doubled)."""
    ftype = b"3" if len(msg) == 14 else b"2"
    body = (ticks % TICKS_MODULO).to_bytes(6, "big") + bytes([signal_level]) + msg
    return b"\x1a" + ftype + body.replace(b"\x1a", b"\x1a\x1a")


def beast_ticks(t: float, clock_zero: float) -> int:
    """The receiver counter for a frame received at ``t`` when the counter read 1 s at ``clock_zero``."""
    ticks = TICKS_OFFSET + round((t - clock_zero) * TICKS_PER_S)
    # mlat-client's magic value would mark a real frame as an MLAT result
    return ticks + 1 if ticks % TICKS_MODULO == MLAT_MAGIC_TICKS else ticks


# --- the dump1090 process -------------------------------------------------------------------
@dataclass(frozen=True)
class ReceiverPorts:
    raw_in: int
    raw_out: int
    sbs_out: int
    beast_in: int
    beast_out: int
    http: int

    @classmethod
    def free(cls) -> ReceiverPorts:
        ports: list[int] = []
        while len(ports) < 6:  # free_port() may hand out the same port twice
            p = free_port()
            if p not in ports:
                ports.append(p)
        return cls(*ports)


class LocalReceiver:
    """One ``dump1090-mutability --net-only`` on loopback, and an HTTP server for its JSON.

    ``run_dir`` holds the log and the JSON folder (default: ``.cache/receiver`` under the
    settings' workdir). Ports are chosen once, so :meth:`restart` comes back on the same ones.
    """

    def __init__(self, settings: Settings, run_dir: Path | None = None, ports: ReceiverPorts | None = None) -> None:
        self.run_dir = (run_dir or settings.resolve(".cache/receiver")).resolve()
        self.json_dir = self.run_dir / "json"
        self.log_file = self.run_dir / "dump1090.log"
        self.ports = ports or ReceiverPorts.free()
        self._proc: subprocess.Popen[bytes] | None = None
        self._http: _FolderServer | None = None

    # addresses skyfence reads, as `skyfence ingest` takes them
    @property
    def beast_url(self) -> str:
        return f"tcp://{HOST}:{self.ports.beast_out}"

    @property
    def avr_url(self) -> str:
        return f"tcp://{HOST}:{self.ports.raw_out}"

    @property
    def sbs_url(self) -> str:
        return f"tcp://{HOST}:{self.ports.sbs_out}"

    @property
    def json_url(self) -> str:
        # dump1090's old built-in server (and dump1090-fa's lighttpd setup) served it here too
        return f"http://{HOST}:{self.ports.http}/data/aircraft.json"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def command(self) -> list[str]:
        binary = shutil.which(DUMP1090)
        if binary is None:
            raise ReceiverError(
                f"{DUMP1090} not found on PATH; install it with: apt-get install -y {DUMP1090} "
                "(dev/setup.sh does this)"
            )
        p = self.ports
        return [
            binary, "--net-only", "--quiet",
            "--net-bind-address", HOST,
            "--net-ri-port", str(p.raw_in),
            "--net-ro-port", str(p.raw_out),
            "--net-sbs-port", str(p.sbs_out),
            "--net-bi-port", str(p.beast_in),
            "--net-bo-port", str(p.beast_out),
            "--write-json", str(self.json_dir),
        ]  # fmt: skip

    def start(self) -> None:
        """Start dump1090 (and the JSON server) and wait until every port answers."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.json_dir.mkdir(exist_ok=True)
        if self.pid is None:
            cmd = self.command()
            for port in self._tcp_ports():
                if port_open(port, HOST):
                    raise ReceiverError(f"port {port} for dump1090 is already in use by another process")
            offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            # dump1090 writes receiver.json once at start-up, after opening its ports
            (self.json_dir / "receiver.json").unlink(missing_ok=True)
            with open(self.log_file, "ab") as log:
                self._proc = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    # own session: Ctrl-C in a terminal does not reach it; we stop it ourselves
                    start_new_session=True, cwd=self.run_dir,
                )  # fmt: skip
            self._wait_ready(offset)
        if self._http is None:
            self._http = _FolderServer(self.json_dir, HOST, self.ports.http)
            self._http.start()

    def _tcp_ports(self) -> tuple[int, ...]:
        p = self.ports
        return (p.raw_in, p.raw_out, p.sbs_out, p.beast_in, p.beast_out)

    def _wait_ready(self, log_offset: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        ready_file = self.json_dir / "receiver.json"
        while time.monotonic() < deadline:
            if self.pid is None:
                raise ReceiverError(f"dump1090 exited during start-up:\n{self._log_tail(log_offset)}")
            if ready_file.exists() and all(port_open(port, HOST) for port in self._tcp_ports()):
                return
            time.sleep(0.05)
        self.stop()
        raise ReceiverError(f"dump1090 did not open its ports within {START_TIMEOUT_S:.0f} s; see {self.log_file}")

    def _log_tail(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(offset)
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def stop_dump1090(self, sig: int = signal.SIGTERM) -> None:
        """Stop the dump1090 process only (the JSON server keeps serving the folder)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def restart(self, sig: int = signal.SIGTERM) -> None:
        """Stop dump1090 with ``sig`` and start it again on the same ports (its state is lost)."""
        self.stop_dump1090(sig)
        self.start()

    def stop(self) -> None:
        self.stop_dump1090()
        if self._http is not None:
            self._http.stop()
            self._http = None

    def __enter__(self) -> LocalReceiver:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def clients(self, port: int) -> int:
        """Connections dump1090 has accepted on ``port`` (from /proc; Linux).

        A client's connect() returns once the kernel queued it, but dump1090 accepts new
        clients only every 100 ms or so, and sends a client nothing before that: what is
        written in between is not sent to it. Wait on this, not on the connect.
        """
        pid = self.pid
        if pid is None:
            return 0
        inodes = set()
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
        except OSError:
            return 0
        n = 0
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            # state 01 is ESTABLISHED; the listening socket itself is 0A
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port and inode in inodes:
                n += 1
        return n

    async def wait_clients(self, port: int, n: int = 1, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until dump1090 serves at least ``n`` clients on ``port`` (ReceiverError on timeout)."""
        deadline = time.monotonic() + timeout_s
        while self.clients(port) < n:
            if time.monotonic() > deadline:
                raise ReceiverError(f"dump1090 did not accept {n} client(s) on port {port} within {timeout_s:.0f} s")
            await asyncio.sleep(0.02)


# --- playing a recording into dump1090 -------------------------------------------------------
async def play(
    frames: Sequence[RecordedFrame],
    port: int,
    *,
    fmt: str = "beast",
    speed: float | None = None,
    clock_zero: float | None = None,
    host: str = HOST,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> int:
    """Write ``frames`` in order to a dump1090 input port; returns how many were written.

    ``fmt``: ``beast`` (to ``--net-bi-port``; the counter is the recording's time since
    ``clock_zero``, default the first frame's) or ``avr`` (to ``--net-ri-port``, no time).
    ``speed``: the recording's spacing divided by this; None plays as fast as the socket
    takes the frames.
    """
    if fmt not in ("beast", "avr"):
        raise ValueError(f"fmt must be beast or avr, not {fmt!r}")
    if not frames:
        return 0
    zero = frames[0].t if clock_zero is None else clock_zero
    loop = asyncio.get_running_loop()
    _, writer = await asyncio.open_connection(host, port)
    try:
        t0, w0 = frames[0].t, loop.time()
        for fr in frames:
            if speed:
                ahead = w0 + (fr.t - t0) / speed - loop.time()
                if ahead > PLAY_STEP_S:
                    await writer.drain()
                    await sleep(ahead)
            writer.write(beast_frame(fr.msg, beast_ticks(fr.t, zero)) if fmt == "beast" else avr_line(fr.msg))
        await writer.drain()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    return len(frames)


# --- the JSON folder over HTTP ---------------------------------------------------------------
class _FolderServer:
    """aiohttp serving ``folder`` under ``/data/``, in a thread of its own (callers are sync)."""

    def __init__(self, folder: Path, host: str, port: int) -> None:
        self.folder, self.host, self.port = folder, host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="receiver-json-http", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT_S) or self._error is not None:
            self.stop()
            raise ReceiverError(f"cannot serve {self.folder} on {self.host}:{self.port}: {self._error}")

    def _run(self, ready: threading.Event) -> None:
        from aiohttp import web

        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application()
        app.router.add_static("/data/", self.folder)
        runner = web.AppRunner(app, access_log=None)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, self.host, self.port).start())
        except Exception as exc:  # the port taken, most likely; start() raises it in the caller
            self._error = exc
            loop.run_until_complete(runner.cleanup())
            loop.close()
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(STOP_TIMEOUT_S)
        self._loop = self._thread = None
