"""The one settings object: every knob of skyfence, read from ``SKYFENCE_*`` variables.

This module owns configuration. Nothing else in the package reads ``os.environ``:
the CLI, the Faust app, the local stack, sinks and tests all receive a ``Settings``.
An unknown ``SKYFENCE_*`` variable or a malformed value is a ``SettingsError`` that
names the variable and the fix, so a typo never silently falls back to a default.
Secrets (passwords) are held as ``Secret`` so that ``repr``/logging never shows them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PREFIX = "SKYFENCE_"


def default_workdir() -> Path:
    """Where relative paths of the settings (stack_dir, data_dir) live when SKYFENCE_WORKDIR is
    empty: a per-user folder (XDG base directory spec: $XDG_DATA_HOME/skyfence, default
    ~/.local/share/skyfence). The package never looks for the repository it may have come from
    (an installed wheel has none); dev/run and dev/setup.sh set SKYFENCE_WORKDIR to the checkout
    so its git-ignored .cache/ holds the Kafka jars CI caches. Package data are resources."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "skyfence"


class SettingsError(ValueError):
    """A setting is unknown or malformed; the message names it and the fix."""


class Secret(str):
    """A string that never shows itself in repr/str formatting of containers or logs."""

    def __repr__(self) -> str:
        return "Secret('********')" if self else "Secret('')"

    def reveal(self) -> str:
        return str.__str__(self)

    def __str__(self) -> str:
        return "********" if self else ""


def _meta(env_doc: str, secret: bool = False) -> dict[str, Any]:
    return {"doc": env_doc, "secret": secret}


