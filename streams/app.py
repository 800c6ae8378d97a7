"""The Faust application: one app per worker process, built from a ``Settings``.

This module owns turning settings into a ``faust.App`` (broker, credentials, store,
web server) and declaring the topics of ``streams.topics`` on it. Agents are attached
by ``streams.agents`` so that this module stays free of pipeline logic, and the app is
built on demand (never at import), so ``skyfence --help`` stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust

from streams.settings import Settings
from streams.topics import ALERTS, COVERAGE, DEADLETTER, MISSIONS, POSITIONS, RAW, TRACKS, TopicSpec

# An idle partition's fetch waits at the broker this long for data. aiokafka has one fetch
# in flight per broker, and skips partitions whose records are still being consumed: a fetch
# holding only idle partitions (alerts, mostly) blocked the next fetch for busy ones, and at
# Faust's fixed 1,500 ms positions stalled for up to 1.5 s (seen in bench_pipeline's live
# feed). 50 ms bounds that, at the price of ~20 empty fetches a second on a quiet stream.
FETCH_MAX_WAIT_MS = 50


def _prompt_consumer_class() -> type[Any]:
    """Faust's aiokafka consumer with ``FETCH_MAX_WAIT_MS`` instead of its fixed 1.5 s."""
    from faust.transport.drivers import aiokafka as driver

    class PromptConsumerThread(driver.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            # Read by AIOKafkaConsumer.start() when it builds its fetcher: the only way in, as
            # Faust passes the value as a literal.
            consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
            return consumer

    class PromptConsumer(driver.Consumer):
        def _new_consumer_thread(self) -> Any:
            return PromptConsumerThread(self, loop=self.loop, beacon=self.beacon)

    return PromptConsumer


class SkyfenceApp(faust.App):
    """faust.App whose worker consumer fetches promptly (see ``FETCH_MAX_WAIT_MS``)."""

    def _new_transport(self) -> Any:
        t: Any = super()._new_transport()
        t.Consumer = _prompt_consumer_class()  # this app's transport only, not the class
        return t


@dataclass
class Topics:
    raw: faust.TopicT
    positions: faust.TopicT
    tracks: faust.TopicT
    alerts: faust.TopicT
    deadletter: faust.TopicT
    coverage: faust.TopicT
    missions: faust.TopicT


def broker_credentials(settings: Settings) -> Any:
    """Faust credentials for TLS and/or SASL, or None for PLAINTEXT."""
    from streams.kafka_io import ssl_context

    proto = settings.kafka_security_protocol
    ctx = ssl_context(settings)
    if proto.startswith("SASL"):
        if settings.kafka_sasl_mechanism == "PLAIN":
            return faust.SASLCredentials(
                username=settings.kafka_sasl_username,
                password=settings.kafka_sasl_password.reveal(),
                ssl_context=ctx,
            )
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.reveal(),
            mechanism="SCRAM-SHA-512",
            ssl_context=ctx,
        )
    if ctx is not None:
        return faust.SSLCredentials(ctx)
    return None


def create_app(settings: Settings) -> tuple[faust.App, Topics]:
    # One folder per app id: Faust names the RocksDB files after the table alone, so two apps
    # sharing a data directory (a `skyfence rewind --app-id NEW` beside the live worker, a
    # benchmark phase after another) would open each other's state and its changelog offsets.
    data_dir = str(settings.resolve(settings.data_dir) / settings.app_id)
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    app = SkyfenceApp(
        settings.app_id,
        broker=settings.broker,
        broker_credentials=broker_credentials(settings),
        store=settings.store,
        datadir=data_dir,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        # Batches are large; Faust's default 4 KiB-record tuning would re-fetch constantly. 1 MiB per
        # partition: in a world catch-up the fetch responses and the records copied out of them set
        # the peak (827 MB at 8 MiB, 639-650 MB at 2 MiB; after the engine's chunked releases 503 MB
        # at 2 MiB, 490 MB at 1 MiB, one run each), and the rate stayed within run-to-run noise
        # (150-188k positions/s at 2 MiB, 159k at 1 MiB; bench/results/bench_pipeline_world.txt).
        consumer_max_fetch_size=1024 * 1024,
        # 100 records buffered per topic partition's stream (Faust's default 4096): a catch-up held
        # ~2,400 fetched position-batch records (~300 MB, measured with memray at the world
        # catch-up's peak) waiting for the track agent, which takes 50 at a time; at 256 (five
        # batches) memray still found 33 MB of them at the peak (518 MB), at 100 the peak was 503 MB.
        stream_buffer_maxsize=100,
        producer_max_request_size=settings.max_message_bytes * 2,
        # 5 ms: records sent within 5 ms share a produce request; at linger 0 the worker spent
        # ~15% of its CPU building small requests, and 5 ms is 2% of the 250 ms alert budget.
        producer_linger=0.005,
        # 512 KiB batches: aiokafka keeps one batch per partition queued behind the one in flight,
        # so a partition moves one batch per round trip; at Faust's 16 KiB a burst of track
        # updates or a state flush took ~40 round trips per partition, and alerts waited behind
        # them. Under the broker's default 1 MiB message.max.bytes, which caps a batch.
        producer_max_batch_size=512 * 1024,
        # 1000 records or 2 s between commits: bounds redelivery after a crash to ~2 s of input,
        # which the idempotent sinks absorb.
        broker_commit_every=1000,
        broker_commit_interval=2.0,
        # A worker that dies without leaving loses its partitions after the session timeout.
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        # A replay starts from the beginning of the topic for a fresh consumer group.
        consumer_auto_offset_reset="earliest",
        # 1 s: recovery should start promptly after a rebalance in tests and demos.
        stream_recovery_delay=1.0,
        web_in_thread=False,
    )
    topics = Topics(
        raw=_topic(app, RAW, settings),
        positions=_topic(app, POSITIONS, settings),
        tracks=_topic(app, TRACKS, settings),
        alerts=_topic(app, ALERTS, settings),
        deadletter=_topic(app, DEADLETTER, settings),
        coverage=_topic(app, COVERAGE, settings),
        missions=_topic(app, MISSIONS, settings),
    )
    return app, topics


def _topic(app: faust.App, spec: TopicSpec, settings: Settings) -> faust.TopicT:
    return app.topic(
        spec.name(settings),
        partitions=spec.partitions(settings),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
