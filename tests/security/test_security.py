"""Security: SASL to Kafka, ACL user and TLS to Redis, secrets kept out of every output.

The end-to-end tests run on a private broker whose only client listener is SASL_SSL
(SCRAM-SHA-512 and PLAIN over TLS, self-signed CA made per run) and a Redis that
speaks only TLS and has no passwordless user. Right credentials carry real flights from replay to alerts; wrong
ones stop the command within seconds with one line that names what failed and never
the secret.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from streams.settings import Secret, Settings, child_env
from streams.sinks.redis_sink import redis_client
from tests.e2e.test_pipeline import BOEING, TRACE, analyze, skyfence
from tests.paths import REPO_ROOT
from tests.security.conftest import KAFKA_PASSWORD, REDIS_PASSWORD, SecureStack

pytestmark = pytest.mark.security

SECRETS = (KAFKA_PASSWORD, REDIS_PASSWORD)
# 20 s: a refused login is answered in milliseconds; the rest is interpreter and numba cache start-up.
FAIL_FAST_S = 20.0


def run_cli(settings: Settings, *args: str, timeout: float = 120) -> tuple[int, str, float]:
    env = child_env(settings)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "streams.cli", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0


def assert_one_clear_line(rc: int, out: str, elapsed: float, names: str) -> None:
    assert rc == 2, f"exit {rc} (a refused connection is a configuration error: exit 2):\n{out}"
    assert elapsed < FAIL_FAST_S, f"took {elapsed:.1f} s to fail:\n{out}"
    assert "Traceback" not in out, out
    assert names in out, out
    for secret in SECRETS:
        assert secret not in out, "a password was printed"
    error_lines = [ln for ln in out.splitlines() if ln.startswith("skyfence:")]
    assert len(error_lines) == 1, out


async def stream_alerts(settings: Settings, expect: int, timeout: float = 90.0) -> list[dict]:
    client = redis_client(settings)
    try:
        deadline = time.monotonic() + timeout
        entries: list = []
        while time.monotonic() < deadline:
            entries = await client.xrange(settings.redis_key("alerts"))
            if len(entries) >= expect:
                await asyncio.sleep(2.0)  # anything extra (a duplicate) would arrive now
                entries = await client.xrange(settings.redis_key("alerts"))
                break
            await asyncio.sleep(0.25)
        return [orjson.loads(fields[b"alert"]) for _id, fields in entries]
    finally:
        await client.aclose()


def _listen_addresses(port: int) -> set[str]:
    """Local addresses listening on ``port``, from /proc/net/tcp (hex, little-endian IPv4)."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, hport = local.split(":")
            if state == "0A" and int(hport, 16) == port:
                if len(addr) == 8:
                    out.add(".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0)))
                else:
                    out.add(addr)
    return out


async def test_right_credentials_work_end_to_end(secure_stack: SecureStack, settings: Settings,
                                                 start_worker) -> None:
    s = settings.replace(alert_policy="all")
    assert s.kafka_security_protocol == "SASL_SSL" and s.redis_url.startswith("rediss://")
    worker = start_worker(settings_=s)
    # one replay logs in with SCRAM-SHA-512, the other with PLAIN
    scram = skyfence(s, "replay", str(TRACE), "--format", "trace", "--speed", "max")
    plain = skyfence(s.replace(kafka_sasl_mechanism="PLAIN"), "replay", str(BOEING), "--format", "traffic-json",
                     "--speed", "max")
    expected = analyze(s, str(TRACE), "trace") + analyze(s, str(BOEING), "traffic-json")
    delivered = await stream_alerts(s, expect=len(expected))
    print(f"\n[security] Kafka SASL_SSL SCRAM-SHA-512 + PLAIN, Redis ACL over TLS: expected {len(expected)} alerts, "
          f"delivered {len(delivered)}")
    assert sorted(a["event_id"] for a in delivered) == sorted(a["event_id"] for a in expected)

    # a subscriber with the ACL user over TLS reads them through the CLI
    rc, out, _ = run_cli(s, "alerts", "--json", "--group", "sec-test", "--limit", str(len(expected)))
    assert rc == 0, out
    assert len([ln for ln in out.splitlines() if ln.startswith("{")]) == len(expected)

    # the web page: bound to loopback by default, and read-only
    assert _listen_addresses(s.web_port) == {"127.0.0.1"}
    async with aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{s.web_port}"
        for path in ("/", "/map.js", "/api/zones", "/api/aircraft", "/api/alerts", "/health/live", "/metrics"):
            async with http.get(base + path) as resp:
                assert resp.status == 200, path
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                async with http.request(method, base + path, data=b"x") as resp:
                    assert resp.status == 405, (method, path, resp.status)

    text = worker.log_text() + scram.stdout + scram.stderr + plain.stdout + plain.stderr + out
    for secret in SECRETS:
        assert secret not in text, "a password reached a log or an output"


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"kafka_sasl_password": Secret("wrong-password")}, "Kafka SASL authentication failed for user 'alice'"),
        ({"kafka_sasl_mechanism": "PLAIN", "kafka_sasl_password": Secret("wrong-password")},
         "Kafka SASL authentication failed for user 'alice' (PLAIN)"),
        ({"kafka_sasl_username": "mallory"}, "Kafka SASL authentication failed for user 'mallory'"),
        ({"kafka_security_protocol": "PLAINTEXT", "kafka_sasl_mechanism": ""}, "requires SASL or TLS"),
        ({"kafka_security_protocol": "SASL_PLAINTEXT"}, "closed our SASL_PLAINTEXT connection"),
        ({"kafka_ssl_cafile": ""}, "Kafka TLS handshake"),
    ],
    ids=["scram-wrong-password", "plain-wrong-password", "unknown-user", "plaintext-client", "no-tls-client",
         "tls-without-our-ca"],
)
def test_wrong_kafka_credentials_fail_fast(settings: Settings, change: dict, names: str) -> None:
    bad = settings.replace(**change)
    rc, out, elapsed = run_cli(bad, "replay", str(BOEING), "--format", "traffic-json", "--speed", "max")
    print(f"\n[security] replay with {sorted(change)} -> exit {rc} in {elapsed:.1f} s: {out.strip()[-300:]}")
    assert_one_clear_line(rc, out, elapsed, names)


