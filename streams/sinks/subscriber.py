"""The alert subscriber API: read skyfence alerts from the Redis Stream as a group member.

This module owns consuming ``<prefix>:alerts`` with a consumer group: a member first
re-reads what it was given but never acknowledged (so a crashed or stopped reader
resumes exactly where it stopped), then new alerts; it acknowledges an alert only after
the caller has handled it. Members of one group share the alerts; separate groups each
get every alert. ``skyfence alerts`` is a thin wrapper over this.

Example::

    async with AlertSubscriber(settings, group="newsroom", consumer="desk-1") as sub:
        async for alert_id, alert in sub.alerts(follow=True):
            print(alert["transition"], alert["icao24"], alert["description"])
            # acknowledged automatically when the loop body finishes (ack=True, the default)
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import orjson
import redis.asyncio as aioredis
import redis.exceptions

from streams.settings import Settings
from streams.sinks.redis_sink import redis_client

log = logging.getLogger(__name__)

# 2 s blocking read: short enough that Ctrl-C and --follow's shutdown feel immediate.
BLOCK_MS = 2000
# 100 per read: one round-trip per screenful of alerts.
READ_COUNT = 100


class AlertSubscriber:
    def __init__(
        self,
        settings: Settings,
        group: str = "skyfence-cli",
        consumer: str | None = None,
        client: aioredis.Redis | None = None,
        start: str = "0",
    ) -> None:
        self.settings = settings
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}"
        self.client = client or redis_client(settings)
        self._own_client = client is None
        # "0": a new group starts from the oldest alert still in the stream; "$": only new ones
        self.start = start
        self.stream = settings.redis_key("alerts")

    async def __aenter__(self) -> AlertSubscriber:
        await self.ensure_group()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._own_client:
            await self.client.aclose()

    async def ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(self.stream, self.group, id=self.start, mkstream=True)
        except redis.exceptions.ConnectionError as exc:  # includes refused logins and TLS failures
            from streams.security import check_redis, redis_unreachable

            check_redis(self.settings)  # refused login or TLS: one clear line naming the user, never the password
            raise redis_unreachable(self.settings, exc) from None
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, pending: bool, block_ms: int | None, after: str = "0") -> list[tuple[str, dict[str, Any]]]:
        """One read: our unacknowledged entries after ``after`` (``pending``) or new ones.

        An entry whose alert is not JSON (only the sink writes this stream, so another writer
        put it there) is logged with its id and settled, never handed out: left pending it
        would stop this member, and every restart, at the same entry."""
        cursor = after if pending else ">"
        resp = await self.client.xreadgroup(
            self.group, self.consumer, {self.stream: cursor}, count=READ_COUNT, block=block_ms
        )
        out: list[tuple[str, dict[str, Any]]] = []
        streams: list[Any] = list(resp or [])
        for _stream, entries in streams:
            for entry_id, fields in entries:
                eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                raw = fields.get(b"alert") if isinstance(fields, dict) else None
                if raw is None:
                    # a deleted/trimmed entry still pending: nothing to deliver, just settle it
                    await self.ack(eid)
                    continue
                try:
                    alert = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    log.error("alert stream %s entry %s is not an alert (%s); skipped and acknowledged",
                              self.stream, eid, exc)
                    await self.ack(eid)
                    continue
                out.append((eid, alert))
        return out

    async def ack(self, entry_id: str) -> None:
        await self.client.xack(self.stream, self.group, entry_id)

    async def alerts(self, follow: bool = False, ack: bool = True) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Pending first (all of them, a read at a time), then new; with ``follow`` keeps waiting.

        ``ack`` True acknowledges each alert when the loop body that received it finishes (an
        alert the body breaks out of, or raises in, is delivered again); False leaves that to the
        caller (:meth:`ack`)."""
        after = "0"
        while True:
            batch = await self.read(pending=True, block_ms=None, after=after)
            if not batch:
                break
            for eid, alert in batch:
                yield eid, alert
                if ack:
                    await self.ack(eid)
            after = batch[-1][0]  # the next read of the pending list starts after this one
        while True:
            batch = await self.read(pending=False, block_ms=BLOCK_MS if follow else None)
            if not batch:
                if follow:
                    continue
                return
            for eid, alert in batch:
                yield eid, alert
                if ack:
                    await self.ack(eid)
