"""A private secured stack: Kafka with a SASL_SSL listener (SCRAM-SHA-512, PLAIN), Redis with TLS and an ACL user.

The CA and the server certificate are generated here with ``openssl`` (self-signed,
valid two days, SAN IP:127.0.0.1); nothing secret is committed. The stack replaces
the session ``stack`` fixture for tests under ``tests/security``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streams.settings import Secret, Settings
from streams.stack import LocalStack, StackSecurity
from tests.paths import REPO_ROOT

KAFKA_USER, KAFKA_PASSWORD = "alice", "kafka-Pw-7c1f9e2b"
REDIS_USER, REDIS_PASSWORD = "skyfence", "redis-Pw-0a8d3c55"


@dataclass
class SecureStack:
    local: LocalStack
    ca: Path
    # settings a correctly configured client uses (SCRAM-SHA-512 over TLS, Redis ACL user over TLS)
    good: Settings


def make_ca(d: Path) -> tuple[Path, Path, Path]:
    """(server certificate, server key, CA certificate) as PEM files."""
    d.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=skyfence-test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj",
        "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    for key in ("ca.key", "server.key"):
        os.chmod(d / key, 0o600)
    return d / "server.pem", d / "server.key", d / "ca.pem"


@pytest.fixture(scope="module")
def secure_stack(base_settings: Settings) -> Iterator[SecureStack]:
    run_dir = REPO_ROOT / ".cache" / f"secure-stack-{os.getpid()}-{time.monotonic_ns()}"
    cert, key, ca = make_ca(run_dir / "tls")
    security = StackSecurity(kafka_users={KAFKA_USER: KAFKA_PASSWORD},
                             kafka_tls=(str(cert), str(key), str(ca)),
                             redis_users={REDIS_USER: REDIS_PASSWORD},
                             redis_tls=(str(cert), str(key), str(ca)))
    local = LocalStack(base_settings.replace(kafka_port=0, redis_port=0), run_dir, security)
    local.up(log=lambda m: print(m, file=sys.stderr))
    try:
        good = local.settings_for_clients().replace(
            redis_url=f"{local.redis_url}?ssl_ca_certs={ca}",
            redis_username=REDIS_USER,
            redis_password=Secret(REDIS_PASSWORD),
            kafka_security_protocol="SASL_SSL",
            kafka_ssl_cafile=str(ca),
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username=KAFKA_USER,
            kafka_sasl_password=Secret(KAFKA_PASSWORD),
        )
        yield SecureStack(local, ca, good)
    finally:
        local.down()
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(secure_stack: SecureStack) -> Settings:
    """Overrides the session stack: tests here run against the secured one."""
    return secure_stack.good