def test_worker_refuses_to_start_with_wrong_kafka_password(settings: Settings) -> None:
    bad = settings.replace(kafka_sasl_password=Secret("wrong-password"))
    rc, out, elapsed = run_cli(bad, "worker")
    print(f"\n[security] worker, wrong Kafka password -> exit {rc} in {elapsed:.1f} s: {out.strip()[-300:]}")
    assert_one_clear_line(rc, out, elapsed, "Kafka SASL authentication failed for user 'alice'")


@pytest.mark.parametrize("command", ["worker", "alerts"])
def test_wrong_redis_password_fails_fast(settings: Settings, command: str) -> None:
    bad = settings.replace(redis_password=Secret("wrong-password"))
    rc, out, elapsed = run_cli(bad, command)
    print(f"\n[security] {command}, wrong Redis password -> exit {rc} in {elapsed:.1f} s: {out.strip()[-300:]}")
    assert_one_clear_line(rc, out, elapsed, "Redis authentication failed for user 'skyfence'")


def test_redis_tls_without_the_ca_is_refused(secure_stack: SecureStack, settings: Settings) -> None:
    bad = settings.replace(redis_url=secure_stack.local.redis_url)  # rediss:// without our CA
    rc, out, elapsed = run_cli(bad, "alerts")
    print(f"\n[security] alerts, Redis TLS without CA -> exit {rc} in {elapsed:.1f} s: {out.strip()[-300:]}")
    assert_one_clear_line(rc, out, elapsed, "Redis TLS handshake")
