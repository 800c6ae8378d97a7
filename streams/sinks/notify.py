"""Notifications: alerts to the HTTP webhooks people read (ntfy, Discord, Slack/Mattermost, JSON).

This module owns what a webhook is (parsed from the ``SKYFENCE_WEBHOOKS`` setting), which alerts
it wants, what each service is sent, whether an answer means delivered, retry or refused, and
one alert's delivery with its retries (:class:`WebhookSender`, the only I/O here). The Kafka side
(one consumer group per webhook, offsets committed only after delivery) is
``streams/agents/notify.py``.

``SKYFENCE_WEBHOOKS`` is a JSON list with one object per webhook::

    [{"name": "desk", "format": "ntfy", "url": "https://ntfy.sh/skyfence-border-7f3a", "min_severity": "medium"},
     {"name": "newsroom", "format": "discord", "url": "https://discord.com/api/webhooks/ID/TOKEN",
      "categories": ["military", "surveillance"]},
     {"name": "ops", "format": "json", "url": "https://ops.example.org/skyfence", "secret": "...",
      "channels": ["border-desk"]}]

Fields: ``name`` (letters, digits, ``.``, ``_``, ``-``; names the webhook's consumer group),
``format``, ``url`` (http or https), optional ``secret`` (json: HMAC key), ``token`` (json, ntfy:
sent as ``Authorization: Bearer``), ``timeout_s`` (per request, default 10) and ``backfill_s``
(how far back a new webhook starts, default 3600). Filters, all optional; every filter given must
hold (AND), a list holds when any of its values does (OR), as in the rules file:
``min_severity`` (info, low, medium, high; the severity after the alert rules), ``categories``
(the aircraft's classification, or an activity alert's category), ``rules`` (names of alert rules
that matched) and ``channels`` (channels the rules sent the alert to, ``action.channel``: the way
to route by rule).

Formats (each the service's documented API; every request carries ``Idempotency-Key: <event_id>``):

- ``json``: the alert document exactly as on the alerts topic, with
  ``X-Skyfence-Signature: sha256=<hex HMAC-SHA256(secret, body)>`` when a secret is set and a
  ``Link`` header to the map;
- ``ntfy`` (docs.ntfy.sh/publish): the headline as the plain-text body, POSTed to the topic URL,
  with ``Title``, ``Priority`` (1-5), ``Tags`` (emoji short codes first) and ``Click`` (the map);
- ``discord`` (execute webhook): ``content`` (headline and link, at most 2,000 characters) and one
  embed within Discord's embed limits; ``allowed_mentions`` is empty, so a callsign never pings;
- ``slack`` (incoming webhook, also Mattermost): ``{"text": ...}`` with ``<url|text>`` link and
  ``&<>`` escaped; no ``*bold*``, which Mattermost would show as italics.

Answers: 2xx is delivered; 429, 408, 5xx, a timeout or a connection error is retried with a
capped backoff (a ``Retry-After`` is honoured up to 10 min); any other status (3xx, 4xx) is a
refusal, kept as a dead letter with the status and the start of the response.

Secrets (the URL's path and query, which carry Discord/Slack/Mattermost tokens and ntfy topics,
``secret``, ``token``) never leave this module except in the request itself: logs name the webhook
and its host only, and response bodies and errors are scrubbed of them (:func:`redact`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import aiohttp
import orjson

from streams import __version__
from streams.core.rules import CATEGORIES, SEVERITIES
from streams.settings import Secret, Settings, SettingsError
from streams.sinks.redis_sink import alert_digest, alert_identity

log = logging.getLogger(__name__)

FORMATS = ("json", "ntfy", "discord", "slack")
USER_AGENT = f"skyfence/{__version__}"
# A webhook's name becomes part of its Kafka consumer group id: keep it a plain token.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_FIELDS = ("name", "format", "url", "secret", "token", "min_severity", "categories", "rules", "channels",
           "timeout_s", "backfill_s")

# 10 s per request: ntfy, Discord and Slack answer in well under a second; ten is a stuck endpoint.
DEFAULT_TIMEOUT_S = 10.0
# 300 s: the longest per-request timeout a webhook may ask for; longer only hides a dead endpoint.
MAX_TIMEOUT_S = 300.0
# 1 h: a webhook added to a running system is sent the last hour of alerts, not the alerts
# topic's whole retention (a week by default), which would flood a channel.
DEFAULT_BACKFILL_S = 3600.0
# 0.5 s doubling to 60 s: a blip is retried at once, an outage is knocked on once a minute.
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 60.0
# 10 min: the longest Retry-After honoured; a longer one (or a date far ahead) is a server's
# mistake, and the alert would wait for it with everything behind it.
RETRY_AFTER_MAX_S = 600.0
# 64 KiB of a response read at most: error bodies are small, and a huge one must not fill memory.
RESPONSE_READ_BYTES = 64 * 1024
# 1,000 characters of a refusing response kept in its dead letter: Discord's and Slack's error
# JSON fits; more would only repeat an HTML error page.
RESPONSE_KEEP_CHARS = 1000
# Path segments this long are treated as tokens when scrubbing text (Discord tokens are ~68
# characters, Slack's 24, Mattermost's 26); shorter ones are words like "api" or "hooks".
TOKEN_SEGMENT_MIN = 12

# Discord's documented limits (execute webhook; embed limits), counted in UTF-16 code units.
DISCORD_CONTENT_MAX = 2000
DISCORD_TITLE_MAX = 256
DISCORD_DESCRIPTION_MAX = 4096
DISCORD_FIELD_VALUE_MAX = 1024
DISCORD_FOOTER_MAX = 2048
DISCORD_EMBED_TOTAL_MAX = 6000
# Discord embed colours (0xRRGGBB), the live map's severity colours.
DISCORD_COLOUR = {"info": 0x8FB3B8, "low": 0xFFD166, "medium": 0xF5A524, "high": 0xFF5A5F}
# Slack truncates text past 40,000 characters and advises staying under 4,000; 3,000 for the
# headline leaves room for the severity and the link.
SLACK_HEADLINE_MAX = 3000
# ntfy turns a body over 4,096 bytes (its default message-size-limit) into an attachment.
NTFY_BODY_MAX_BYTES = 4096
# ntfy priorities 1 (min) to 5 (max): a military aircraft inside Mexico (high) is urgent.
NTFY_PRIORITY = {"info": 2, "low": 3, "medium": 4, "high": 5}
# ntfy shows tags that are emoji short codes as emoji in front of the title.
NTFY_EMOJI = {"info": "information_source", "low": "small_blue_diamond", "medium": "warning",
              "high": "rotating_light"}


NO_SECRET = Secret("")


class WebhookError(SettingsError):
    """A webhook spec that cannot be used: one line naming the webhook and the field, never a secret."""


@dataclass(frozen=True, slots=True)
class Webhook:
    """One configured webhook. ``url``, ``secret`` and ``token`` are :class:`Secret` (masked in repr)."""

    name: str
    format: str
    url: Secret
    secret: Secret = NO_SECRET
    token: Secret = NO_SECRET
    min_severity: str = "info"
    categories: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    timeout_s: float = DEFAULT_TIMEOUT_S
    backfill_s: float = DEFAULT_BACKFILL_S

    @property
    def shown(self) -> str:
        """How logs name it: name, format and host, never the URL's path (it carries tokens)."""
        return f"{self.name} ({self.format}, {mask_url(self.url.reveal())})"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every text that must not be shown: the URL, its query and password, its path and path
        segments long enough to be tokens, the HMAC secret and the token. (A short path such as
        /ops is no secret, and scrubbing it would blank that word in every log line.)"""
        url = self.url.reveal()
        parts = urlsplit(url)
        out = [url, self.secret.reveal(), self.token.reveal(), parts.query, parts.password or ""]
        out += [p for p in (parts.path.strip("/"), *parts.path.split("/")) if len(p) >= TOKEN_SEGMENT_MIN]
        # longest first: a secret that contains another is scrubbed whole
        return tuple(sorted({s for s in out if s}, key=len, reverse=True))


def mask_url(url: str) -> str:
    """scheme://host[:port]/… : where a webhook points, without what authorises it."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    rest = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{rest}"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ********."""
    for s in secrets:
        if s:
            text = text.replace(s, "********")
    return text


