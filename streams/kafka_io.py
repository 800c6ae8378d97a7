"""Kafka plumbing outside Faust: client settings, topic creation, producers, batch publishing
and reading by time.

This module owns the aiokafka clients used by ``ingest``, ``replay``, ``record``, ``report``,
``rewind``, the live map, ``stack status`` and the tests: their connection arguments (TLS/SASL,
without importing Faust), creating the declared topics with their partition counts, publishing
positions as per-partition batch records (see ``streams.topics`` for why batches), a topic's
partitions for a consumer that assigns, and the offsets at a moment in time.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.codec import encode_position_batch, raw_record
from streams.records import DeadLetter, Position
from streams.settings import Settings
from streams.topics import ALL_TOPICS, DEADLETTER, POSITIONS, RAW, partition_for

log = logging.getLogger(__name__)


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for an SSL or SASL_SSL broker (the CA file if one is set), else None."""
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        return ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)
    return None


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """aiokafka connection arguments (TLS/SASL) from the one settings object. Plain aiokafka
    clients (readers, admin, producers) use these; Faust gets the same through
    ``streams.app.broker_credentials``, which builds on :func:`ssl_context`."""
    kwargs: dict[str, Any] = {"bootstrap_servers": settings.bootstrap}
    proto = settings.kafka_security_protocol
    if proto != "PLAINTEXT":
        kwargs["security_protocol"] = proto
    ctx = ssl_context(settings)
    if ctx is not None:
        kwargs["ssl_context"] = ctx
    if proto.startswith("SASL"):
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = settings.kafka_sasl_password.reveal()
    return kwargs


async def all_metadata(consumer: Any) -> Any:
    """The cluster metadata of every topic. aiokafka's public ``partitions_for_topic`` and
    ``topics`` only know topics the consumer subscribed to, and an ``assign``ing consumer has
    none; the one full fetch is private (``_client.fetch_all_metadata``), so it is named here,
    once, for every caller."""
    return await consumer._client.fetch_all_metadata()


async def topic_partitions(consumer: Any, topic: str) -> set[int]:
    """Partition ids of ``topic`` for a consumer that has not subscribed to it (empty if the
    topic does not exist)."""
    parts = consumer.partitions_for_topic(topic)
    if parts:
        return set(parts)
    cluster = await all_metadata(consumer)
    return set(cluster.partitions_for_topic(topic) or ())


async def offsets_at(consumer: Any, tps: Sequence[Any], t_from: float | None) -> dict[Any, int]:
    """Per partition, the offset of the first record at or after ``t_from`` (Kafka record
    timestamp, epoch seconds), the end offset where nothing is that late; the beginning
    offsets when ``t_from`` is None. What ``report``, ``record`` and ``rewind`` start from."""
    if t_from is None:
        return dict(await consumer.beginning_offsets(list(tps)))
    found = await consumer.offsets_for_times({tp: int(t_from * 1000) for tp in tps})
    ends = await consumer.end_offsets(list(tps))
    return {tp: (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in tps}

# 2,000 positions per record: ~300 KB of JSON, well under the 1 MiB record limit, and
# large enough that per-record overhead in Faust is amortised 2,000-fold.
MAX_BATCH_POSITIONS = 2000


async def ensure_topics(settings: Settings) -> list[str]:
    """Create every declared topic that is missing; returns the names created.

    A broker that refuses our SASL credentials or TLS raises ``ConnectionRefusedByPeer``
    naming what failed (aiokafka alone only says it could not bootstrap).
    """
    from streams.security import check_kafka

    if settings.kafka_security_protocol != "PLAINTEXT":
        await check_kafka(settings)  # before aiokafka, which would log the refusal as a bare error
    admin = AIOKafkaAdminClient(**client_kwargs(settings), request_timeout_ms=10000)
    try:
        await admin.start()
    except Exception:
        await check_kafka(settings)  # a SASL/TLS-only broker refusing a PLAINTEXT client
        raise
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(spec.name(settings), spec.partitions(settings), settings.replication_factor)
            for spec in ALL_TOPICS
            if spec.name(settings) not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another process raced us to it: the topic is there, which is all we need
        return [t.name for t in wanted]
    finally:
        await admin.close()


def make_producer(settings: Settings, **extra: Any) -> AIOKafkaProducer:
    kwargs: dict[str, Any] = {
        **client_kwargs(settings),
        # acks=all + idempotence: a broker restart mid-replay neither loses nor duplicates records.
        "acks": "all",
        "enable_idempotence": True,
        "max_request_size": settings.max_message_bytes * 2,
        # 5 ms linger: batches many small records per request at negligible latency.
        "linger_ms": 5,
        # 120 s (Java's delivery.timeout.ms default; aiokafka's is 40 s): a send blocks while
        # the broker is away and a batch expires after this long, so a replay or a live feed
        # rides out a broker restart of up to two minutes instead of failing with
        # KafkaTimeoutError (a KRaft broker restarts in ~15 s here when the host is quiet).
        "request_timeout_ms": 120_000,
    }
    kwargs.update(extra)
    return AIOKafkaProducer(**kwargs)


@dataclass(frozen=True, slots=True)
class BatchDelivery:
    """One record batch handed to the producer: resolves to the metadata of its first record."""

    partition: int
    count: int
    future: asyncio.Future[Any]

    def delivered(self) -> bool:
        f = self.future
        return f.done() and not f.cancelled() and f.exception() is None

    def last_offset(self) -> int:
        """Offset of the batch's last record (only once delivered)."""
        return int(self.future.result().offset) + self.count - 1


async def send_batches(producer: AIOKafkaProducer, topic: str,
                       records: Iterable[tuple[int, bytes | None, bytes | None]]) -> list[BatchDelivery]:
    """Send (partition, key, value) records as one record batch per partition (more when full).

    Each record stays its own Kafka record with its own key; only the producer's per-record
    bookkeeping is shared: ``send()`` costs ~50-100 us a record here (a future, accumulator
    checks, Faust's wrapper), a batch append ~2 us. Records of one partition keep their order.
    """
    by_partition: dict[int, list[tuple[bytes | None, bytes | None]]] = defaultdict(list)
    for partition, key, value in records:
        by_partition[partition].append((key, value))
    out: list[BatchDelivery] = []
    for partition, items in sorted(by_partition.items()):
        batch = producer.create_batch()
        n = 0
        for key, value in items:
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start another
                out.append(BatchDelivery(partition, n, await producer.send_batch(batch, topic, partition=partition)))
                batch = producer.create_batch()
                n = 0
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"a record of {len(value or b'')} bytes does not fit in a {topic} batch")
            n += 1
        if n:
            out.append(BatchDelivery(partition, n, await producer.send_batch(batch, topic, partition=partition)))
    return out


