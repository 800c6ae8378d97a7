"""Agent adapter: the alerts topic into the notification webhooks (streams/sinks/notify.py).

This module owns reading the alerts topic for each webhook and committing what was delivered.

Why not a Faust agent like the Redis sink: Faust agents subscribed to one topic share one
consumer, and a stalled agent's full buffer pauses the partition for every agent on it. A
webhook that hangs or answers 500 for an hour would then hold the Redis sink and every other
webhook back. So each webhook reads the alerts topic with its own plain aiokafka consumer, in its
own consumer group ``<app_id>-notify-<name>`` (connection settings from
``streams.kafka_io.client_kwargs``: the same TLS/SASL as everything else), started as a task of
the worker app. A slow or broken endpoint holds back only its own group; the Redis sink and
the other webhooks read on. Workers share each webhook's partitions as they share the app's.

At least once, idempotent. Auto-commit is off. A poll's records are handled in offset order per
partition, one at a time, and an alert's offset is committed only once it was delivered (2xx),
refused and dead-lettered (the dead letter acknowledged by the broker first), or is not meant
for this webhook. While an alert is retried (5xx, 429, timeout; streams.sinks.notify.decide)
nothing after it is committed, so a worker that dies re-sends it, under the same
``Idempotency-Key`` (its event_id), rather than losing it. Every partition is paused while a
poll's records are handled and the consumer keeps polling, so the group keeps the member however
long an endpoint is away (Kafka's max.poll.interval counts polls, not deliveries).

Rebalance: the partitions being revoked get up to :data:`REVOKE_GRACE_S` for the alert in hand
to finish; then what was handled is committed and the rest of the poll is dropped, to be
fetched again by whoever owns the partition next (the alert in hand may reach the endpoint twice,
with one key). Shutdown: the task is cancelled, an alert in hand stays uncommitted (sent again
by the next owner), and the consumer leaves its group at once so the partitions move promptly.

A webhook new to the topic (no committed offset) starts at the alerts of its last ``backfill_s``.
A record that is not an alert is skipped with a warning (the Redis sink dead-letters it once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import faust
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition

from streams.agents.sink import decode_alerts
from streams.kafka_io import client_kwargs
from streams.messages import DeadLetter
from streams.settings import Settings
from streams.sinks.notify import Webhook, WebhookSender, event_key, map_base, wanted, webhooks_of
from streams.topics import ALERTS

if TYPE_CHECKING:
    from streams.agents import DeadLetterSender

log = logging.getLogger(__name__)

DeadLetterFn = Callable[[DeadLetter], Awaitable[None]]

# 500 ms per poll: an alert reaches its webhooks within half a second, and an idle webhook's
# consumer asks the broker twice a second.
POLL_MS = 500
# 100 alerts per poll: alerts are rare and small; a small batch keeps a rebalance's wait short.
MAX_RECORDS = 100
# 1 s between the polls that keep a webhook's group membership while an alert is retried.
KEEPALIVE_S = 1.0
# 5 s for the alert in hand to finish when its partition is revoked: a healthy endpoint
# answers well within it; a hung one is not worth holding the whole group's rebalance for.
REVOKE_GRACE_S = 5.0
# 1 s doubling to 30 s between rebuilding a webhook's consumer after an error (broker away).
RESTART_FIRST_S = 1.0
RESTART_MAX_S = 30.0


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, owner: WebhookConsumer, consumer: AIOKafkaConsumer) -> None:
        self.owner = owner
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.owner.on_revoked(self.consumer, set(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.owner.on_assigned(self.consumer, set(assigned))


class WebhookConsumer:
    """One webhook's consumer group over the alerts topic (see the module docstring)."""

    def __init__(self, settings: Settings, hook: Webhook, dead_letter: DeadLetterFn) -> None:
        self.settings = settings
        self.hook = hook
        self.dead_letter = dead_letter
        self.topic = ALERTS.name(settings)
        self.group_id = f"{settings.app_id}-notify-{hook.name}"
        self.sender = WebhookSender(hook, map_base(settings))
        self.delivered = 0
        self.refused = 0
        self.skipped = 0
        self._job: asyncio.Task[None] | None = None
        self._batch: dict[TopicPartition, list[ConsumerRecord]] = {}
        self._next: dict[TopicPartition, int] = {}  # per partition of the poll in hand: next offset to handle
        self._committed: dict[TopicPartition, int] = {}
        self._revoking: set[TopicPartition] = set()

    async def run(self) -> None:
        """Consume until cancelled; a consumer that fails is rebuilt, resuming at the committed offsets."""
        delay = RESTART_FIRST_S
        try:
            while True:
                consumer = AIOKafkaConsumer(**client_kwargs(self.settings), group_id=self.group_id,
                                            client_id=self.group_id, enable_auto_commit=False,
                                            auto_offset_reset="earliest",
                                            session_timeout_ms=int(self.settings.session_timeout_s * 1000),
                                            heartbeat_interval_ms=int(self.settings.heartbeat_interval_s * 1000))
                try:
                    consumer.subscribe([self.topic], listener=_Rebalance(self, consumer))
                    await consumer.start()
                    log.info("notify %s: reading %s as consumer group %s", self.hook.shown, self.topic, self.group_id)
                    await self._pump(consumer)
                except Exception as exc:  # the broker went away, a commit protocol error, ...
                    log.error("notify %s: %s; its consumer restarts in %.0f s", self.hook.shown,
                              self.sender.scrub(repr(exc))[:500], delay)
                finally:
                    await self._stop(consumer)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_MAX_S)
        finally:
            await self.sender.close()

    async def _stop(self, consumer: AIOKafkaConsumer) -> None:
        await self._drop_job()
        self._committed.clear()
        try:
            await consumer.stop()  # leaves the group: the partitions move to another worker at once
        except Exception as exc:  # what was committed stands; a failed close only leaks a socket
            log.debug("notify %s: closing its consumer: %r", self.hook.name, exc)

    async def _drop_job(self) -> None:
        job = self._job
        if job is not None and not job.done():
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)

    # -------------------------------------------------------------- the poll loop
    async def _pump(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_RECORDS)
            if not batch:
                continue
            self._batch = batch
            self._next = {tp: records[0].offset for tp, records in batch.items()}
            job = self._job = asyncio.create_task(self._handle_batch(consumer, batch))
            consumer.pause(*consumer.assignment())  # nothing new until this poll is handled
            try:
                while not job.done():
                    await asyncio.wait({job}, timeout=KEEPALIVE_S)
                    # A poll while paused returns nothing but keeps this member in its group.
                    for tp, records in (await consumer.getmany(timeout_ms=0)).items():
                        self._hold(consumer, tp, records[0].offset)  # assigned meanwhile, not yet paused
            finally:
                await self._drop_job()
                self._job = None
            assigned = consumer.assignment()
            for tp, nxt in self._next.items():
                if tp in assigned and nxt <= batch[tp][-1].offset:
                    self._hold(consumer, tp, nxt)  # left unhandled (a revocation cut the poll short): fetched again
            consumer.resume(*consumer.paused())
            self._batch, self._next = {}, {}
            failure = None if job.cancelled() else job.exception()
            if failure is not None:
                raise failure

    @staticmethod
    def _hold(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        """Read ``tp`` again from ``offset``, later (paused until the poll in hand is handled)."""
        try:
            consumer.seek(tp, offset)
            consumer.pause(tp)
        except IllegalStateError:  # moved away meanwhile: its owner starts at the committed offset
            pass

    async def _handle_batch(self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[ConsumerRecord]]
                            ) -> None:
        for tp in sorted(batch):
            for record in batch[tp]:
                if tp in self._revoking or tp not in consumer.assignment():
                    break  # revoked: its next owner resumes at the committed offset
                await self._handle(record)
                self._next[tp] = record.offset + 1
                await self._commit(consumer, {tp: record.offset + 1})

    async def _handle(self, record: ConsumerRecord) -> None:
        """Deliver one record's alert, or dead-letter its refusal; returns when either is done."""
        alerts, _dead, _index = decode_alerts([record.value or b""])  # a tombstone has no value
        if not alerts:
            self.skipped += 1
            log.warning("notify %s: %s[%d]@%d is not an alert; skipped (the Redis sink dead-letters it)",
                        self.hook.name, record.topic, record.partition, record.offset)
            return
        alert = alerts[0]
        if not wanted(self.hook, alert):
            self.skipped += 1
            return
        try:
            request = self.sender.render(alert, record.value)
        except Exception as exc:  # a document the formats cannot read: refused here, not a crash
            await self._refuse(record, alert, "notify_unrenderable", None, self.sender.scrub(repr(exc)), 0)
            return
        result = await self.sender.send(request)
        if result.delivered:
            self.delivered += 1
            log.info("notify %s: alert %s delivered (HTTP %s, %d attempt(s))", self.hook.name, request.key,
                     result.status, result.attempts)
            return
        await self._refuse(record, alert, "webhook_refused", result.status, result.response, result.attempts)

    async def _refuse(self, record: ConsumerRecord, alert: dict[str, Any], reason: str, status: int | None,
                      response: str, attempts: int) -> None:
        self.refused += 1
        said = f"answered HTTP {status}" if status is not None else "cannot be sent this alert"
        d = DeadLetter(
            reason, "alert", bytes(record.value), source=f"webhook:{self.hook.name}",
            detail=f"webhook {self.hook.name} ({self.hook.format}) {said}: {response[:300]}",
            event_time=alert.get("event_time") if isinstance(alert.get("event_time"), (int, float)) else None,
            extra={"webhook": self.hook.name, "format": self.hook.format, "status": status, "response": response,
                   "event_id": event_key(alert), "attempts": attempts},
        )
        await self.dead_letter(d)

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        todo = {tp: off for tp, off in offsets.items() if self._committed.get(tp, -1) < off}
        if not todo:
            return
        try:
            await consumer.commit(todo)
        except KafkaError as exc:  # a rebalance under way: on_revoked commits it, or the next owner re-sends
            log.warning("notify %s: commit %s: %r", self.hook.name, todo, exc)
            return
        self._committed.update(todo)

    # -------------------------------------------------------------- rebalances
    async def on_revoked(self, consumer: AIOKafkaConsumer, revoked: set[TopicPartition]) -> None:
        """Let the alert in hand finish (a little while), then commit what was handled."""
        self._revoking |= revoked
        job = self._job
        if job is not None and not job.done() and revoked & set(self._batch):
            await asyncio.wait({job}, timeout=REVOKE_GRACE_S)
            if not job.done():
                log.info("notify %s: partitions revoked while an alert was in hand; its next owner sends it",
                         self.hook.name)
                await self._drop_job()
        await self._commit(consumer, {tp: off for tp, off in self._next.items() if tp in revoked})
        for tp in revoked:
            self._committed.pop(tp, None)

    async def on_assigned(self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]) -> None:
        """Hold new partitions while a poll is in hand; start a new webhook ``backfill_s`` back."""
        self._revoking -= assigned
        if self._job is not None and not self._job.done():
            consumer.pause(*assigned)
        fresh = [tp for tp in sorted(assigned) if await consumer.committed(tp) is None]
        if not fresh:
            return
        # The ends first: a record written after this lookup is at or past them, so it is read even
        # when the time lookup (which may run after it arrived) found nothing.
        ends = await consumer.end_offsets(fresh)
        since_ms = int((time.time() - self.hook.backfill_s) * 1000)
        found = await consumer.offsets_for_times({tp: max(0, since_ms) for tp in fresh})
        for tp in fresh:
            at = found.get(tp)
            consumer.seek(tp, at.offset if at is not None else ends[tp])


def attach_notifications(app: faust.App, settings: Settings, dead_letter: DeadLetterSender) -> None:
    """One consumer task per webhook of ``SKYFENCE_WEBHOOKS`` (none: nothing). A bad spec raises
    ``WebhookError`` (a SettingsError: one line, exit code 2) before the worker starts."""
    hooks = webhooks_of(settings)
    if not hooks:
        return

    async def send_dead_letter(d: DeadLetter) -> None:
        await dead_letter.send(d)
        await app.producer.flush()  # acknowledged by the broker before the alert's offset is committed

    @app.task
    async def notify() -> None:
        # their secrets are scrubbed from every log line by the worker's logging (logs.secrets_of)
        consumers = [WebhookConsumer(settings, hook, send_dead_letter) for hook in hooks]
        await asyncio.gather(*(c.run() for c in consumers))

