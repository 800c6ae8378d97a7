"""Kafka plumbing outside Faust: client settings, topic creation, producers, batch publishing
and reading by time.

This module owns the aiokafka clients used by ``ingest``, ``replay``, ``record``, ``report``,
``rewind``, the live map, ``stack status`` and the tests: their connection arguments (TLS/SASL,
without importing Faust), creating the declared topics with their partition counts, publishing
positions as per-partition batch records (see ``streams.topics`` for why batches), a topic's
partitions for a consumer that assigns, the offsets at a moment in time, the admin reads
behind ``skyfence stack status`` and the worker's lag metric (topics, end offsets, group lag),
setting a group's offsets for ``skyfence rewind``, and the one reader
of whole topics outside Faust (:class:`TopicReader`: every partition, no consumer group, from
a time or from some records before the end, up to a time, the end seen at start, an idle
limit or a stop event), which ``report``, ``record`` and the live map share; ``rewind`` uses
its first step (:func:`find_partitions`, :meth:`From.offsets`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord, TopicPartition

from streams.codec import encode_position_batch, raw_record
from streams.messages import DeadLetter, Position
from streams.settings import Settings, SettingsError
from streams.topics import ALL_TOPICS, CHANGELOGS, DEADLETTER, POSITIONS, RAW, ChangelogSpec, TopicSpec, partition_for

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


# --- reading whole topics ---------------------------------------------------------------------
# 500 ms per poll: a reader notices its stop event, its idle limit and its end within half a
# second, while one with nothing to read wakes only twice a second.
POLL_MS = 500
# 5,000 records per poll at most: a poll's batch stays small enough for its caller to handle well
# within a second, so the stop/idle checks and ``record``'s progress line come round often while
# a backlog streams in.
MAX_RECORDS = 5000

Batch = dict[TopicPartition, list[ConsumerRecord]]
"""One poll of a :class:`TopicReader`: records by partition, in offset order; only partitions with records."""


async def find_partitions(consumer: Any, settings: Settings, topics: Sequence[str], *, missing_ok: bool = False,
                          hint: str = "") -> list[TopicPartition]:
    """Every partition of ``topics``, topic by topic in the order given, partitions in order.

    A topic that does not exist raises :class:`SettingsError` naming it and the broker (then
    ``hint``, e.g. ``"; is a worker running?"``), unless ``missing_ok``: then it is left out.
    """
    out: list[TopicPartition] = []
    for topic in topics:
        parts = await topic_partitions(consumer, topic)
        if not parts and not missing_ok:
            raise SettingsError(f"topic {topic} does not exist on {settings.bootstrap}{hint}")
        out.extend(TopicPartition(topic, p) for p in sorted(parts))
    return out


@dataclass(frozen=True, slots=True)
class From:
    """Where a :class:`TopicReader` starts in each partition: :meth:`time` or :meth:`end`."""

    t_from: float | None = None
    back: int | None = None

    @classmethod
    def time(cls, t_from: float | None) -> From:
        """At the first record at or after ``t_from`` (Kafka record timestamp, epoch seconds), at the
        end where none is that late; at the beginning when ``t_from`` is None (:func:`offsets_at`)."""
        return cls(t_from=t_from)

    @classmethod
    def end(cls, back: int = 0) -> From:
        """``back`` records before the end of each partition (from offset 0 where it ends earlier)."""
        if back < 0:
            raise ValueError(f"From.end(back={back}): back counts records before the end, so >= 0")
        return cls(back=back)

    async def offsets(self, consumer: Any, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The start offset of each of ``tps``, looked up with ``consumer`` (any started consumer)."""
        if not tps:
            return {}
        if self.back is None:
            return await offsets_at(consumer, tps, self.t_from)
        ends = await consumer.end_offsets(list(tps))
        return {tp: max(0, ends[tp] - self.back) for tp in tps}