@dataclass(frozen=True)
class Settings:
    """All configuration. Field ``foo_bar`` is read from ``SKYFENCE_FOO_BAR``."""

    # --- Kafka -----------------------------------------------------------------------
    broker: str = field(
        default="kafka://127.0.0.1:9092",
        metadata=_meta("Kafka bootstrap servers, kafka://host:port[;host:port]"),
    )
    topic_prefix: str = field(
        default="skyfence", metadata=_meta("Prefix of every topic name; tests use a unique one per test")
    )
    # 8 partitions: lets up to 8 workers share the aircraft, still cheap on one broker.
    partitions: int = field(default=8, metadata=_meta("Partition count of per-aircraft topics"))
    replication_factor: int = field(default=1, metadata=_meta("Replication factor for created topics"))
    kafka_security_protocol: str = field(
        default="PLAINTEXT", metadata=_meta("PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    )
    kafka_sasl_mechanism: str = field(default="", metadata=_meta("PLAIN or SCRAM-SHA-512 when SASL is used"))
    kafka_sasl_username: str = field(default="", metadata=_meta("SASL user name"))
    kafka_sasl_password: Secret = field(default=Secret(""), metadata=_meta("SASL password", secret=True))
    kafka_ssl_cafile: str = field(default="", metadata=_meta("CA bundle for TLS to Kafka"))
    # 1 MiB: Kafka's own default message.max.bytes; a bigger ADS-B message is not a message.
    max_message_bytes: int = field(default=1_048_576, metadata=_meta("Largest accepted input message"))

    # --- Redis -----------------------------------------------------------------------
    redis_url: str = field(
        default="redis://127.0.0.1:6379/0",
        metadata=_meta("Redis URL (redis:// or rediss://), may carry user:password"),
    )
    redis_username: str = field(default="", metadata=_meta("Redis ACL user"))
    redis_password: Secret = field(default=Secret(""), metadata=_meta("Redis ACL password", secret=True))
    redis_prefix: str = field(
        default="skyfence", metadata=_meta("Prefix of every Redis key and channel; tests use a unique one")
    )
    # 100k entries: about a week of alerts on a busy desk, bounded memory in Redis.
    redis_stream_maxlen: int = field(default=100_000, metadata=_meta("Approximate cap of the alert stream"))

    # --- Faust worker ----------------------------------------------------------------
    app_id: str = field(default="skyfence", metadata=_meta("Faust app id (consumer group, table names)"))
    store: str = field(
        default="rocksdb://", metadata=_meta("Faust table store: rocksdb:// in production, memory:// in tests")
    )
    data_dir: str = field(
        default=".cache/worker", metadata=_meta("Faust data directory; RocksDB tables go in a folder per app id "
                                                "(relative: under the workdir)")
    )
    workdir: str = field(
        default="", metadata=_meta("Folder relative stack_dir/data_dir live in (empty: $XDG_DATA_HOME/skyfence, "
                                   "default ~/.local/share/skyfence; dev/run sets the checkout)")
    )
    # 20 s: how long the group waits for a worker that died without leaving (SIGKILL, power,
    # network) before its partitions move; Faust's 60 s left every partition of a crashed worker
    # unread for a minute, and a restarted worker waited that long for its own partitions. A
    # worker's loop never blocks near 20 s (a catch-up batch holds it ~0.3-0.6 s). 6-90 s: the
    # broker's group.min.session.timeout.ms, and Faust's request timeout, which it may not exceed.
    session_timeout_s: float = field(
        default=20.0, metadata=_meta("Seconds the consumer group waits for a silent worker before moving its "
                                     "partitions (crash failover time)")
    )
    web_host: str = field(default="127.0.0.1", metadata=_meta("Worker web server bind address"))
    web_port: int = field(default=6066, metadata=_meta("Worker web server port"))
    alert_policy: str = field(
        default="military", metadata=_meta("Which aircraft raise alerts: military (default) or all")
    )
    watchlist: str = field(default="", metadata=_meta("Comma-separated icao24 addresses that always alert"))
    # 2 s: receivers' clocks and paths disagree by a second or two. Every alert waits this long
    # (event time) for earlier positions that may still arrive; 0 alerts at once and refuses
    # out-of-order positions as late.
    reorder_tolerance_s: float = field(
        default=2.0,
        metadata=_meta("Event-time wait for out-of-order positions, in s; alerts wait as long (0: none)"),
    )
    # 12/50/100 nm: the approach buffers analysts quote (territorial sea width, ~6 and ~12 min out).
    rings_nm: str = field(
        default="12,50,100", metadata=_meta("Approach ring distances beyond the 12 nm line, in nm (buffers)")
    )
    # 100 nm: the outermost approach ring; a P-8 racetrack 30 nm off Baja is the core case.
    on_station_nm: float = field(
        default=100.0,
        metadata=_meta("An on-station pattern of a military/surveillance aircraft this close to Mexico's "
                       "sovereign airspace (nm) is an alert of its own"),
    )
    # 300 s: ADS-B reports twice a second; five minutes of silence while neighbours are heard is
    # not a coverage flicker.
    dark_after_s: float = field(
        default=300.0, metadata=_meta("Silence (s) after which an aircraft near the line counts as gone dark")
    )
    # 10 / 90 days: the window against the three months before it.
    activity_window_days: int = field(
        default=10, metadata=_meta("Mission ledger: latest window compared with the baseline, in days")
    )
    activity_baseline_days: int = field(
        default=90, metadata=_meta("Mission ledger: baseline window before the latest window, in days")
    )
    fences_file: str = field(default="", metadata=_meta("GeoJSON file of user fences (name, altitude band)"))
    aircraft_csv: str = field(
        default="", metadata=_meta("plane-alert-db style CSV of aircraft to classify (overrides built-in)")
    )
    rules_file: str = field(
        default="", metadata=_meta("TOML file of alert rules (match, then severity / channel / exclude); "
                                   "see streams/core/rules.py and `skyfence rules check`")
    )
    webhooks: Secret = field(
        default=Secret(""),
        metadata=_meta("Notification webhooks: a JSON list of {name, format (json, ntfy, discord or slack), url, "
                       "secret, token, min_severity, categories, rules, channels}; see streams/sinks/notify.py",
                       secret=True),
    )
    map_url: str = field(
        default="", metadata=_meta("Base URL of the live map in notification links (empty: http://WEB_HOST:WEB_PORT)")
    )
    log_level: str = field(default="info", metadata=_meta("debug, info, warning or error"))
    log_format: str = field(default="text", metadata=_meta("text or json"))

    # --- Local stack (no Docker) -----------------------------------------------------
    stack_dir: str = field(
        default=".cache/stack", metadata=_meta("Where the local stack keeps data, logs, pids (relative: under the "
                                               "workdir; the Kafka jars go in <workdir>/.cache/kafka)")
    )
    # 4.1: current stable Kafka 4 line, KRaft only; verified with aiokafka 0.14 and Faust 0.15.
    kafka_version: str = field(default="4.1.1", metadata=_meta("Kafka version resolved from Maven Central"))
    kafka_port: int = field(default=9092, metadata=_meta("Local stack broker port (0 = pick a free one)"))
    redis_port: int = field(default=6379, metadata=_meta("Local stack Redis port (0 = pick a free one)"))
    # 512 MiB: plenty for a single-node dev broker on a 2-core machine, leaves room for tests.
    kafka_heap: str = field(default="512m", metadata=_meta("JVM heap of the local broker"))
    # Tests: reuse an already running stack instead of starting one per session.
    test_stack: str = field(
        default="", metadata=_meta("Tests: 'kafka=host:port,redis=host:port' of a running stack to reuse")
    )

    # ------------------------------------------------------------------------------------
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in env.items():
            if not key.startswith(PREFIX):
                continue
            name = key[len(PREFIX) :].lower()
            if name not in known:
                raise SettingsError(
                    f"unknown setting {key}; known settings: "
                    + ", ".join(PREFIX + n.upper() for n in sorted(known))
                )
            values[name] = _convert(known[name], key, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name, value in list(values.items()):
            if name not in known:
                raise SettingsError(f"unknown setting {name}")
            if known[name].type in ("Secret", Secret) and not isinstance(value, Secret):
                values[name] = Secret(str(value))
        settings = cls(**values)
        settings.validate()
        return settings

    def replace(self, **changes: Any) -> Settings:
        s = dataclasses.replace(self, **changes)
        s.validate()
        return s

    def validate(self) -> None:
        for server in self.bootstrap_servers:
            host, _, port = server.rpartition(":")
            if not host or not port.isdigit():
                raise SettingsError(
                    f"SKYFENCE_BROKER={self.broker!r} is not a list of host:port; "
                    "set it like kafka://127.0.0.1:9092"
                )
        parts = urlsplit(self.redis_url)
        if parts.scheme not in ("redis", "rediss", "unix") or (parts.scheme != "unix" and not parts.hostname):
            raise SettingsError(
                f"SKYFENCE_REDIS_URL={_mask_url(self.redis_url)!r} is not a Redis URL; "
                "set it like redis://127.0.0.1:6379/0"
            )
        if self.alert_policy not in ("military", "all"):
            raise SettingsError(
                f"SKYFENCE_ALERT_POLICY={self.alert_policy!r} is not one of: military, all"
            )
        if not 0.0 <= self.reorder_tolerance_s <= 60.0:
            raise SettingsError(
                f"SKYFENCE_REORDER_TOLERANCE_S={self.reorder_tolerance_s!r} must be between 0 and 60 seconds"
            )
        if not 6.0 <= self.session_timeout_s <= 90.0:
            raise SettingsError(
                f"SKYFENCE_SESSION_TIMEOUT_S={self.session_timeout_s!r} must be between 6 and 90 seconds "
                "(the broker refuses less than its group.min.session.timeout.ms, 6 s by default; Faust refuses "
                "more than its 90 s request timeout)"
            )
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"SKYFENCE_LOG_FORMAT={self.log_format!r} is not one of: text, json")
        if not (self.store.startswith("memory://") or self.store.startswith("rocksdb://")):
            raise SettingsError(f"SKYFENCE_STORE={self.store!r} is not memory:// or rocksdb://")
        try:
            rings = self.rings
        except ValueError:
            raise SettingsError(
                f"SKYFENCE_RINGS_NM={self.rings_nm!r} is not a list of numbers like 12,50,100"
            ) from None
        if any(r <= 0 for r in rings) or list(rings) != sorted(rings):
            raise SettingsError(f"SKYFENCE_RINGS_NM={self.rings_nm!r} must be increasing positive distances")
        for name in ("fences_file", "aircraft_csv", "rules_file"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise SettingsError(f"SKYFENCE_{name.upper()}={path!r}: no such file")
        if self.rules_file:
            # A bad rules file fails at start, in one line naming the rule and the field.
            from streams.core.rules import RulesError, load_rules

            try:
                load_rules(self.rules_file)
            except RulesError as e:
                raise SettingsError(f"SKYFENCE_RULES_FILE: {e}") from None
        map_parts = urlsplit(self.map_url)
        if self.map_url and (map_parts.scheme not in ("http", "https") or not map_parts.netloc):
            raise SettingsError(f"SKYFENCE_MAP_URL={self.map_url!r} is not an http(s) URL like https://map.example.org")
        if not 0.0 < self.on_station_nm <= 1000.0:
            raise SettingsError(f"SKYFENCE_ON_STATION_NM={self.on_station_nm!r} must be between 0 and 1000 nm")
        if not 30.0 <= self.dark_after_s <= 7200.0:
            raise SettingsError(f"SKYFENCE_DARK_AFTER_S={self.dark_after_s!r} must be between 30 and 7200 seconds")
        if not (1 <= self.activity_window_days <= 365 and 1 <= self.activity_baseline_days <= 3650):
            raise SettingsError("SKYFENCE_ACTIVITY_WINDOW_DAYS must be 1..365 and "
                                "SKYFENCE_ACTIVITY_BASELINE_DAYS 1..3650")
        if self.partitions < 1:
            raise SettingsError("SKYFENCE_PARTITIONS must be at least 1")
        if self.kafka_security_protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            raise SettingsError(
                f"SKYFENCE_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol!r} is not one of "
                "PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
            )
        if self.kafka_security_protocol.startswith("SASL") and self.kafka_sasl_mechanism not in (
            "PLAIN",
            "SCRAM-SHA-512",
        ):
            raise SettingsError(
                "SKYFENCE_KAFKA_SASL_MECHANISM must be PLAIN or SCRAM-SHA-512 when SASL is used"
            )

    # --- derived values ----------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> list[str]:
        url = self.broker
        for scheme in ("kafka://", "aiokafka://"):
            if url.startswith(scheme):
                url = url[len(scheme) :]
        return [s.strip() for s in url.replace(";", ",").split(",") if s.strip()]

    @property
    def bootstrap(self) -> str:
        return ",".join(self.bootstrap_servers)

    @property
    def heartbeat_interval_s(self) -> float:
        """Consumer-group heartbeats: a third of the session timeout (Kafka's rule), at most 3 s
        (Faust's and aiokafka's default)."""
        return min(3.0, self.session_timeout_s / 3.0)

    @property
    def rings(self) -> tuple[float, ...]:
        return tuple(float(x) for x in self.rings_nm.split(",") if x.strip())

    @property
    def watchlist_set(self) -> frozenset[str]:
        return frozenset(a.strip().lower() for a in self.watchlist.split(",") if a.strip())

    def topic(self, short: str) -> str:
        return f"{self.topic_prefix}.{short}"

    @property
    def workdir_path(self) -> Path:
        """The folder relative paths of these settings resolve under (see :func:`default_workdir`)."""
        return Path(self.workdir).expanduser() if self.workdir else default_workdir()

    def resolve(self, path: str) -> Path:
        """A path setting as an absolute path: relative ones live under :attr:`workdir_path`."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.workdir_path / p

    def redis_key(self, *parts: str) -> str:
        return ":".join((self.redis_prefix, *parts))

    def public_items(self) -> list[tuple[str, str, str]]:
        """(variable, value, doc) for every setting, secrets masked: safe to print."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            shown = "********" if f.metadata.get("secret") and value else str(value)
            if f.name == "redis_url":
                shown = _mask_url(str(value))
            out.append((PREFIX + f.name.upper(), shown, str(f.metadata.get("doc", ""))))
        return out

    def to_env(self) -> dict[str, str]:
        """SKYFENCE_* variables that reproduce these settings in a child process (secrets included)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[PREFIX + f.name.upper()] = value.reveal() if isinstance(value, Secret) else str(value)
        return out

    def __repr__(self) -> str:
        inner = ", ".join(f"{k[len(PREFIX):].lower()}={v!r}" for k, v, _ in self.public_items())
        return f"Settings({inner})"


def child_env(settings: Settings | None = None) -> dict[str, str]:
    """Environment for a child skyfence process: ours without any ``SKYFENCE_*`` variable,
    plus ``settings`` when given, so the child sees exactly these settings and no stray ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    if settings is not None:
        env.update(settings.to_env())
    return env


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":********@")
        return parts._replace(netloc=netloc).geturl()
    return url


def _convert(f: dataclasses.Field[Any], key: str, raw: str) -> Any:
    kind = f.type
    if kind in ("int", int):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{key}={raw!r} is not a whole number") from None
    if kind in ("float", float):
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{key}={raw!r} is not a number") from None
    if kind in ("bool", bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{key}={raw!r} is not true/false")
    if kind in ("Secret", Secret):
        return Secret(raw)
    return raw


def settings_doc_table() -> str:
    """The README's configuration table, generated so it cannot drift from the code."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    defaults = Settings()
    for var, value, doc in defaults.public_items():
        rows.append(f"| `{var}` | `{value}` | {doc} |")
    return "\n".join(rows)