def group_by_partition(positions: Iterable[Position], partitions: int) -> dict[int, list[Position]]:
    groups: dict[int, list[Position]] = defaultdict(list)
    for p in positions:
        groups[partition_for(p.icao24, partitions)].append(p)
    return groups


def log_dead_letter(d: DeadLetter) -> None:
    """One log line per dead letter, with its id, so an operator can find the record."""
    log.info(
        "dead letter %s %s/%s from %s: %s", d.id, d.input_format, d.reason, d.source or "-", d.detail[:200],
        extra={"dead_letter_id": d.id, "reason": d.reason, "input_format": d.input_format},
    )


class Publisher:
    """Publishes parsed positions, dead letters and (optionally) raw chunks."""

    def __init__(self, settings: Settings, producer: AIOKafkaProducer) -> None:
        self.settings = settings
        self.producer = producer
        self.positions_topic = POSITIONS.name(settings)
        self.deadletter_topic = DEADLETTER.name(settings)
        self.raw_topic = RAW.name(settings)
        self.sent_positions = 0
        self.sent_dead = 0
        # Delivery futures not yet checked: flush() raises if any record was not delivered,
        # so a broker that stays away longer than the producer's timeouts is an error, not a loss.
        self._pending: list[asyncio.Future[Any]] = []

    def _track(self, fut: asyncio.Future[Any]) -> None:
        self._pending.append(fut)
        if len(self._pending) > 10_000:  # bound memory: keep only what is still in flight
            self._raise_failed([f for f in self._pending if f.done()])
            self._pending = [f for f in self._pending if not f.done()]

    @staticmethod
    def _raise_failed(done: list[asyncio.Future[Any]]) -> None:
        for f in done:
            exc = f.exception()
            if exc is not None:
                raise RuntimeError(f"a record could not be delivered to Kafka: {exc!r}") from exc

    async def positions(self, positions: Sequence[Position], timestamp_ms: int | None = None) -> None:
        """Send positions as batch records, one or more per partition, in event order per aircraft."""
        for partition, group in sorted(group_by_partition(positions, self.settings.partitions).items()):
            for i in range(0, len(group), MAX_BATCH_POSITIONS):
                chunk = group[i : i + MAX_BATCH_POSITIONS]
                key = chunk[0].icao24.encode() if len({p.icao24 for p in chunk}) == 1 else None
                fut = await self.producer.send(
                    self.positions_topic,
                    encode_position_batch(chunk),
                    key=key,
                    partition=partition,
                    timestamp_ms=timestamp_ms,
                )
                self._track(fut)
                self.sent_positions += len(chunk)

    async def dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        for d in dead:
            value = orjson.dumps(d.to_dict())
            fut = await self.producer.send(self.deadletter_topic, value, key=d.input_format.encode())
            self._track(fut)
            self.sent_dead += 1
            log_dead_letter(d)

    async def raw(self, chunk: bytes, *, fmt: str, receiver: str, source: str, received_at: float) -> None:
        doc = raw_record(chunk, fmt=fmt, receiver=receiver, source=source, received_at=received_at)
        self._track(await self.producer.send(self.raw_topic, doc, key=receiver.encode()))

    async def flush(self) -> None:
        await self.producer.flush()
        if self._pending:
            await asyncio.wait(self._pending)
            done, self._pending = self._pending, []
            self._raise_failed(done)
