"""The Redis sink: alerts from Kafka to the people and programs subscribed in Redis.

This module owns how an alert lands in Redis, in one atomic Lua script per alert:
- a dedup key ``<prefix>:seen:<identity>`` (with a TTL) makes every write idempotent: an
  alert replayed, re-delivered after a crash, or read twice from Kafka adds nothing the
  second time. The identity is the alert's ``event_id`` (``alert_id:seq``, one message of
  one episode), and the key holds the digest of the content first written under it, so
  a re-sent alert whose content changed is caught as a *conflict*: counted, logged with
  both digests, and not published a second time (subscribers already acted on the first);
- XADD to the capped stream ``<prefix>:alerts`` for consumer groups;
- PUBLISH on ``<prefix>:alerts`` (all), ``<prefix>:alerts:severity:<sev>`` and
  ``<prefix>:alerts:zone:<zone>``;
- HSET of the aircraft's latest zone alert (alert.v1) in ``<prefix>:aircraft`` (field = icao24);
- PUBLISH on ``<prefix>:channel:<name>`` for every channel the user's alert rules sent it to
  (the alert's ``channels``, streams.core.rules).

Pattern (pattern.v1), gone-dark (dark.v1) and activity (activity.v1) alerts travel the same
way, on their own zone channels (``pattern``, ``dark``, ``activity``).

An alert without an ``event_id`` (only hand-made ones) is identified by its content digest.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
import redis.asyncio as aioredis
import redis.exceptions

from streams.settings import Settings

log = logging.getLogger(__name__)

# 7 days: longer than any replay an analyst re-runs, short enough to bound Redis memory.
SEEN_TTL_S = 7 * 24 * 3600

# Returns 1 when written, 0 for a re-delivery of the same content, or the digest first
# written under this identity when the content differs (a conflict).
_WRITE_ALERT = """
local prev = redis.call('GET', KEYS[1])
if prev then
  if prev == ARGV[6] then return 0 end
  return prev
end
redis.call('SET', KEYS[1], ARGV[6], 'EX', ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'alert', ARGV[3], 'alert_id', ARGV[4])
redis.call('PUBLISH', KEYS[3], ARGV[3])
redis.call('PUBLISH', KEYS[4], ARGV[3])
redis.call('PUBLISH', KEYS[5], ARGV[3])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[6], ARGV[5], ARGV[3])
end
for i = 7, #KEYS do
  redis.call('PUBLISH', KEYS[i], ARGV[3])
end
return 1
"""


# Back-off while Redis is away: first retry soon, then at most every 5 s so a returning
# Redis is noticed quickly without a tight loop.
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0


def alert_digest(alert: Mapping[str, Any]) -> str:
    """Content of one alert message: sha1 of its canonical JSON."""
    return hashlib.sha1(orjson.dumps(alert, option=orjson.OPT_SORT_KEYS)).hexdigest()


def alert_identity(alert: Mapping[str, Any], digest: str) -> str:
    """Which message this is: ``event_id`` (alert_id:seq), else alert_id and seq, else its content."""
    if alert.get("event_id"):
        return str(alert["event_id"])
    if alert.get("alert_id") is not None and alert.get("seq") is not None:
        return f"{alert['alert_id']}:{alert['seq']}"
    return digest


def redis_client(settings: Settings) -> aioredis.Redis:
    kwargs: dict[str, Any] = {}
    if settings.redis_username:
        kwargs["username"] = settings.redis_username
    if settings.redis_password:
        kwargs["password"] = settings.redis_password.reveal()
    return aioredis.Redis.from_url(settings.redis_url, **kwargs)


class RedisAlertSink:
    """Writes alerts idempotently; safe to call again with the same alerts."""

    def __init__(self, client: aioredis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self._script = client.register_script(_WRITE_ALERT)
        self.written = 0
        self.duplicates = 0
        self.conflicts = 0
        self.failures = 0

    @property
    def stream_key(self) -> str:
        return self.settings.redis_key("alerts")

    async def write(self, alerts: Iterable[Mapping[str, Any]]) -> int:
        """Write a batch in one pipeline round-trip; returns how many were new."""
        batch = list(alerts)
        if not batch:
            return 0
        pipe = self.client.pipeline(transaction=False)
        key = self.settings.redis_key
        digests = []
        for alert in batch:
            body = orjson.dumps(alert, option=orjson.OPT_SORT_KEYS)
            digest = hashlib.sha1(body).hexdigest()
            digests.append(digest)
            await self._script(
                keys=[
                    key("seen", alert_identity(alert, digest)),
                    self.stream_key,
                    key("alerts"),
                    key("alerts", "severity", str(alert.get("severity", "unknown"))),
                    key("alerts", "zone", str(alert.get("zone", "unknown"))),
                    key("aircraft"),
                    *(key("channel", str(c)) for c in alert.get("channels") or ()),
                ],
                args=[
                    SEEN_TTL_S,
                    self.settings.redis_stream_maxlen,
                    body,
                    str(alert.get("alert_id", "")),
                    # the aircraft hash keeps each aircraft's latest zone alert (alert.v1) only
                    str(alert.get("icao24", "")) if alert.get("schema", "alert.v1") == "alert.v1" else "",
                    digest,
                ],
                client=pipe,
            )
        results = await pipe.execute()
        new = conflicts = 0
        for alert, digest, r in zip(batch, digests, results, strict=True):
            if r == 1:
                new += 1
            elif r not in (0, None):
                conflicts += 1
                first = r.decode() if isinstance(r, bytes) else str(r)
                log.warning("redis sink: alert %s re-sent with different content (first %s, now %s); "
                            "kept the first", alert_identity(alert, digest), first[:12], digest[:12],
                            extra={"alert_id": alert.get("alert_id"), "icao24": alert.get("icao24")})
        self.written += new
        self.conflicts += conflicts
        self.duplicates += len(batch) - new - conflicts
        return new

    async def write_retrying(self, alerts: Iterable[Mapping[str, Any]],
                             on_failure: Callable[[], object] | None = None) -> int:
        """Write, waiting out a Redis outage: the alerts stay in Kafka uncommitted meanwhile.

        ``on_failure`` runs at each failed attempt, so a failure counter rises during the
        outage rather than only once Redis is back.
        """
        batch = list(alerts)
        delay = RETRY_FIRST_S
        while True:
            try:
                return await self.write(batch)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
                self.failures += 1
                if on_failure is not None:
                    on_failure()
                log.warning("redis sink: %s; retrying %d alerts in %.1f s", exc, len(batch), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    def log_delivered(self, alerts: Iterable[Mapping[str, Any]], new: int) -> None:
        """One log line per alert, with its id, as operators grep for them."""
        for a in alerts:
            log.info(
                "alert %s %s %s zone=%s severity=%s",
                a.get("alert_id"), a.get("transition"), a.get("icao24"), a.get("zone"), a.get("severity"),
                extra={"alert_id": a.get("alert_id"), "icao24": a.get("icao24"), "transition": a.get("transition")},
            )
