"""Prometheus metrics of every long-running skyfence process.

This module owns the metric names, their labels and their meaning (the README's
metrics table is generated from ``METRICS_DOC``). The exposition format is
prometheus-client's, never hand-written. Each process has one registry, so tests can
build a fresh one and the worker serves it at ``/metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Latency buckets from 5 ms to 10 s: the p99 goal is 250 ms, so resolution is finest there.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Kernel batch time from 50 µs to 1 s: batches of a few to a few thousand positions.
KERNEL_BUCKETS = (5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 1.0)


@dataclass
class Metrics:
    registry: CollectorRegistry
    positions_in: Counter
    positions_processed: Counter
    positions_rejected: Counter
    dead_letters: Counter
    consumer_lag: Gauge
    tracked_aircraft: Gauge
    alerts: Counter
    redis_writes: Counter
    redis_duplicates: Counter
    redis_conflicts: Counter
    redis_failures: Counter
    kernel_seconds: Histogram
    alert_latency: Histogram
    state_writes: Counter

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


METRICS_DOC: list[tuple[str, str, str]] = [
    ("skyfence_positions_in_total", "format, stage", "positions received (stage=ingest or worker)"),
    ("skyfence_positions_processed_total", "", "positions the worker tracked and scored"),
    ("skyfence_positions_rejected_total", "reason", "positions refused by the track gate (late, duplicate, …)"),
    ("skyfence_dead_letters_total", "format, reason", "inputs sent to the dead-letter topic"),
    ("skyfence_consumer_lag", "topic, partition", "records behind the end of each assigned partition"),
    ("skyfence_tracked_aircraft", "", "aircraft held in track state by this worker"),
    ("skyfence_alerts_total", "transition, severity", "alerts raised"),
    ("skyfence_redis_writes_total", "", "alerts newly written to Redis"),
    ("skyfence_redis_duplicates_total", "", "alerts Redis already had (idempotent re-delivery)"),
    ("skyfence_redis_conflicts_total", "",
     "alerts re-sent under an event_id Redis already had, with different content (kept the first)"),
    ("skyfence_redis_failures_total", "", "failed Redis writes (each is retried)"),
    ("skyfence_geofence_batch_seconds", "", "geofence kernel time per batch"),
    ("skyfence_alert_latency_seconds", "", "Kafka timestamp of the position batch to alert written in Redis"),
    ("skyfence_state_writes_total", "",
     "aircraft states written to the state table (once per changed aircraft a flush)"),
]


def create_metrics(registry: CollectorRegistry | None = None) -> Metrics:
    reg = registry or CollectorRegistry()
    return Metrics(
        registry=reg,
        positions_in=Counter(
            "skyfence_positions_in", "positions received", ["format", "stage"], registry=reg
        ),
        positions_processed=Counter("skyfence_positions_processed", "positions tracked and scored", registry=reg),
        positions_rejected=Counter(
            "skyfence_positions_rejected", "positions refused by the track gate", ["reason"], registry=reg
        ),
        dead_letters=Counter(
            "skyfence_dead_letters", "inputs sent to the dead-letter topic", ["format", "reason"], registry=reg
        ),
        consumer_lag=Gauge("skyfence_consumer_lag", "records behind", ["topic", "partition"], registry=reg),
        tracked_aircraft=Gauge("skyfence_tracked_aircraft", "aircraft in track state", registry=reg),
        alerts=Counter("skyfence_alerts", "alerts raised", ["transition", "severity"], registry=reg),
        redis_writes=Counter("skyfence_redis_writes", "alerts newly written to Redis", registry=reg),
        redis_duplicates=Counter("skyfence_redis_duplicates", "alerts Redis already had", registry=reg),
        redis_conflicts=Counter("skyfence_redis_conflicts", "alerts re-sent with different content",
                                registry=reg),
        redis_failures=Counter("skyfence_redis_failures", "failed Redis writes (retried)", registry=reg),
        kernel_seconds=Histogram(
            "skyfence_geofence_batch_seconds", "geofence kernel time per batch", buckets=KERNEL_BUCKETS, registry=reg
        ),
        alert_latency=Histogram(
            "skyfence_alert_latency_seconds",
            "position batch Kafka timestamp to alert in Redis",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        ),
        state_writes=Counter("skyfence_state_writes", "aircraft states written to the state table", registry=reg),
    )


def metrics_doc_table() -> str:
    rows = ["| metric | labels | meaning |", "|---|---|---|"]
    rows += [f"| `{name}` | {labels} | {doc} |" for name, labels, doc in METRICS_DOC]
    return "\n".join(rows)