# ------------------------------------------------------------------ parsing the setting
def _strings(raw: Any, where: str, fld: str, allowed: Sequence[str] | None = None) -> tuple[str, ...]:
    vals = [raw] if isinstance(raw, str) else raw
    if not isinstance(vals, list) or not vals or not all(isinstance(v, str) and v.strip() for v in vals):
        raise WebhookError(f"{where}: field {fld}: expected a string or a list of non-empty strings")
    out = tuple(v.strip() for v in vals)
    if allowed is not None:
        bad = [v for v in out if v not in allowed]
        if bad:
            raise WebhookError(f"{where}: field {fld}: {bad[0][:40]!r} is not one of {', '.join(allowed)}")
    return out


def _number(raw: Any, where: str, fld: str, lo: float, hi: float, lo_open: bool) -> float:
    ok = isinstance(raw, (int, float)) and not isinstance(raw, bool)
    if not ok or not ((lo < raw) if lo_open else (lo <= raw)) or raw > hi:
        bound = f"{'above' if lo_open else 'at least'} {lo:g} and at most {hi:g}"
        raise WebhookError(f"{where}: field {fld}: expected a number {bound}")
    return float(raw)


def _secret(raw: Any, where: str, fld: str) -> Secret:
    # the value is never echoed: the message names the field only
    if not isinstance(raw, str) or not raw or any(c in raw for c in "\r\n") or not raw.isprintable():
        raise WebhookError(f"{where}: field {fld}: expected a non-empty single-line string")
    if fld == "token" and not raw.isascii():
        raise WebhookError(f"{where}: field token: expected ASCII (it is sent in an HTTP header)")
    return Secret(raw)


