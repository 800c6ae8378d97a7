"""``skyfence rewind``: replay from Kafka itself, by time.

This module owns setting a consumer group's committed offsets on the positions topic
to the first record at or after a time (Kafka's offsets-for-times), so a worker started
with that group (``SKYFENCE_APP_ID``) re-runs the pipeline from then: "re-run the
afternoon". The group must not have live members; a fresh app id is the clean way,
because the worker's per-aircraft state table (its changelog is named after the app id)
then starts empty instead of carrying state from the future. Alert ids are derived
from event time, so alerts the re-run reproduces de-duplicate in Redis.

The group's offsets on the alerts topic are set to its end: the Redis sink agent (same
group) has already delivered the alerts of before, and only the re-run's alerts should
flow to Redis from the rewound group.
"""

from __future__ import annotations

from typing import Any

from streams.settings import Settings, SettingsError


async def rewind_group(settings: Settings, group: str, t_from: float) -> dict[int, int]:
    """Commit, for ``group``, the offset of the first positions record at or after ``t_from`` (Kafka
    record timestamp, i.e. ingest time) on every partition (the end offset where nothing is that
    late), and the end offsets of the alerts topic. Returns positions partition -> offset."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaError
    from aiokafka.structs import OffsetAndMetadata

    from streams.kafka_io import From, client_kwargs, find_partitions
    from streams.topics import ALERTS, POSITIONS

    # the start-offset step of kafka_io.TopicReader, on a probe consumer that reads no records
    probe = AIOKafkaConsumer(**client_kwargs(settings), group_id=None, enable_auto_commit=False)
    await probe.start()
    try:
        tps = await find_partitions(probe, settings, [POSITIONS.name(settings)])
        offsets = await From.time(t_from).offsets(probe, tps)
        alert_tps = await find_partitions(probe, settings, [ALERTS.name(settings)], missing_ok=True)
        alert_ends = await From.end().offsets(probe, alert_tps)
    finally:
        await probe.stop()
    # Committing with an assigned (not subscribed) consumer of the group writes the offsets
    # without joining the group, so it cannot steal partitions; the broker refuses it while the
    # group has live members (generation mismatch), which is the safety check we want.
    committer = AIOKafkaConsumer(**client_kwargs(settings), group_id=group, enable_auto_commit=False)
    await committer.start()
    try:
        committer.assign([*tps, *alert_tps])
        commit: dict[Any, OffsetAndMetadata] = {tp: OffsetAndMetadata(off, "")
                                                for tp, off in [*offsets.items(), *alert_ends.items()]}
        try:
            await committer.commit(commit)
        except KafkaError as exc:
            raise SettingsError(
                f"could not set offsets of consumer group {group!r} ({type(exc).__name__}); stop its workers "
                "first, or rewind a fresh group with --app-id"
            ) from None
    finally:
        await committer.stop()
    return {tp.partition: off for tp, off in offsets.items()}