class TopicReader:
    """Reads every partition of some topics without a consumer group (so it never takes
    partitions from the pipeline, and commits nothing), from ``start``, in batches per poll::

        async with TopicReader(settings, [topic], start=From.time(t_from), until=t_to, stop_at_end=True) as reader:
            async for batch in reader:          # Batch: {TopicPartition: [ConsumerRecord, ...]}
                for tp, records in batch.items():
                    ...

    Only records the caller wants are yielded; iteration ends when the first of these holds:

    - ``stop_at_end``: every partition is done. A partition is done once a record at or past
      the end offset seen at start, or stamped after ``until``, was consumed (a record past
      ``until`` ends its partition here: it is not yielded, nor is anything after it);
    - ``idle_s``: that many seconds passed without a poll that yielded a record or ended a
      partition;
    - ``stop``: the event is set (checked before each poll, so within :data:`POLL_MS`).

    With none of them it reads on for ever (``record --follow``, the live map). Without
    ``stop_at_end``, records stamped after ``until`` are skipped and reading goes on.

    Entering raises :class:`SettingsError` for a topic that does not exist (``missing_hint``
    appended to the message), unless ``missing_ok``: then the topic is left out, and with no
    partitions at all (:attr:`partitions` empty) iteration yields nothing.
    """

    def __init__(self, settings: Settings, topics: Sequence[str], *, start: From, until: float | None = None,
                 stop_at_end: bool = False, idle_s: float | None = None, stop: asyncio.Event | None = None,
                 missing_ok: bool = False, missing_hint: str = "") -> None:
        self.settings = settings
        self.topics = list(topics)
        self.start = start
        self.until = until
        self.stop_at_end = stop_at_end
        self.idle_s = idle_s
        self.stop = stop
        self.missing_ok = missing_ok
        self.missing_hint = missing_hint
        self.partitions: list[TopicPartition] = []
        self.start_offsets: dict[TopicPartition, int] = {}
        # with stop_at_end: the end offsets seen at start, before the start offsets are looked up
        self.end_offsets: dict[TopicPartition, int] = {}
        self._consumer: Any = None
        self._done: set[TopicPartition] = set()

    @property
    def finished(self) -> bool:
        """True once, with ``stop_at_end``, every partition is done."""
        return self.stop_at_end and len(self._done) >= len(self.partitions)

    async def __aenter__(self) -> TopicReader:
        # auto_offset_reset="earliest": a start offset the broker no longer holds (retention
        # deleted it after the lookup, or From.end reached back past the log start) resumes at
        # the oldest record still there, never at the end (aiokafka's default), which would
        # silently skip everything the reader was asked for.
        consumer = AIOKafkaConsumer(**client_kwargs(self.settings), group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        try:
            await consumer.start()
            self.partitions = await find_partitions(consumer, self.settings, self.topics,
                                                    missing_ok=self.missing_ok, hint=self.missing_hint)
            if self.partitions:
                consumer.assign(self.partitions)
                if self.stop_at_end:
                    self.end_offsets = dict(await consumer.end_offsets(self.partitions))
                self.start_offsets = await self.start.offsets(consumer, self.partitions)
                for tp in self.partitions:
                    consumer.seek(tp, self.start_offsets[tp])
        except BaseException:
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise
        self._consumer = consumer
        if self.stop_at_end:
            self._done = {tp for tp in self.partitions if self.start_offsets[tp] >= self.end_offsets[tp]}
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await consumer.stop()
            except Exception as close_exc:  # what was read stands; a failed close only leaks a socket
                log.debug("closing a topic reader: %r", close_exc)

    def __aiter__(self) -> AsyncIterator[Batch]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[Batch]:
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("iterate a TopicReader inside its `async with`")
        if not self.partitions:
            return
        idle_since = time.monotonic()
        while not self.finished:
            if self.stop is not None and self.stop.is_set():
                return
            if self.idle_s is not None and time.monotonic() - idle_since >= self.idle_s:
                return
            batch, progressed = self._take(await consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_RECORDS))
            if batch:
                yield batch
            if progressed:  # after the caller handled the batch: its own time never counts as idle
                idle_since = time.monotonic()
            await asyncio.sleep(0)

    def _take(self, fetched: Batch) -> tuple[Batch, bool]:
        """The records of one poll to yield, and whether the poll yielded a record or ended a partition."""
        out: Batch = {}
        progressed = False
        until_ms = None if self.until is None else self.until * 1000
        for tp, records in fetched.items():
            if tp in self._done:
                continue
            # done per partition once a record past ``until`` or the end offset seen at start was
            # consumed (not by position(): the fetcher advances it as soon as records are prefetched)
            end = self.end_offsets.get(tp) if self.stop_at_end else None
            keep: list[ConsumerRecord] = []
            for r in records:
                past_until = until_ms is not None and r.timestamp > until_ms
                if end is not None and (past_until or r.offset >= end):
                    self._done.add(tp)
                    progressed = True
                    break
                if past_until:
                    continue
                keep.append(r)
                if end is not None and r.offset + 1 >= end:
                    self._done.add(tp)
                    break
            if keep:
                out[tp] = keep
                progressed = True
        return out, progressed


