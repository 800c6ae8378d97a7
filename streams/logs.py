"""Log output of skyfence processes: readable text by default, JSON lines on request.

This module owns the log format and the redaction of secrets: every configured
password, and every webhook's URL tokens and signing secret, is scrubbed from every record
before it is written, whatever logged it (our code, Faust, aiokafka, aiohttp or redis-py).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from streams.settings import Secret, Settings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("alert_id", "dead_letter_id", "icao24", "reason", "input_format", "transition"):
            if hasattr(record, key):
                doc[key] = getattr(record, key)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc).decode()


class RedactSecrets(logging.Filter):
    """Replaces each secret's text with ******** in the rendered message."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        msg = record.getMessage()
        redacted = msg
        for s in self.secrets:
            redacted = redacted.replace(s, "********")
        if redacted != msg:
            record.msg, record.args = redacted, None
        return True


def secrets_of(settings: Settings) -> list[str]:
    out = [getattr(settings, f).reveal() for f in ("kafka_sasl_password", "redis_password")
           if isinstance(getattr(settings, f), Secret)]
    from urllib.parse import urlsplit

    pw = urlsplit(settings.redis_url).password
    if pw:
        out.append(pw)
    webhooks = settings.webhooks.reveal() if isinstance(settings.webhooks, Secret) else str(settings.webhooks)
    if webhooks:  # their URLs carry tokens; parsed (aiohttp and all) only where webhooks are set
        from streams.sinks.notify import WebhookError, webhooks_of

        try:
            out.extend(s for hook in webhooks_of(settings) for s in hook.secrets)
        except WebhookError:
            pass  # a bad spec stops the worker in one line that names no value (agents.notify)
    # longest first: a secret that contains another is scrubbed whole
    return sorted({s for s in out if s}, key=len, reverse=True)


def logging_config(settings: Settings) -> dict[str, Any]:
    """A dictConfig for Faust's Worker (which owns the root logger once it starts)."""
    fmt = "json" if settings.log_format == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactSecrets, "secrets": secrets_of(settings)}},
        "formatters": {
            "text": {"format": "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"},
            "json": {"()": JsonFormatter},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": settings.log_level.upper(), "handlers": ["console"]},
        # aiokafka logs every coordinator retry at ERROR during a normal broker start; WARNING keeps real news.
        "loggers": {"aiokafka": {"level": "WARNING"}},
    }


def setup_logging(settings: Settings) -> None:
    """For processes that are not Faust workers (ingest, replay, analyze, …)."""
    import logging.config

    logging.config.dictConfig(logging_config(settings))
