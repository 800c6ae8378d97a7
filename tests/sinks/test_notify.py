"""Notification webhooks (streams.sinks.notify): the spec, filters, each service's format, HMAC,
the retry decision, and one alert's delivery against a real HTTP server on loopback.

:class:`HookServer` is that server (aiohttp, in a thread of its own so it answers whatever the
test is doing): it records every request and answers as each path is told (fail, rate-limit,
hang, refuse). tests/agents/test_notify_agent.py drives workers against it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.header import decode_header
from email.utils import formatdate
from typing import Any

import orjson
import pytest
from aiohttp import web

from streams.settings import Secret, Settings, child_env
from streams.sinks.notify import (
    DISCORD_CONTENT_MAX,
    DISCORD_EMBED_TOTAL_MAX,
    NTFY_BODY_MAX_BYTES,
    RETRY_AFTER_MAX_S,
    RETRY_FIRST_S,
    RETRY_MAX_S,
    Webhook,
    WebhookError,
    WebhookSender,
    backoff,
    decide,
    parse_webhooks,
    redact,
    render,
    retry_after_s,
    sign,
    wanted,
)
from tests.paths import REPO_ROOT

BASE = "https://map.example.org"
LINK = f"{BASE}/map?icao=ae1234"
HEADLINE = ("C-17A Globemaster III AE1234 (RCH123) entered Mexican sovereign airspace, "
            "83 km SW of Cabo San Lucas")
ALERT: dict[str, Any] = {
    "schema": "alert.v1",
    "alert_id": "3f2a9c0d1e5b7a8c9d0e",
    "event_id": "3f2a9c0d1e5b7a8c9d0e:1",
    "seq": 1,
    "icao24": "ae1234",
    "callsign": "RCH123",
    "transition": "entered",
    "zone": "sovereign",
    "event_time": 1738700000.5,
    "event_time_iso": "2025-02-04T20:13:20.500Z",
    "classification": {"category": "military", "type_code": "C17"},
    "severity": "high",
    "description": "83 km SW of Cabo San Lucas",
    "headline": HEADLINE,
    "rules": ["tankers and command posts"],
    "channels": ["border-desk"],
}
RAW = orjson.dumps(ALERT)
# What tokens look like: Discord's are ~68 characters, Slack's 24.
DISCORD_TOKEN = "Zq3" + "x7K" * 21 + "Pw"
SLACK_TOKEN = "aB3dE5gH7jK9mN1pQ3sT5vW7"


def hook(**kw: Any) -> Webhook:
    spec = {"name": "h", "format": "json", "url": "https://hooks.example.org/in", **kw}
    return parse_webhooks(orjson.dumps([spec]).decode())[0]


# ============================================================== the real server on loopback
@dataclass
class Answer:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # no answer until the path is released (or the client gives up)


Plan = Callable[["Received"], Answer]


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic() on arrival
    attempt: int  # earlier requests with the same Idempotency-Key on this path
    status: int | None = None  # what it was answered (None: not (yet), or the client had gone)

    @property
    def key(self) -> str:
        return self.headers.get("idempotency-key", "")

    def json(self) -> Any:
        return orjson.loads(self.body)


def by_attempt(*answers: Answer) -> Plan:
    """The n-th request of each idempotency key gets the n-th answer; later ones the last."""
    return lambda r: answers[min(r.attempt, len(answers) - 1)]


class HookServer:
    """A real aiohttp server on 127.0.0.1, in a thread with its own event loop: it answers while the
    test blocks (starting a worker, a subprocess). Records every request; answers per path's plan
    (default 200 "ok")."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log: list[Received] = []
        self._plans: dict[str, Plan] = {}
        self._released: set[str] = set()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def __enter__(self) -> HookServer:
        ready = threading.Event()

        def main() -> None:
            loop = self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = runner.addresses[0][1]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=main, name="hook-server", daemon=True)
        self._thread.start()
        assert ready.wait(10), "the hook server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(15)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def plan(self, path: str, plan: Plan) -> None:
        with self._lock:
            self._plans[path] = plan

    def release(self, path: str) -> None:
        """Requests hanging on ``path`` (and later hangs) are answered 200 now."""
        with self._lock:
            self._released.add(path)

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._log if path is None or r.path == path]

    def delivered(self, path: str) -> dict[str, list[Received]]:
        """Idempotency key -> requests answered 2xx (delivered), in arrival order."""
        out: dict[str, list[Received]] = {}
        for r in self.received(path):
            if r.status is not None and 200 <= r.status < 300:
                out.setdefault(r.key, []).append(r)
        return out

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            key = headers.get("idempotency-key", "")
            attempt = sum(1 for r in self._log if r.path == request.path and r.key == key)
            rec = Received(request.path, headers, body, time.monotonic(), attempt)
            self._log.append(rec)
            plan = self._plans.get(request.path, lambda r: Answer())
        answer = plan(rec)
        if answer.hang:
            deadline = time.monotonic() + 120

            def gone() -> bool:
                return request.transport is None or request.transport.is_closing()

            while request.path not in self._released and not self._stopping and not gone():
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.02)
            if gone():
                return web.Response(status=499)  # the client gave up (its timeout): nobody reads this
            answer = Answer()
        with self._lock:
            rec.status = answer.status
        return web.Response(status=answer.status, text=answer.body, headers=answer.headers)


