"""The keyed cross-aircraft stages: coverage (gone dark) and the mission ledger.

This module owns the stream semantics of the two stages fed from every partition of the
positions topic: their record format, their event-time watermark, and which keys' state
changed. It is pure logic over records, shared by the worker's ``coverage`` and
``missions`` agents (one :class:`StagePartition` per assigned partition) and by
``skyfence analyze`` (one for the whole file), so both give the same answer.

Records (JSON values, keyed by coverage cell or mission category):

- ``{"kind": "heard" | "dark_candidate" | "reappearance", ...}`` on the coverage topic;
- ``{"kind": "mission", ...}`` on the missions topic;
- ``{"kind": "watermark", "marks": {"<p>": t, ...}}`` on every partition of both: the
  track stage promises that no more records derived from positions partition ``p`` with
  event time at or before ``t`` will follow (it sends them after the records, on the same
  producer, so Kafka keeps that order within a partition). ``null`` says that partition
  ``p`` is empty (idle): it holds nothing back until it reports a time. One record carries
  every partition a worker owns, a few times a second: a record per partition per batch
  was most of the stages' traffic and, at 20,000 positions/s, most of the worker's CPU.

A stage's watermark is the minimum over the positions partitions that carry data, and only
once every one of the ``sources`` partitions has reported (a time, or idle): partitions
are consumed at different paces, by different workers, and a stage that moved on with the
fastest would decide before the slowest partition's records arrived. So one worker, two
workers and ``analyze`` decide every candidate and mission at the same event time with the
same evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.core.coverage import CoverageStage, DarkCandidate, Heard, Reappearance
from streams.core.missions import Mission, MissionLedger

COVERAGE = "coverage"
MISSIONS = "missions"
_COVERAGE_KINDS: dict[str, Any] = {"heard": Heard, "dark_candidate": DarkCandidate, "reappearance": Reappearance}


def encode_coverage(cell: str, record: Heard | DarkCandidate | Reappearance) -> tuple[bytes, bytes]:
    kind = "heard" if isinstance(record, Heard) else "dark_candidate" if isinstance(record, DarkCandidate) \
        else "reappearance"
    return cell.encode(), orjson.dumps({"kind": kind, **record.to_dict()})


def encode_coverage_batch(records: Iterable[tuple[str, Heard | DarkCandidate | Reappearance]]
                          ) -> list[tuple[bytes, bytes]]:
    """Coverage records as topic records: every cell's heard records of a batch as one record
    (``{"kind": "heard", "items": [[icao24, t, lat, lon], ...]}``: a list per item, half the
    bytes and decode time of an object), candidates and reappearances one each. In a
    catch-up every aircraft near Mexico is heard once a minute of event time into 1-4 cells,
    ~15 % as many records as positions, and a Kafka record costs the stage agent ~100 us."""
    heard: dict[str, list[list[Any]]] = {}
    out: list[tuple[bytes, bytes]] = []
    for cell, rec in records:
        if isinstance(rec, Heard):
            heard.setdefault(cell, []).append([rec.icao24, rec.t, rec.lat, rec.lon])
        else:
            out.append(encode_coverage(cell, rec))
    batched = [(cell.encode(), orjson.dumps({"kind": "heard", "items": items[i : i + HEARD_PER_RECORD]}))
               for cell, items in heard.items() for i in range(0, len(items), HEARD_PER_RECORD)]
    return batched + out


# At most this many heard items per record (~50 B each: ~25 KB): a catch-up batch of 100,000
# positions near Mexico heard thousands of aircraft-minutes in one cell, and one record of them
# all passed the broker's 1 MiB message limit, after which the producer never completed it.
HEARD_PER_RECORD = 500


def encode_mission(m: Mission) -> tuple[bytes, bytes]:
    return m.category.encode(), orjson.dumps({"kind": "mission", **m.to_dict()})


def encode_watermark(marks: dict[int, float | None]) -> bytes:
    """A watermark record for these source partitions; None marks one as empty (idle)."""
    return orjson.dumps({"kind": "watermark",
                         "marks": {str(int(p)): None if t is None else float(t) for p, t in sorted(marks.items())}})


@dataclass
class StageResult:
    alerts: list[dict[str, Any]] = field(default_factory=list)
    # (reason, detail, raw value) of records that could not be read; the agent dead-letters them.
    bad: list[tuple[str, str, bytes]] = field(default_factory=list)


class StagePartition:
    """One partition's worth of a keyed stage: its state object, its watermark, its dirty keys."""

    def __init__(self, kind: str, stage: CoverageStage | MissionLedger, sources: int) -> None:
        if kind not in (COVERAGE, MISSIONS):
            raise ValueError(f"unknown stage {kind!r}")
        if sources < 1:
            raise ValueError("a stage needs at least one source partition")
        self.kind = kind
        self.stage = stage
        self.expected = sources
        # positions partition -> its watermark, or None while it is empty (idle)
        self.sources: dict[int, float | None] = {}
        self.dirty: set[str] = set()
        self.loaded: set[str] = set()

    @property
    def watermark(self) -> float:
        if len(self.sources) < self.expected:
            return float("-inf")
        times = [t for t in self.sources.values() if t is not None]
        return min(times) if times else float("-inf")

    def handle(self, records: Iterable[tuple[bytes | None, bytes]]) -> StageResult:
        """Apply a batch of (key, value) records, then advance to the watermark."""
        res = StageResult()
        for key, value in records:
            try:
                doc = orjson.loads(value)
                if not isinstance(doc, dict):
                    raise ValueError("not an object")
                kind = doc.pop("kind", None)
                if kind == "watermark":
                    marks = doc["marks"]
                    if not isinstance(marks, dict):
                        raise ValueError("watermark marks must be an object")
                    for src, raw_t in marks.items():
                        self.update_watermark(int(src), None if raw_t is None else float(raw_t))
                    continue
                k = (key or b"").decode()
                if not k:
                    raise ValueError("record without a key")
                self._apply(str(kind), k, doc)
            except (ValueError, KeyError, TypeError, UnicodeDecodeError, orjson.JSONDecodeError) as exc:
                res.bad.append(("bad_stage_record", f"{self.kind}: {exc}", bytes(value)))
        res.alerts.extend(self.advance())
        return res

    def update_watermark(self, source: int, t: float | None) -> None:
        """A source's watermark only moves forward; idle (None) only until it reports a time."""
        if not 0 <= source < self.expected:
            raise ValueError(f"watermark of source partition {source}, expected 0..{self.expected - 1}")
        old = self.sources.get(source, float("-inf"))
        if t is None:
            if source not in self.sources:
                self.sources[source] = None
        elif old is None or t > old:
            self.sources[source] = t

    def advance(self) -> list[dict[str, Any]]:
        wm = self.watermark
        alerts = self.stage.advance(wm) if wm > float("-inf") else []
        self._touched(alerts)
        return alerts

    def finish(self) -> list[dict[str, Any]]:
        alerts = self.stage.finish()
        self._touched(alerts)
        return alerts

    def _touched(self, alerts: list[dict[str, Any]]) -> None:
        # Keys whose state changed without an alert (a decision "out of coverage", pruning) too.
        take = getattr(self.stage, "take_touched", None)
        if take is not None:
            self.dirty.update(take())
        elif isinstance(self.stage, MissionLedger):  # a handful of categories: evaluations changed them
            self.dirty.update(self.stage.categories())
        self.dirty.update(self._key_of(a) for a in alerts)

    def _apply(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        if self.kind == COVERAGE:
            cls = _COVERAGE_KINDS.get(kind)
            if cls is None:
                raise ValueError(f"unknown coverage record kind {kind!r}")
            st: Any = self.stage
            if kind == "heard" and "items" in doc:
                items = doc["items"]
                if not isinstance(items, list):
                    raise ValueError("heard items must be a list")
                st.heard_items(key, items)
                self.dirty.add(key)
                return
            rec: Any = cls.from_dict(doc)
            {"heard": st.heard, "dark_candidate": st.candidate, "reappearance": st.reappeared}[kind](key, rec)
        else:
            if kind != "mission":
                raise ValueError(f"unknown missions record kind {kind!r}")
            m = Mission.from_dict(doc)
            if m.category != key:
                raise ValueError(f"mission of category {m.category!r} under key {key!r}")
            st2: Any = self.stage
            st2.add(m)
        self.dirty.add(key)

    def _key_of(self, alert: dict[str, Any]) -> str:
        if self.kind == MISSIONS:
            return str(alert.get("category"))
        from streams.core.coverage import cell_of

        last = alert.get("last_seen") or {}
        return cell_of(float(last.get("lat", 0.0)), float(last.get("lon", 0.0)))

    # ---- state
    def restore(self, key: str, data: bytes | None) -> None:
        """Load a key's state from the table the first time this partition sees it."""
        if key in self.loaded:
            return
        self.loaded.add(key)
        if data:
            self.stage.import_state(key, bytes(data))

    def take_dirty(self) -> list[tuple[str, bytes | None]]:
        """(key, state or None) of every key changed since the last call, in key order."""
        keys = sorted(self.dirty)
        self.dirty.clear()
        return [(k, self.stage.export_state(k)) for k in keys]


def keys_of(records: Sequence[tuple[bytes | None, bytes]]) -> list[str]:
    """The distinct non-empty keys of a batch (what must be restored before it is applied)."""
    return sorted({k.decode(errors="replace") for k, _v in records if k})
