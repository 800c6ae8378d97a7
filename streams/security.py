"""Connection checks that turn a refused credential into one clear line.

This module owns diagnosing *why* a Kafka or Redis connection fails when security is
configured: aiokafka reports a rejected SASL login only as "Unable to bootstrap", and
redis-py as a generic connection error, so a worker with a wrong password would
otherwise retry forever or print a traceback. The checks here name what failed
(Kafka SASL, Kafka TLS, Redis auth, Redis TLS), the user and the address, and never
the secret. Callers: ``streams.kafka_io.ensure_topics`` (every Kafka client command
and the worker), ``streams.agents.attach_agents`` (the worker, before it joins) and
``streams.sinks.subscriber``.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any
from urllib.parse import urlsplit

from streams.settings import Settings, SettingsError, _mask_url

# 5 s: a broker or Redis on a LAN answers in milliseconds; a wrong address should not hang a command.
CHECK_TIMEOUT_S = 5.0


class ConnectionRefusedByPeer(SettingsError):
    """Kafka or Redis refused our credentials or TLS; the message names which and for whom."""


def _redact(text: str, settings: Settings) -> str:
    for secret in (settings.kafka_sasl_password.reveal(), settings.redis_password.reveal(),
                   urlsplit(settings.redis_url).password or ""):
        if secret:
            text = text.replace(secret, "********")
    return text


async def kafka_failure(settings: Settings) -> str | None:
    """Why the broker refuses us (SASL, TLS, protocol mismatch), or None if it does not."""
    from aiokafka.conn import create_conn
    from aiokafka.errors import KafkaError, UnsupportedSaslMechanismError

    from streams.kafka_io import client_kwargs

    kw = client_kwargs(settings)
    conn_kw: dict[str, Any] = {k: v for k, v in kw.items() if k != "bootstrap_servers"}
    conn_kw["request_timeout_ms"] = int(CHECK_TIMEOUT_S * 1000)
    for server in settings.bootstrap_servers:
        host, _, port = server.rpartition(":")
        if settings.kafka_security_protocol == "PLAINTEXT":
            # Called after aiokafka failed: if the port answers TCP, something is there that
            # does not speak plain Kafka to us, which on a broker means a SASL or TLS listener.
            if _tcp_open(host, int(port)):
                return (f"Kafka broker at {server} answers but closed our PLAINTEXT connection; it probably "
                        "requires SASL or TLS: set SKYFENCE_KAFKA_SECURITY_PROTOCOL and the SASL settings")
            continue
        try:
            conn = await asyncio.wait_for(create_conn(host, int(port), **conn_kw), CHECK_TIMEOUT_S)
        except ssl.SSLError as exc:
            return f"Kafka TLS handshake with {server} failed ({exc.reason or exc}); check SKYFENCE_KAFKA_SSL_CAFILE"
        except UnsupportedSaslMechanismError as exc:
            return (f"Kafka SASL mechanism {settings.kafka_sasl_mechanism} is not enabled on {server} ({exc}); "
                    "check SKYFENCE_KAFKA_SASL_MECHANISM")
        except KafkaError as exc:
            name = type(exc).__name__
            if "Sasl" in name or "Authentication" in name:
                return (f"Kafka SASL authentication failed for user {settings.kafka_sasl_username!r} "
                        f"({settings.kafka_sasl_mechanism}) at {server}: {_redact(str(exc), settings)}; "
                        "check SKYFENCE_KAFKA_SASL_USERNAME and SKYFENCE_KAFKA_SASL_PASSWORD")
            if _tcp_open(host, int(port)):
                return (f"Kafka broker at {server} answers but closed our {settings.kafka_security_protocol} "
                        f"connection ({_redact(str(exc), settings)}); check SKYFENCE_KAFKA_SECURITY_PROTOCOL "
                        "(SASL_SSL vs SASL_PLAINTEXT)")
            continue  # unreachable server: not a security failure, the caller's own error says so
        except (OSError, TimeoutError):
            continue
        conn.close()
    return None


def _tcp_open(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=CHECK_TIMEOUT_S):
            return True
    except OSError:
        return False


def redis_failure(settings: Settings) -> str | None:
    """Why Redis refuses us (ACL user/password, TLS), or None if it does not (or is simply down)."""
    import redis
    import redis.exceptions

    kwargs: dict[str, Any] = {"socket_timeout": CHECK_TIMEOUT_S, "socket_connect_timeout": CHECK_TIMEOUT_S}
    if settings.redis_username:
        kwargs["username"] = settings.redis_username
    if settings.redis_password:
        kwargs["password"] = settings.redis_password.reveal()
    where = _mask_url(settings.redis_url)
    client = redis.Redis.from_url(settings.redis_url, **kwargs)
    try:
        client.ping()
    except (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError) as exc:
        user = settings.redis_username or urlsplit(settings.redis_url).username or "default"
        return (f"Redis authentication failed for user {user!r} at {where}: {_redact(str(exc), settings)}; "
                "check SKYFENCE_REDIS_USERNAME and SKYFENCE_REDIS_PASSWORD")
    except redis.exceptions.ResponseError as exc:
        if "NOAUTH" in str(exc) or "NOPERM" in str(exc):
            return (f"Redis at {where} requires an ACL user: {_redact(str(exc), settings)}; "
                    "set SKYFENCE_REDIS_USERNAME and SKYFENCE_REDIS_PASSWORD")
        return None
    except redis.exceptions.ConnectionError as exc:
        cause = exc.__cause__ or exc.__context__
        text = str(exc)
        if isinstance(cause, ssl.SSLError) or "SSL" in text or "certificate" in text:
            return f"Redis TLS handshake with {where} failed: {_redact(text, settings)}"
        return None  # down or unreachable: the sink waits for it, by design
    finally:
        client.close()
    return None


def redis_unreachable(settings: Settings, exc: Exception) -> SettingsError:
    """The one-line error for a Redis that does not answer at all."""
    return SettingsError(f"cannot reach Redis at SKYFENCE_REDIS_URL={_mask_url(settings.redis_url)}: "
                         f"{_redact(str(exc), settings)}")


def check_redis(settings: Settings) -> None:
    """Raise one clear line if Redis refuses our credentials or TLS; Redis being down is fine."""
    reason = redis_failure(settings)
    if reason:
        raise ConnectionRefusedByPeer(reason)


async def check_kafka(settings: Settings) -> None:
    """Raise one clear line if the broker refuses our credentials or TLS."""
    reason = await kafka_failure(settings)
    if reason:
        raise ConnectionRefusedByPeer(reason)