async def wait_for(check: Callable[[], Any], done: Callable[[Any], bool], timeout: float) -> Any:
    """``check()`` again every 0.1 s until ``done`` holds for its value or ``timeout`` passed; the
    value (the caller asserts on it). Tests wait on what was received, never on a bare sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


# ============================================================== unit: the spec
@pytest.mark.unit
def test_spec_parses_every_field() -> None:
    hooks = parse_webhooks(orjson.dumps([
        {"name": "desk", "format": "ntfy", "url": "https://ntfy.sh/skyfence-border-7f3a", "token": "tk_abc",
         "min_severity": "medium", "categories": ["military", "surveillance"], "timeout_s": 2.5},
        {"name": "ops", "format": "json", "url": "http://10.0.0.5:8080/in", "secret": "s3", "rules": "low and close",
         "channels": ["border-desk"], "backfill_s": 0},
    ]).decode())
    desk, ops = hooks
    assert (desk.name, desk.format, desk.min_severity, desk.categories, desk.timeout_s) == (
        "desk", "ntfy", "medium", ("military", "surveillance"), 2.5)
    assert desk.token.reveal() == "tk_abc" and desk.url.reveal() == "https://ntfy.sh/skyfence-border-7f3a"
    assert (ops.rules, ops.channels, ops.backfill_s, ops.secret.reveal()) == (("low and close",), ("border-desk",),
                                                                              0.0, "s3")
    assert parse_webhooks("") == () and parse_webhooks("  ") == ()
    assert "tk_abc" not in repr(desk) and "skyfence-border-7f3a" not in repr(desk)
    assert desk.shown == "desk (ntfy, https://ntfy.sh/…)"


@pytest.mark.unit
@pytest.mark.parametrize(("spec", "needle"), [
    ("[{", "not valid JSON (line 1, column"),
    ('"x"', "expected a JSON list of webhook objects"),
    ("[1]", "webhook #1: expected an object"),
    ('[{"name": "a b", "format": "json", "url": "https://x.org/TOPSECRETPATH"}]', "webhook #1: field name"),
    ('[{"name": "a", "format": "email", "url": "https://x.org/TOPSECRETPATH"}]', "webhook 'a': field format"),
    ('[{"name": "a", "format": "json", "url": "ftp://x.org/TOPSECRETPATH"}]', "webhook 'a': field url"),
    ('[{"name": "a", "format": "json", "url": "https://x.org/TOP SECRETPATH"}]', "webhook 'a': field url"),
    ('[{"name": "a", "format": "json"}]', "webhook 'a': field url"),
    ('[{"name": "a", "format": "ntfy", "url": "https://x.org/t", "secret": "TOPSECRETPATH"}]',
     "webhook 'a': field secret: only the json format is signed"),
    ('[{"name": "a", "format": "discord", "url": "https://x.org/t", "token": "TOPSECRETPATH"}]',
     "webhook 'a': field token: only json and ntfy"),
    ('[{"name": "a", "format": "json", "url": "https://x.org/t", "secret": "TOPSECRET\\nPATH"}]',
     "webhook 'a': field secret: expected a non-empty single-line string"),
    ('[{"name": "a", "format": "json", "url": "https://x.org/t", "min_severity": "loud"}]',
     "webhook 'a': field min_severity"),
    ('[{"name": "a", "format": "json", "url": "https://x.org/t", "categories": ["navy"]}]',
     "webhook 'a': field categories: 'navy' is not one of"),
    ('[{"name": "a", "format": "json", "url": "https://x.org/t", "rules": []}]', "webhook 'a': field rules"),
    ('[{"name": "a", "format": "json", "url": "https://x.org/t", "timeout_s": 0}]', "webhook 'a': field timeout_s"),
    ('[{"name": "a", "format": "json", "url": "https://x.org/t", "backfill_s": -1}]',
     "webhook 'a': field backfill_s"),
    ('[{"name": "a", "format": "json", "url": "https://x.org/t", "urll": "x"}]', "webhook 'a': field 'urll': unknown"),
    ('[{"name": "a", "format": "json", "url": "https://x.org/t"}, {"name": "a", "format": "json", '
     '"url": "https://y.org/TOPSECRETPATH"}]', "webhook 'a': field name: used twice"),
])
def test_bad_spec_names_webhook_and_field_never_the_secret(spec: str, needle: str) -> None:
    with pytest.raises(WebhookError) as info:
        parse_webhooks(spec)
    message = str(info.value)
    assert message.startswith("SKYFENCE_WEBHOOKS: ") and needle in message, message
    assert "TOPSECRET" not in message and "\n" not in message


@pytest.mark.security
def test_secrets_never_in_settings_output() -> None:
    """`skyfence settings` (the real CLI), repr and the documented table: the webhooks are masked."""
    spec = orjson.dumps([
        {"name": "newsroom", "format": "discord", "url": f"https://discord.com/api/webhooks/1234/{DISCORD_TOKEN}"},
        {"name": "ops", "format": "json", "url": "https://ops.example.org/in", "secret": "hmac-KEY-0042"},
        {"name": "phone", "format": "ntfy", "url": "https://ntfy.sh/skyfence-border-7f3a", "token": "tk_PHONE0042"},
    ]).decode()
    s = Settings.from_env({"SKYFENCE_WEBHOOKS": spec})
    assert isinstance(s.webhooks, Secret) and s.webhooks.reveal() == spec
    proc = subprocess.run([sys.executable, "-m", "streams.cli", "settings"], env=child_env(s), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "SKYFENCE_WEBHOOKS" in proc.stdout and "********" in proc.stdout
    shown = proc.stdout + proc.stderr + repr(s) + str(s.public_items())
    for secret in (DISCORD_TOKEN, "hmac-KEY-0042", "tk_PHONE0042", "skyfence-border-7f3a"):
        assert secret not in shown
    assert Settings.from_env(s.to_env()) == s  # a child worker still gets the real value


@pytest.mark.unit
def test_map_url_must_be_http() -> None:
    from streams.settings import SettingsError

    with pytest.raises(SettingsError, match=r"SKYFENCE_MAP_URL='map\.example\.org' is not an http"):
        Settings.from_env({"SKYFENCE_MAP_URL": "map.example.org"})


# ============================================================== unit: filters
@pytest.mark.unit
@pytest.mark.parametrize(("filters", "changes", "wants"), [
    ({}, {}, True),
    ({"min_severity": "high"}, {}, True),
    ({"min_severity": "high"}, {"severity": "medium"}, False),
    ({"min_severity": "low"}, {"severity": "info"}, False),
    ({"min_severity": "low"}, {"severity": "bogus"}, False),  # unknown severity counts as info
    ({"categories": ["military"]}, {}, True),
    ({"categories": ["civil", "surveillance"]}, {}, False),
    ({"categories": ["surveillance"]}, {"classification": None, "category": "surveillance"}, True),  # activity.v1
    ({"rules": ["tankers and command posts", "x"]}, {}, True),
    ({"rules": ["x"]}, {}, False),
    ({"rules": ["x"]}, {"rules": None}, False),
    ({"channels": ["border-desk"]}, {}, True),
    ({"channels": ["test-flights"]}, {}, False),
    ({"channels": ["border-desk"], "min_severity": "high", "categories": ["military"]}, {}, True),
    ({"channels": ["border-desk"], "categories": ["civil"]}, {}, False),  # every filter must hold
])
def test_filters(filters: dict[str, Any], changes: dict[str, Any], wants: bool) -> None:
    assert wanted(hook(**filters), {**ALERT, **changes}) is wants


# ============================================================== unit: formats
@pytest.mark.unit
def test_json_is_the_alert_document_signed_with_hmac() -> None:
    req = render(hook(secret="hmac-key", token="tok-1"), ALERT, RAW, BASE)
    assert req.body == RAW  # byte for byte what the alerts topic holds
    assert req.headers == {
        "Idempotency-Key": "3f2a9c0d1e5b7a8c9d0e:1",
        "User-Agent": "skyfence/0.1.0",
        "Content-Type": "application/json",
        "Link": f'<{LINK}>; rel="alternate"; type="text/html"',
        "X-Skyfence-Signature": "sha256=" + hmac.new(b"hmac-key", RAW, hashlib.sha256).hexdigest(),
        "Authorization": "Bearer tok-1",
    }
    assert "X-Skyfence-Signature" not in render(hook(), ALERT, RAW, BASE).headers
    # a hand-made alert without event_id gets one (its alert_id:seq) in the body and the header
    bare = {k: v for k, v in ALERT.items() if k != "event_id"}
    req = render(hook(), bare, orjson.dumps(bare), BASE)
    assert orjson.loads(req.body)["event_id"] == req.headers["Idempotency-Key"] == "3f2a9c0d1e5b7a8c9d0e:1"


@pytest.mark.unit
def test_hmac_matches_rfc4231() -> None:
    # RFC 4231, test case 2
    assert sign("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


@pytest.mark.unit
def test_ntfy_publish_headers() -> None:
    req = render(hook(format="ntfy", url="https://ntfy.sh/skyfence-border-7f3a", token="tk_1"), ALERT, RAW, BASE)
    assert req.body == HEADLINE.encode()
    assert req.headers == {
        "Idempotency-Key": "3f2a9c0d1e5b7a8c9d0e:1",
        "User-Agent": "skyfence/0.1.0",
        "Content-Type": "text/plain; charset=utf-8",
        "Title": "skyfence high: entered AE1234 RCH123",
        "Priority": "5",
        "Tags": "rotating_light,high,military,entered",
        "Click": LINK,
        "Authorization": "Bearer tk_1",
    }
    low = render(hook(format="ntfy"), {**ALERT, "severity": "info", "callsign": "AMÉRICA1"}, None, BASE)
    assert (low.headers["Priority"], low.headers["Tags"].split(",")[0]) == ("2", "information_source")
    # non-ASCII goes as an RFC 2047 encoded word, which ntfy decodes
    encoded = low.headers["Title"]
    assert encoded.isascii() and encoded.startswith("=?UTF-8?B?")
    text, charset = decode_header(encoded)[0]
    assert isinstance(text, bytes) and charset is not None
    assert text.decode(charset) == "skyfence info: entered AE1234 AMÉRICA1"
    huge = render(hook(format="ntfy"), {**ALERT, "headline": "ñ" * 5000}, None, BASE)
    assert len(huge.body) <= NTFY_BODY_MAX_BYTES and huge.body.decode().endswith("…")


@pytest.mark.unit
def test_discord_execute_webhook_payload() -> None:
    req = render(hook(format="discord", url=f"https://discord.com/api/webhooks/1/{DISCORD_TOKEN}"), ALERT, RAW, BASE)
    assert req.headers == {"Idempotency-Key": "3f2a9c0d1e5b7a8c9d0e:1", "User-Agent": "skyfence/0.1.0",
                           "Content-Type": "application/json"}
    assert orjson.loads(req.body) == {
        "content": f"{HEADLINE}\n{LINK}",
        "embeds": [{
            "title": "skyfence high: entered AE1234 RCH123",
            "url": LINK,
            "color": 0xFF5A5F,
            "description": "83 km SW of Cabo San Lucas",
            "timestamp": "2025-02-04T20:13:20.500Z",
            "fields": [
                {"name": "Severity", "value": "high", "inline": True},
                {"name": "Aircraft", "value": "AE1234 RCH123", "inline": True},
                {"name": "Category", "value": "military", "inline": True},
            ],
            "footer": {"text": "alert.v1 · 3f2a9c0d1e5b7a8c9d0e:1"},
        }],
        "allowed_mentions": {"parse": []},  # a callsign like @everyone pings nobody
    }


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@pytest.mark.unit
def test_discord_limits_hold_for_huge_alerts() -> None:
    big = {**ALERT, "headline": "🛩" * 3000, "description": "d" * 9000, "callsign": "C" * 2000}
    doc = orjson.loads(render(hook(format="discord"), big, None, BASE).body)
    assert _utf16(doc["content"]) <= DISCORD_CONTENT_MAX and doc["content"].endswith("\n" + LINK)
    embed = doc["embeds"][0]
    assert _utf16(embed["title"]) <= 256 and _utf16(embed["description"]) <= 4096
    assert all(_utf16(f["value"]) <= 1024 and _utf16(f["name"]) <= 256 for f in embed["fields"])
    total = sum(_utf16(t) for t in [embed["title"], embed["description"], embed["footer"]["text"],
                                    *(f["name"] + f["value"] for f in embed["fields"])])
    assert total <= DISCORD_EMBED_TOTAL_MAX and len(embed["fields"]) <= 25


@pytest.mark.unit
def test_slack_incoming_webhook_text() -> None:
    req = render(hook(format="slack"), ALERT, RAW, BASE)
    assert orjson.loads(req.body) == {"text": f"[HIGH] {HEADLINE}\n<{LINK}|Open on the skyfence map>"}
    tricky = render(hook(format="slack"), {**ALERT, "headline": "A <b> & <!channel>", "severity": "low"}, None, BASE)
    assert orjson.loads(tricky.body)["text"].startswith("[LOW] A &lt;b&gt; &amp; &lt;!channel&gt;\n<")
    # an activity alert (about a category, icao24 "") links the map itself
    activity = {"schema": "activity.v1", "event_id": "act:0", "icao24": "", "category": "surveillance",
                "severity": "medium", "transition": "elevated", "headline": "Surveillance sorties 3x the baseline"}
    text = orjson.loads(render(hook(format="slack"), activity, None, BASE).body)["text"]
    assert text == f"[MEDIUM] Surveillance sorties 3x the baseline\n<{BASE}/map|Open on the skyfence map>"


# ============================================================== unit: answers and retries
@pytest.mark.unit
@pytest.mark.parametrize(("status", "retry_after", "attempt", "action", "delay"), [
    (200, None, 0, "delivered", 0.0),
    (204, None, 5, "delivered", 0.0),
    (500, None, 0, "retry", RETRY_FIRST_S),
    (502, None, 1, "retry", 2 * RETRY_FIRST_S),
    (503, "7", 0, "retry", 7.0),  # a 5xx's Retry-After is honoured too
    (500, None, 40, "retry", RETRY_MAX_S),  # capped
    (None, None, 2, "retry", 4 * RETRY_FIRST_S),  # timeout or connection error
    (429, "3", 0, "retry", 3.0),
    (429, "0", 0, "retry", RETRY_FIRST_S),  # never a tight loop
    (429, "86400", 0, "retry", RETRY_AFTER_MAX_S),  # capped
    (429, None, 3, "retry", 8 * RETRY_FIRST_S),
    (408, None, 0, "retry", RETRY_FIRST_S),
    (400, None, 0, "refused", 0.0),
    (401, None, 0, "refused", 0.0),
    (403, "5", 0, "refused", 0.0),
    (404, None, 0, "refused", 0.0),
    (410, None, 0, "refused", 0.0),
    (301, None, 0, "refused", 0.0),  # a moved webhook is not followed
])
def test_retry_decision(status: int | None, retry_after: str | None, attempt: int, action: str,
                        delay: float) -> None:
    verdict = decide(status, retry_after, attempt, now=1_000_000.0)
    assert (verdict.action, verdict.delay_s) == (action, delay)


@pytest.mark.unit
def test_retry_after_forms() -> None:
    now = time.time()
    assert retry_after_s("2.5", now) == 2.5
    assert retry_after_s(formatdate(now + 30, usegmt=True), now) == pytest.approx(30, abs=1.01)
    assert retry_after_s(formatdate(now - 30, usegmt=True), now) == 0.0
    assert retry_after_s("soon", now) is None and retry_after_s(None, now) is None and retry_after_s("", now) is None
    assert [backoff(a) for a in range(9)] == [0.5, 1, 2, 4, 8, 16, 32, 60, 60]


@pytest.mark.unit
def test_secrets_of_a_webhook_are_scrubbed() -> None:
    h = hook(format="discord", url=f"https://discord.com/api/webhooks/1234/{DISCORD_TOKEN}")
    url = f"https://discord.com/api/webhooks/1234/{DISCORD_TOKEN}"
    text = f'{{"message": "Unknown Webhook", "url": "{url}"}} {DISCORD_TOKEN}'
    scrubbed = redact(text, h.secrets)
    assert DISCORD_TOKEN not in scrubbed and scrubbed.count("********") == 2
    j = hook(secret="k-123", token="t-456", url="https://user:pw-789@ops.example.org/in?key=q-0")
    assert redact("k-123 t-456 pw-789 key=q-0", j.secrets) == "******** ******** ******** ********"
    assert j.shown == "h (json, https://ops.example.org/…)"
    # a short path is no token: scrubbing "ops" would blank the word in every log line
    assert "ops" not in hook(url="https://x.example.org/ops").secrets


# ============================================================== integration: one alert's delivery
@pytest.fixture
def server() -> Any:
    with HookServer() as s:
        yield s


@pytest.mark.integration
async def test_sender_retries_5xx_429_and_timeouts_under_one_key(server: HookServer) -> None:
    server.plan("/in", by_attempt(Answer(500, "boom"), Answer(429, "slow down", {"Retry-After": "1"}),
                                  Answer(hang=True), Answer(200)))
    sender = WebhookSender(hook(url=server.url("/in"), secret="k", timeout_s=0.5), BASE)
    try:
        result = await sender.send(sender.render(ALERT, RAW))
    finally:
        await sender.close()
    got = server.received("/in")
    assert (result.delivered, result.attempts, result.status) == (True, 4, 200)
    assert [r.status for r in got] == [500, 429, None, 200]  # the hung one was never answered
    assert {r.key for r in got} == {"3f2a9c0d1e5b7a8c9d0e:1"}
    assert {r.body for r in got} == {RAW}  # every retry the same bytes
    assert {r.headers["x-skyfence-signature"] for r in got} == {sign("k", RAW)}
    gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
    assert gaps[0] >= RETRY_FIRST_S * 0.9  # backoff after the 500
    assert gaps[1] >= 0.95  # the 429's Retry-After: 1
    assert gaps[2] >= 0.5 + 2 * RETRY_FIRST_S * 0.9  # the timeout, then backoff


@pytest.mark.integration
async def test_sender_refusal_keeps_status_and_scrubbed_response(server: HookServer) -> None:
    path = f"/api/webhooks/1234/{DISCORD_TOKEN}"
    echo = f'{{"message": "Unknown Webhook", "code": 10015, "you_sent": "{path}"}}' + "x" * 5000
    server.plan(path, lambda r: Answer(404, echo))
    server.plan("/moved", lambda r: Answer(301, "", {"Location": server.url("/elsewhere")}))
    sender = WebhookSender(hook(format="discord", url=server.url(path)), BASE)
    moved = WebhookSender(hook(format="slack", url=server.url("/moved")), BASE)
    try:
        result = await sender.send(sender.render(ALERT, RAW))
        redirected = await moved.send(moved.render(ALERT, RAW))
    finally:
        await sender.close()
        await moved.close()
    assert (result.delivered, result.attempts, result.status) == (False, 1, 404)
    # the whole URL path is the secret (id and token): scrubbed as one
    assert result.response.startswith('{"message": "Unknown Webhook", "code": 10015, "you_sent": "/********"}xxx')
    assert DISCORD_TOKEN not in result.response
    assert len(result.response) == 1000
    assert (redirected.delivered, redirected.status) == (False, 301)
    assert server.received("/elsewhere") == []