def json_documents(records: Iterable[ConsumerRecord]) -> Iterator[dict[str, Any]]:
    """The JSON object in each record's value, in order. Records that are not a JSON object
    (bad JSON, no value, an array) are skipped: the pipeline dead-letters bad records, and
    readers of its topics (report, live map) show only good ones."""
    for r in records:
        try:
            doc = orjson.loads(r.value)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            yield doc

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
        # the topics, then the state tables' changelogs (see topics.ChangelogSpec)
        specs: tuple[TopicSpec | ChangelogSpec, ...] = (*ALL_TOPICS, *CHANGELOGS)
        wanted = [
            NewTopic(spec.name(settings), spec.partitions(settings), settings.replication_factor,
                     topic_configs={"cleanup.policy": "compact"} if spec.compacted else None)
            for spec in specs
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


# --- admin: what the broker holds, consumer lag, rewinding a group ------------------------------
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
    """Topics (of this deployment's prefix or app id) with partition counts and end offsets, and
    every consumer group's committed-offset lag on them (``skyfence stack status``)."""
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


# ``skyfence rewind``: replay from Kafka itself, by time.
#
# rewind_group sets a consumer group's committed offsets on the positions topic
# to the first record at or after a time (Kafka's offsets-for-times), so a worker started
# with that group (``SKYFENCE_APP_ID``) re-runs the pipeline from then: "re-run the
# afternoon". The group must not have live members; a fresh app id is the clean way,
# because the worker's per-aircraft state table (its changelog is named after the app id)
# then starts empty instead of carrying state from the future. Alert ids are derived
# from event time, so alerts the re-run reproduces de-duplicate in Redis.
#
# The group's offsets on the alerts topic are set to its end: the Redis sink agent (same
# group) has already delivered the alerts of before, and only the re-run's alerts should
# flow to Redis from the rewound group.
async def rewind_group(settings: Settings, group: str, t_from: float) -> dict[int, int]:
    """Commit, for ``group``, the offset of the first positions record at or after ``t_from`` (Kafka
    record timestamp, i.e. ingest time) on every partition (the end offset where nothing is that
    late), and the end offsets of the alerts topic. Returns positions partition -> offset."""
    from aiokafka.errors import KafkaError
    from aiokafka.structs import OffsetAndMetadata

    from streams.topics import ALERTS

    # the start-offset step of kafka_io.TopicReader, on a probe consumer that reads no records
    probe = AIOKafkaConsumer(**client_kwargs(settings), group_id=None, enable_auto_commit=False)
    await probe.start()
    try:
        tps = await find_partitions(probe, settings, [POSITIONS.name(settings)])
        offsets = await From.time(t_from).offsets(probe, tps)
        alert_tps = await find_partitions(probe, settings, [ALERTS.name(settings)], missing_ok=True)
        alert_ends = await From.end().offsets(probe, alert_tps)
    finally:
        await probe.stop()
    # Committing with an assigned (not subscribed) consumer of the group writes the offsets
    # without joining the group, so it cannot steal partitions; the broker refuses it while the
    # group has live members (generation mismatch), which is the safety check we want.
    committer = AIOKafkaConsumer(**client_kwargs(settings), group_id=group, enable_auto_commit=False)
    await committer.start()
    try:
        committer.assign([*tps, *alert_tps])
        commit: dict[Any, OffsetAndMetadata] = {tp: OffsetAndMetadata(off, "")
                                                for tp, off in [*offsets.items(), *alert_ends.items()]}
        try:
            await committer.commit(commit)
        except KafkaError as exc:
            raise SettingsError(
                f"could not set offsets of consumer group {group!r} ({type(exc).__name__}); stop its workers "
                "first, or rewind a fresh group with --app-id"
            ) from None
    finally:
        await committer.stop()
    return {tp.partition: off for tp, off in offsets.items()}
