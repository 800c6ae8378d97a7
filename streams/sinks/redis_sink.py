"""The Redis sink: alerts from Kafka to the people and programs subscribed in Redis.

This module owns how an alert lands in Redis, in one atomic Lua script per alert:
- a dedup key ``<prefix>:seen:<digest>`` (SET NX with a TTL) makes every write
  idempotent: an alert replayed, re-delivered after a crash, or read twice from Kafka
  adds nothing the second time;
- XADD to the capped stream ``<prefix>:alerts`` for consumer groups;
- PUBLISH on ``<prefix>:alerts`` (all), ``<prefix>:alerts:severity:<sev>`` and
  ``<prefix>:alerts:zone:<zone>``;
- HSET of the aircraft's latest zone alert (alert.v1) in ``<prefix>:aircraft`` (field = icao24);
- PUBLISH on ``<prefix>:channel:<name>`` for every channel the user's alert rules sent it to
  (the alert's ``channels``, streams.core.rules).

Pattern (pattern.v1), gone-dark (dark.v1) and activity (activity.v1) alerts travel the same
way, on their own zone channels (``pattern``, ``dark``, ``activity``).

The digest is over the alert's canonical JSON, so two alerts differ exactly when
their content differs (an ``updated`` alert with a closer approach is new content).
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

_WRITE_ALERT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'alert', ARGV[3], 'alert_id', ARGV[4])
  redis.call('PUBLISH', KEYS[3], ARGV[3])
  redis.call('PUBLISH', KEYS[4], ARGV[3])
  redis.call('PUBLISH', KEYS[5], ARGV[3])
  if ARGV[5] ~= '' then
    redis.call('HSET', KEYS[6], ARGV[5], ARGV[3])
  end
  for i = 7, #KEYS do
    redis.call('PUBLISH', KEYS[i], ARGV[3])
  end
  return id
end
return false
"""


# Back-off while Redis is away: first retry soon, then at most every 5 s so a returning
# Redis is noticed quickly without a tight loop.
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0


def alert_digest(alert: Mapping[str, Any]) -> str:
    """Identity of one alert message: sha1 of its canonical JSON."""
    return hashlib.sha1(orjson.dumps(alert, option=orjson.OPT_SORT_KEYS)).hexdigest()


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
        for alert in batch:
            body = orjson.dumps(alert, option=orjson.OPT_SORT_KEYS)
            digest = hashlib.sha1(body).hexdigest()
            await self._script(
                keys=[
                    key("seen", digest),
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
                ],
                client=pipe,
            )
        results = await pipe.execute()
        new = sum(1 for r in results if r)
        self.written += new
        self.duplicates += len(batch) - new
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
