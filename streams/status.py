"""``skyfence stack status``: what runs, which topics exist, how far consumers lag.

This module owns asking the broker (through aiokafka's admin and consumer clients)
for topics, partition counts, end offsets and each consumer group's committed
offsets, and printing that next to the local stack's processes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from streams.settings import Settings
from streams.stack import LocalStack


@dataclass
class TopicInfo:
    name: str
    partitions: int
    end_offsets: dict[int, int]


@dataclass
class GroupLag:
    group: str
    lag: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.lag.values())


async def broker_overview(settings: Settings, prefix: str | None = None) -> tuple[list[TopicInfo], list[GroupLag]]:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    from streams.kafka_io import all_metadata, client_kwargs

    kw = client_kwargs(settings)
    admin = AIOKafkaAdminClient(**kw, request_timeout_ms=5000)
    await admin.start()
    consumer = AIOKafkaConsumer(**kw, enable_auto_commit=False, request_timeout_ms=5000)
    await consumer.start()
    try:
        pfx = settings.topic_prefix + "." if prefix is None else prefix
        # one full metadata fetch: partitions_for_topic knows nothing of topics we did not subscribe to
        cluster = await all_metadata(consumer)
        names = sorted(t for t in cluster.topics() if t.startswith(pfx) or t.startswith(settings.app_id))
        topics: list[TopicInfo] = []
        tps: list[Any] = []
        for name in names:
            parts = sorted(cluster.partitions_for_topic(name) or ())
            tps.extend(TopicPartition(name, p) for p in parts)
        ends = await consumer.end_offsets(tps) if tps else {}
        for name in names:
            per = {tp.partition: off for tp, off in ends.items() if tp.topic == name}
            topics.append(TopicInfo(name, len(per), per))
        groups: list[GroupLag] = []
        for group_id, _proto in await admin.list_consumer_groups():
            offsets = await admin.list_consumer_group_offsets(group_id)
            lag = GroupLag(group_id)
            for tp, meta in offsets.items():
                if tp in ends and meta.offset >= 0:
                    lag.lag[(tp.topic, tp.partition)] = max(0, ends[tp] - meta.offset)
            if lag.lag:
                groups.append(lag)
        return topics, groups
    finally:
        await consumer.stop()
        await admin.close()


class GroupLagProbe:
    """Committed-offset lag of one consumer group, per partition, with long-lived clients."""

    def __init__(self, settings: Settings, group: str) -> None:
        self.settings = settings
        self.group = group
        self._admin: Any = None
        self._consumer: Any = None

    async def lag(self) -> dict[tuple[str, int], int]:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        from streams.kafka_io import client_kwargs

        if self._admin is None:
            kw = client_kwargs(self.settings)
            self._admin = AIOKafkaAdminClient(**kw, request_timeout_ms=5000)
            await self._admin.start()
            self._consumer = AIOKafkaConsumer(**kw, enable_auto_commit=False, request_timeout_ms=5000)
            await self._consumer.start()
        offsets = await self._admin.list_consumer_group_offsets(self.group)
        tps = [tp for tp, meta in offsets.items() if meta.offset >= 0]
        ends = await self._consumer.end_offsets(tps) if tps else {}
        return {(tp.topic, tp.partition): max(0, ends[tp] - offsets[tp].offset) for tp in tps if tp in ends}

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()
        self._admin = self._consumer = None


def print_status(stack: LocalStack, settings: Settings) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    procs = Table(title="local stack")
    for col in ("service", "pid", "port", "answering", "log"):
        procs.add_column(col)
    st = stack.status()
    for name, proc in st.items():
        procs.add_row(name, str(proc["pid"]), str(proc["port"]), str(proc["answering"]), str(proc["log"]))
    console.print(procs)
    if not st["kafka"]["answering"] and stack.kafka.port != settings.kafka_port:
        return 1
    client_settings = stack.settings_for_clients() if st["kafka"]["answering"] else settings
    try:
        topics, groups = asyncio.run(broker_overview(client_settings))
    except Exception as exc:  # the broker may simply be down: say so, do not trace back
        console.print(f"[red]broker {client_settings.bootstrap} not reachable: {exc}[/red]")
        return 1
    t = Table(title=f"topics on {client_settings.bootstrap}")
    for col in ("topic", "partitions", "end offsets (sum)"):
        t.add_column(col)
    for info in topics:
        t.add_row(info.name, str(info.partitions), str(sum(info.end_offsets.values())))
    console.print(t)
    g = Table(title="consumer groups")
    for col in ("group", "total lag", "partitions"):
        g.add_column(col)
    for grp in groups:
        g.add_row(grp.group, str(grp.total), str(len(grp.lag)))
    console.print(g)
    return 0
