"""The only door to the rs1090 Mode S decoder, with its output loaded safely.

This module owns every call into ``rs1090._rust``. rs1090's own Python wrapper runs
``pickle.loads`` on the bytes its Rust core returns, and the project rule is: no pickle
or other code-executing deserialisation anywhere. So we call the Rust functions
directly and load their payload with :class:`PlainDataUnpickler`, whose ``find_class``
refuses every global: only data opcodes (dict, list, tuple, str, int, float, bool,
None) can load, so no payload, corrupted or malicious, can name a callable to run.

rs1090 panics (a ``BaseException``) on odd-length or non-hex strings; callers pass only
validated hex of 14 or 28 digits, and :func:`decode_many` still isolates a panic to the
frame that caused it.

Decoding state: rs1090 pairs even/odd CPR frames only inside one vectorised call and
keeps nothing between calls, so CPR state lives in :mod:`streams.parsers.modes`; this
module offers the two stateless primitives it needs: a global decode of one even/odd
pair and a local decode against a reference position.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from typing import Any

from rs1090 import _rust

# rs1090 vectorised calls take a list of batches; its own wrapper uses 1,000 per batch.
BATCH = 1000


class PlainDataUnpickler(pickle.Unpickler):
    """Unpickler that can build plain data only: every global lookup is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused global {module}.{name}: rs1090 output must be plain data")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused persistent id")


def loads_plain(payload: bytes | bytearray | Sequence[int]) -> Any:
    """Load rs1090's pickled output (``list[int]`` as it returns it) as plain data."""
    data = payload if isinstance(payload, bytes | bytearray) else bytes(payload)
    # A buffered stream lets the C unpickler prefetch (it peeks); on a bare BytesIO it
    # makes one Python-level read per opcode, which doubles the cost of a large batch.
    stream = io.BufferedReader(io.BytesIO(data), max(8192, len(data)))
    return PlainDataUnpickler(stream).load()


def _is_panic(exc: BaseException) -> bool:
    # pyo3's PanicException derives from BaseException and is not importable by name.
    return type(exc).__name__ == "PanicException"


def decode_one(hexmsg: str) -> dict[str, Any] | None:
    """Field decoding of one frame; None when rs1090 cannot decode it."""
    try:
        out = loads_plain(_rust.decode_1090(hexmsg))
    except BaseException as exc:
        if _is_panic(exc):
            return None
        raise
    return out if isinstance(out, dict) else None


def decode_many(hexmsgs: Sequence[str]) -> list[dict[str, Any] | None]:
    """Field decoding of many frames in one vectorised call (no CPR positions)."""
    if not hexmsgs:
        return []
    batches = [list(hexmsgs[i : i + BATCH]) for i in range(0, len(hexmsgs), BATCH)]
    try:
        out = loads_plain(_rust.decode_1090_vec(batches))
    except BaseException as exc:
        if not _is_panic(exc):
            raise
        return [decode_one(h) for h in hexmsgs]
    if not isinstance(out, list) or len(out) != len(hexmsgs):
        return [decode_one(h) for h in hexmsgs]
    return [d if isinstance(d, dict) else None for d in out]


def _latlon(d: Any) -> tuple[float, float] | None:
    if not isinstance(d, dict):
        return None
    lat, lon = d.get("latitude"), d.get("longitude")
    if isinstance(lat, float | int) and isinstance(lon, float | int):
        lon = float(lon)
        # rs1090's local decoding does not wrap longitude: near the antimeridian a
        # reference at 179.9 E yields 180.3 for a point at 179.7 W.
        if -540.0 < lon < -180.0 or 180.0 < lon < 540.0:
            lon = (lon + 180.0) % 360.0 - 180.0
        return float(lat), lon
    return None


def cpr_global(older_hex: str, older_t: float, newer_hex: str, newer_t: float) -> tuple[float, float] | None:
    """Globally unambiguous position of ``newer`` from an even/odd airborne pair.

    None when rs1090 refuses the pair (e.g. the two frames straddle a latitude zone).
    """
    try:
        out = loads_plain(_rust.decode_1090t_vec([[older_hex, newer_hex]], [[older_t, newer_t]], None))
    except BaseException as exc:
        if _is_panic(exc):
            return None
        raise
    if not isinstance(out, list) or len(out) != 2:
        return None
    return _latlon(out[1])


def cpr_local(hexmsg: str, ref_lat: float, ref_lon: float) -> tuple[float, float] | None:
    """Position of one CPR frame decoded locally against a nearby reference position."""
    try:
        out = loads_plain(_rust.decode_1090_with_reference(hexmsg, (ref_lat, ref_lon)))
    except BaseException as exc:
        if _is_panic(exc):
            return None
        raise
    return _latlon(out)


def decode_timed_batch(
    hexmsgs: Sequence[str], times: Sequence[float], reference: tuple[float, float] | None
) -> list[dict[str, Any] | None]:
    """rs1090's own stateful batch decoding (CPR pairing inside this call only).

    Not used by the parsers (its state dies with the call); kept for the benchmark and
    the agreement tests, which compare our layer with rs1090 used this way.
    """
    if not hexmsgs:
        return []
    batches = [list(hexmsgs[i : i + BATCH]) for i in range(0, len(hexmsgs), BATCH)]
    ts = [list(times[i : i + BATCH]) for i in range(0, len(times), BATCH)]
    out = loads_plain(_rust.decode_1090t_vec(batches, ts, reference))
    return [d if isinstance(d, dict) else None for d in out]