def _webhook(i: int, raw: Any) -> Webhook:
    where = f"webhook #{i + 1}"
    if not isinstance(raw, dict):
        raise WebhookError(f"{where}: expected an object with name, format and url")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise WebhookError(f"{where}: field name: expected 1-64 letters, digits, '.', '_' or '-' "
                           "(it names the webhook's Kafka consumer group)")
    where = f"webhook {name!r}"
    for k in raw:
        if k not in _FIELDS:
            raise WebhookError(f"{where}: field {str(k)[:40]!r}: unknown (expected one of {', '.join(_FIELDS)})")
    fmt = raw.get("format")
    if fmt not in FORMATS:
        raise WebhookError(f"{where}: field format: expected one of {', '.join(FORMATS)}")
    url = raw.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    try:
        port_ok = parts is not None and (parts.port is None or parts.port > 0)
    except ValueError:
        port_ok = False
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok
            or any(c.isspace() for c in str(url)) or not str(url).isascii()):
        raise WebhookError(f"{where}: field url: expected an http:// or https:// URL (ASCII, no spaces)")
    secret = _secret(raw["secret"], where, "secret") if "secret" in raw else Secret("")
    if secret and fmt != "json":
        raise WebhookError(f"{where}: field secret: only the json format is signed (HMAC); remove it")
    token = _secret(raw["token"], where, "token") if "token" in raw else Secret("")
    if token and fmt not in ("json", "ntfy"):
        raise WebhookError(f"{where}: field token: only json and ntfy take a bearer token; "
                           "Discord and Slack carry theirs in the URL")
    sev = raw.get("min_severity", "info")
    if sev not in SEVERITIES:
        raise WebhookError(f"{where}: field min_severity: expected one of {', '.join(SEVERITIES)}")
    return Webhook(
        name=name,
        format=fmt,
        url=Secret(url),
        secret=secret,
        token=token,
        min_severity=sev,
        categories=_strings(raw["categories"], where, "categories", CATEGORIES) if "categories" in raw else (),
        rules=_strings(raw["rules"], where, "rules") if "rules" in raw else (),
        channels=_strings(raw["channels"], where, "channels") if "channels" in raw else (),
        timeout_s=_number(raw.get("timeout_s", DEFAULT_TIMEOUT_S), where, "timeout_s", 0.0, MAX_TIMEOUT_S, True),
        backfill_s=_number(raw.get("backfill_s", DEFAULT_BACKFILL_S), where, "backfill_s", 0.0, 1e9, False),
    )


