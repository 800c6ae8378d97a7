"""Faust agents of the keyed stages: coverage (gone dark) and the mission ledger.

This module owns moving the coverage and missions topics through
:class:`streams.core.stages.StagePartition` objects, one per assigned partition, with
their state in a changelog-backed table keyed like the topic (cell or category). The
agent body only groups a batch by partition, restores keys the first time it meets
them, hands the records to core, sends the alerts that come back, and writes the state
of the keys that changed: alerts first, acknowledged by Kafka, then state, so a crash
re-creates alerts (deterministic ids; the Redis sink de-duplicates) rather than losing them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson

from streams.messages import DeadLetter
from streams.settings import Settings

log = logging.getLogger(__name__)

# 200 records or 50 ms: the stages' traffic is small (one heard record per aircraft a minute
# near Mexico) and their alerts are minutes-scale facts; 50 ms keeps them cheap and prompt.
STAGE_BATCH = 200
STAGE_WITHIN_S = 0.05


def attach_stage_agents(app: faust.App, topics: Any, settings: Settings, engine: Any,
                        dead_letter_sender: Callable[[DeadLetter], Awaitable[None]], metrics: Any = None) -> None:
    from streams.agents import ROCKSDB_OPTIONS, events
    from streams.agents.flush import partition_scope
    from streams.core.stages import COVERAGE, MISSIONS, StagePartition, keys_of
    from streams.topics import COVERAGE_STATE, MISSIONS_STATE, ChangelogSpec, partition_for
    from streams.wiring import coverage_stage, mission_ledger

    def attach(kind: str, topic: Any, make: Callable[[], Any], changelog: ChangelogSpec) -> None:
        # Written under an event of the key's own partition (records are keyed like the table),
        # so Faust files each changelog record under the current event's partition: no
        # partitioner lookup, which fails while the producer has no metadata for the changelog.
        # The aircraft table's small RocksDB buffers (see ROCKSDB_OPTIONS): these hold even less.
        table = app.Table(changelog.table, default=None, partitions=settings.partitions, key_type=bytes,
                          value_type=bytes,
                          options=dict(ROCKSDB_OPTIONS) if settings.store.startswith("rocksdb://") else None)
        parts: dict[int, StagePartition] = {}
        topic_name = topic.get_topic_name()

        @app.on_partitions_revoked.connect  # type: ignore[arg-type]
        async def on_revoked(sender: Any, revoked: Any = None, **kwargs: Any) -> None:
            for tp in revoked or ():
                if tp.topic == topic_name:
                    parts.pop(tp.partition, None)

        def partition(p: int) -> StagePartition:
            sp = parts.get(p)
            if sp is None:
                sp = parts[p] = StagePartition(kind, make(), settings.partitions)
                # Every key of this partition the table holds: a candidate waiting for its
                # watermark must be decided by the new owner even if no record of its cell follows.
                store: Any = table.data
                for key in list(store.keys()):
                    k = bytes(key).decode(errors="replace")
                    if partition_for(k, settings.partitions) == p:
                        sp.restore(k, store.get(key))
            return sp

        async def run(stream: Any) -> None:
            async for evs in events(stream, STAGE_BATCH, STAGE_WITHIN_S):
                by_p: dict[int, list[Any]] = {}
                for ev in evs:
                    by_p.setdefault(ev.message.partition, []).append(ev)
                scope = partition_scope(evs)
                for p, pevs in sorted(by_p.items()):
                    sp = partition(p)
                    records = [(ev.key, ev.value) for ev in pevs]
                    store: Any = table.data
                    for k in keys_of(records):
                        if k != "~watermark":
                            sp.restore(k, store.get(k.encode()))
                    res = sp.handle(records)
                    for reason, detail, raw in res.bad:
                        await dead_letter_sender(DeadLetter(reason, kind, raw, source=f"{kind}-topic", detail=detail))
                    sent = [await topics.alerts.send(key=str(a.get("icao24", "")).encode(), value=orjson.dumps(a))
                            for a in res.alerts]
                    for fut in sent:
                        await fut
                    for a in res.alerts:
                        log.info("%s alert %s %s", kind, a.get("alert_id"), a.get("headline"))
                        if metrics is not None:
                            metrics.alerts.labels(str(a.get("transition")), str(a.get("severity"))).inc()
                    writes = sp.take_dirty()
                    ctx = scope(p)
                    if writes and ctx is not None:
                        with ctx:
                            for k, v in writes:
                                if v is None:
                                    if k.encode() in table:
                                        del table[k.encode()]
                                else:
                                    table[k.encode()] = v

        app.agent(topic, name=kind)(run)

    attach(COVERAGE, topics.coverage, lambda: coverage_stage(engine), COVERAGE_STATE)
    attach(MISSIONS, topics.missions, lambda: mission_ledger(settings), MISSIONS_STATE)