def parse_webhooks(text: str) -> tuple[Webhook, ...]:
    """The webhooks of a ``SKYFENCE_WEBHOOKS`` value (empty: none). Raises :class:`WebhookError`,
    one line starting ``SKYFENCE_WEBHOOKS:``, naming the webhook and the field, never a value
    that could be secret."""
    if not text.strip():
        return ()
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise WebhookError(f"SKYFENCE_WEBHOOKS: not valid JSON (line {e.lineno}, column {e.colno}); "
                           "expected a list of webhook objects") from None
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise WebhookError("SKYFENCE_WEBHOOKS: expected a JSON list of webhook objects")
    try:
        hooks = tuple(_webhook(i, raw) for i, raw in enumerate(doc))
    except WebhookError as e:
        raise WebhookError(f"SKYFENCE_WEBHOOKS: {e}") from None
    names = [h.name for h in hooks]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise WebhookError(f"SKYFENCE_WEBHOOKS: webhook {dup!r}: field name: used twice")
    return hooks


def webhooks_of(settings: Settings) -> tuple[Webhook, ...]:
    """The settings' webhooks (``settings.webhooks`` is a Secret; a plain str from ``replace`` works too)."""
    value = settings.webhooks
    return parse_webhooks(value.reveal() if isinstance(value, Secret) else str(value))


def map_base(settings: Settings) -> str:
    """Where people open the live map: SKYFENCE_MAP_URL, else the worker's own web address."""
    if settings.map_url:
        return settings.map_url.rstrip("/")
    host = settings.web_host if ":" not in settings.web_host else f"[{settings.web_host}]"
    return f"http://{host}:{settings.web_port}"


# ------------------------------------------------------------------ which alerts, what text
def severity_of(alert: Mapping[str, Any]) -> str:
    sev = alert.get("severity")
    return sev if isinstance(sev, str) and sev in SEVERITIES else "info"


def category_of(alert: Mapping[str, Any]) -> str | None:
    """The aircraft's category, or (activity.v1, about a category) the alert's own."""
    cls = alert.get("classification")
    cat = cls.get("category") if isinstance(cls, Mapping) else None
    return str(cat) if cat else (str(alert["category"]) if alert.get("category") else None)


def _names(value: Any) -> set[str]:
    return {str(v) for v in value} if isinstance(value, list) else set()


def wanted(hook: Webhook, alert: Mapping[str, Any]) -> bool:
    """Does ``hook`` want ``alert``? Every filter given must hold; a list holds if any value does."""
    if SEVERITIES.index(severity_of(alert)) < SEVERITIES.index(hook.min_severity):
        return False
    if hook.categories and category_of(alert) not in hook.categories:
        return False
    if hook.rules and not _names(alert.get("rules")) & set(hook.rules):
        return False
    return not (hook.channels and not _names(alert.get("channels")) & set(hook.channels))


def event_key(alert: Mapping[str, Any]) -> str:
    """The idempotency key: the alert's ``event_id`` (as the Redis sink identifies it)."""
    return alert_identity(alert, alert_digest(alert))


def headline_of(alert: Mapping[str, Any]) -> str:
    text = alert.get("headline")
    if isinstance(text, str) and text.strip():
        return " ".join(text.split())
    return f"{alert.get('schema', 'alert')} {alert.get('transition', '')} {who_of(alert)}".strip()


def who_of(alert: Mapping[str, Any]) -> str:
    icao = str(alert.get("icao24") or "").upper()
    callsign = str(alert.get("callsign") or "").strip()
    if icao and callsign:
        return f"{icao} {callsign}"
    return icao or callsign or (category_of(alert) or "aircraft")


def title_of(alert: Mapping[str, Any]) -> str:
    transition = str(alert.get("transition") or "alert").replace("_", " ")
    return f"skyfence {severity_of(alert)}: {transition} {who_of(alert)}"


def map_link(base: str, alert: Mapping[str, Any]) -> str:
    """The live map, with the aircraft named (``/map?icao=<icao24>``); an activity alert, the map."""
    icao = str(alert.get("icao24") or "")
    return f"{base}/map?icao={quote(icao, safe='')}" if icao else f"{base}/map"


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-16 code units (how Discord counts), with … when cut."""
    if len(text.encode("utf-16-le")) // 2 <= limit:
        return text
    out: list[str] = []
    used = 1  # the ellipsis
    for ch in text:
        n = 2 if ord(ch) > 0xFFFF else 1
        if used + n > limit:
            break
        out.append(ch)
        used += n
    return "".join(out) + "…"


def clip_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, on a character boundary, with … when cut."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode(errors="ignore") + "…"


def header_text(text: str) -> str:
    """A header value: one line; non-ASCII as an RFC 2047 encoded word (ntfy decodes Title so)."""
    line = " ".join(text.split())
    if line.isascii():
        return line
    return "=?UTF-8?B?" + base64.b64encode(line.encode()).decode("ascii") + "?="


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, body): the X-Skyfence-Signature header."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def slack_escape(text: str) -> str:
    """Slack's three control characters, escaped as its message formatting asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True, slots=True)
class Request:
    """What one webhook is sent for one alert (always POST to the webhook's URL)."""

    body: bytes
    headers: dict[str, str]

    @property
    def key(self) -> str:
        return self.headers["Idempotency-Key"]


def render(hook: Webhook, alert: Mapping[str, Any], raw: bytes | None, base: str) -> Request:
    """The request ``hook`` is sent for ``alert`` (``raw``: its record bytes, sent as is by json)."""
    key = event_key(alert)
    sev = severity_of(alert)
    headline = headline_of(alert)
    link = map_link(base, alert)
    headers = {"Idempotency-Key": key, "User-Agent": USER_AGENT}
    if hook.format == "json":
        body = raw if raw is not None and alert.get("event_id") == key else orjson.dumps({**alert, "event_id": key})
        headers |= {"Content-Type": "application/json", "Link": f'<{link}>; rel="alternate"; type="text/html"'}
        if hook.secret:
            headers["X-Skyfence-Signature"] = sign(hook.secret.reveal(), body)
    elif hook.format == "ntfy":
        body = clip_bytes(headline, NTFY_BODY_MAX_BYTES).encode()
        tags = [NTFY_EMOJI[sev], sev, category_of(alert) or "", str(alert.get("transition") or "")]
        headers |= {
            "Content-Type": "text/plain; charset=utf-8",
            "Title": header_text(title_of(alert)),
            "Priority": str(NTFY_PRIORITY[sev]),
            "Tags": ",".join(t.replace(",", " ") for t in tags if t),
            "Click": link,
        }
    elif hook.format == "discord":
        body = orjson.dumps(discord_payload(alert, headline, link, key))
        headers["Content-Type"] = "application/json"
    else:  # slack (and Mattermost)
        text = f"[{sev.upper()}] {clip(slack_escape(headline), SLACK_HEADLINE_MAX)}\n<{link}|Open on the skyfence map>"
        body = orjson.dumps({"text": text})
        headers["Content-Type"] = "application/json"
    if hook.token:
        headers["Authorization"] = f"Bearer {hook.token.reveal()}"
    return Request(body, headers)


def discord_payload(alert: Mapping[str, Any], headline: str, link: str, key: str) -> dict[str, Any]:
    """Execute-webhook JSON: the headline and link as content, details in one embed (limits kept)."""
    sev = severity_of(alert)
    embed: dict[str, Any] = {
        "title": clip(title_of(alert), DISCORD_TITLE_MAX),
        "url": link,
        "color": DISCORD_COLOUR[sev],
        "fields": [
            {"name": "Severity", "value": sev, "inline": True},
            {"name": "Aircraft", "value": clip(who_of(alert), DISCORD_FIELD_VALUE_MAX), "inline": True},
            {"name": "Category", "value": clip(category_of(alert) or "unknown", DISCORD_FIELD_VALUE_MAX),
             "inline": True},
        ],
        "footer": {"text": clip(f"{alert.get('schema', 'alert')} · {key}", DISCORD_FOOTER_MAX)},
    }
    description = alert.get("description")
    if isinstance(description, str) and description.strip() and description.strip() != headline:
        embed["description"] = clip(description.strip(), DISCORD_DESCRIPTION_MAX)
    if isinstance(alert.get("event_time_iso"), str):
        embed["timestamp"] = alert["event_time_iso"]
    return {
        "content": clip(headline, DISCORD_CONTENT_MAX - len(link) - 1) + "\n" + link,
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }


# ------------------------------------------------------------------ answers and retries
@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do after one attempt: ``delivered``, ``retry`` after ``delay_s``, or ``refused``."""

    action: Literal["delivered", "retry", "refused"]
    delay_s: float = 0.0


def backoff(attempt: int) -> float:
    """Delay before retry number ``attempt + 1`` (attempt 0 is the first failure): doubling, capped."""
    return min(RETRY_FIRST_S * 2.0 ** min(attempt, 32), RETRY_MAX_S)


def retry_after_s(value: str | None, now: float) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from ``now``; None if absent or bad."""
    if not value or not value.strip():
        return None
    v = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", v):
        return float(v)
    try:
        when = parsedate_to_datetime(v)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT by definition
        return None
    return max(0.0, when.timestamp() - now)


def decide(status: int | None, retry_after: str | None, attempt: int, now: float) -> Verdict:
    """The verdict on one attempt's answer: ``status`` None is a timeout or connection error.

    2xx: delivered. 429 (rate limited), 408 (the server's timeout), 5xx, no answer: retry after
    the Retry-After when one is given (at least :data:`RETRY_FIRST_S`), else :func:`backoff`,
    at most :data:`RETRY_AFTER_MAX_S`. Anything else (3xx: a moved webhook; 4xx: refused): refused.
    """
    if status is not None and 200 <= status < 300:
        return Verdict("delivered")
    if status is None or status in (408, 429) or status >= 500:
        after = retry_after_s(retry_after, now)
        delay = backoff(attempt) if after is None else max(after, RETRY_FIRST_S)
        return Verdict("retry", min(delay, RETRY_AFTER_MAX_S))
    return Verdict("refused")


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one alert's delivery ended: delivered, or refused with the status and (scrubbed) response."""

    delivered: bool
    attempts: int
    status: int | None
    response: str = ""


class WebhookSender:
    """Delivers alerts to one webhook over its own connection pool (a hung endpoint holds only its own)."""

    def __init__(self, hook: Webhook, base: str) -> None:
        self.hook = hook
        self.base = base
        self._session: aiohttp.ClientSession | None = None
        self.attempts = 0
        self.retries = 0

    def render(self, alert: Mapping[str, Any], raw: bytes | None = None) -> Request:
        return render(self.hook, alert, raw, self.base)

    def scrub(self, text: str) -> str:
        return redact(text, self.hook.secrets)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, req: Request) -> tuple[int | None, str | None, str]:
        """One attempt: (status or None, Retry-After, response text or what went wrong)."""
        if self._session is None:
            # no cookies: a webhook is stateless, and a cookie jar is one more place a token could sit
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        self.attempts += 1
        try:
            async with self._session.post(self.hook.url.reveal(), data=req.body, headers=req.headers,
                                          allow_redirects=False,
                                          timeout=aiohttp.ClientTimeout(total=self.hook.timeout_s)) as resp:
                body = bytearray()
                while len(body) < RESPONSE_READ_BYTES:
                    part = await resp.content.read(RESPONSE_READ_BYTES - len(body))
                    if not part:
                        break
                    body += part
                return resp.status, resp.headers.get("Retry-After"), body.decode(errors="replace")
        except TimeoutError:
            return None, None, f"no answer within {self.hook.timeout_s:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            return None, None, f"{type(exc).__name__}: {exc}"

    async def send(self, req: Request) -> Delivery:
        """POST ``req`` until it is delivered or refused; retries (logged, scrubbed) wait in between.
        Cancelling it (a shutdown, a revoked partition) leaves the alert undelivered."""
        attempt = 0
        while True:
            status, retry_after, text = await self._post(req)
            verdict = decide(status, retry_after, attempt, time.time())
            attempt += 1
            if verdict.action == "delivered":
                return Delivery(True, attempt, status)
            if verdict.action == "refused":
                return Delivery(False, attempt, status, self.scrub(text)[:RESPONSE_KEEP_CHARS])
            self.retries += 1
            what = f"HTTP {status}" if status is not None else self.scrub(text)[:200]
            log.warning("notify %s: alert %s: %s; retry %d in %.1f s", self.hook.shown, req.key, what, attempt,
                        verdict.delay_s)
            await asyncio.sleep(verdict.delay_s)
