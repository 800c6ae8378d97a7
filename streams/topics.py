"""Every Kafka topic skyfence uses, declared once: name, key, partitions and schema.

This module owns the topic catalogue. Faust agents, the ingest/replay producers, the
``stack status`` command and the tests all read topic facts from here, so a topic's
key or schema cannot differ between the producer and the consumer.

Per-aircraft topics are partitioned by icao24. Positions travel in *batches* (one
Kafka record holds many positions of aircraft that hash to the same partition):
Faust's per-record overhead caps a worker near 15k records/s, while the pipeline must
sustain 100k positions/s. The partition of a batch is chosen with Kafka's own murmur2
partitioner over the icao24 bytes (``partition_for``), so every position of one
aircraft lands in the same partition as a keyed record would.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from streams.settings import Settings

# The package's copy of the top-level schemas/ (the source of truth; tests/test_topics.py checks the
# two are identical). A package resource; an installed package is a folder on disk, so a Path.
SCHEMA_DIR = Path(str(resources.files("streams").joinpath("schemas")))


@dataclass(frozen=True)
class TopicSpec:
    short: str
    key: str
    schema: str
    per_aircraft: bool
    doc: str
    compacted: bool = False

    def name(self, settings: Settings) -> str:
        return settings.topic(self.short)

    def partitions(self, settings: Settings) -> int:
        return settings.partitions

    @property
    def schema_path(self) -> Path:
        return SCHEMA_DIR / f"{self.schema}.json"


RAW = TopicSpec(
    short="raw",
    key="receiver id (one receiver's feed keeps its order)",
    schema="raw.v1",
    per_aircraft=False,
    doc="Raw input chunks (lines, frames, documents) exactly as received, for archive and re-parsing",
)
POSITIONS = TopicSpec(
    short="positions",
    key="icao24 (batch records: partition = murmur2(icao24))",
    schema="position-batch.v3",
    per_aircraft=True,
    doc="Validated, normalised positions (position.v1 fields as columns, numbers raw; v2 and v1 still read), "
        "batched per partition",
)
TRACKS = TopicSpec(
    short="tracks",
    key="icao24",
    schema="track.v1",
    per_aircraft=True,
    doc="Per-aircraft track segment updates (latest state per aircraft per batch)",
)
ALERTS = TopicSpec(
    short="alerts",
    key="icao24",
    schema="alert.v1",
    per_aircraft=True,
    doc="Alerts (alert.v1: approach/entry/exit; pattern.v1: on-station patterns; dark.v1: gone dark; "
        "activity.v1: missions against the baseline): the source of truth the Redis sink follows",
)
DEADLETTER = TopicSpec(
    short="deadletter",
    key="input format",
    schema="deadletter.v1",
    per_aircraft=False,
    doc="Inputs refused by a parser or the track gate, with raw bytes and reason",
)

COVERAGE = TopicSpec(
    short="coverage",
    key="coverage cell (streams.core.coverage.cell_of: '<lat>:<lon>' of a 1-degree cell)",
    schema="coverage-record.v1",
    per_aircraft=False,
    doc="Who was heard where (one record per aircraft a minute near Mexico), gone-dark candidates and "
        "reappearances, plus watermarks: the coverage stage's input, fed from every positions partition",
)
MISSIONS = TopicSpec(
    short="missions",
    key="mission category (military, surveillance, ...)",
    schema="mission.v1",
    per_aircraft=False,
    doc="Missions (sorties of aircraft of interest near Mexico) plus watermarks: the mission ledger's input",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (RAW, POSITIONS, TRACKS, ALERTS, DEADLETTER, COVERAGE, MISSIONS)


@dataclass(frozen=True)
class ChangelogSpec:
    """The changelog topic of a worker's state table, named as Faust names it.

    ``ensure_topics`` creates these (compacted, like Faust's own) before a worker starts. Left to
    Faust, a changelog is created while the worker joins its group, and a join that read the
    metadata a moment too early saw the new topic with 0 partitions: the first table write of
    the missions agent then crashed it with PartitionsMismatch (a test run on a loaded host,
    2026-12-07; Faust restarts a crashed agent, and the tests count any crash as a defect)."""

    table: str
    key: str
    doc: str
    compacted: bool = True  # as Faust makes a table's changelog: the latest state per key

    def name(self, settings: Settings) -> str:
        return f"{settings.app_id}-{self.table}-changelog"

    def partitions(self, settings: Settings) -> int:
        return settings.partitions


AIRCRAFT_STATE = ChangelogSpec("aircraft-state", "icao24", "Per-aircraft engine state (track, alert episodes)")
COVERAGE_STATE = ChangelogSpec("coverage-state", "coverage cell", "Who was heard where, gone-dark cases per cell")
MISSIONS_STATE = ChangelogSpec("missions-state", "mission category", "The mission ledger per category")
CHANGELOGS: tuple[ChangelogSpec, ...] = (AIRCRAFT_STATE, COVERAGE_STATE, MISSIONS_STATE)


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (as in the Java client's DefaultPartitioner)."""
    length = len(data)
    seed = 0x9747B28C
    m = 0x5BD1E995
    r = 24
    h = (seed ^ length) & 0xFFFFFFFF
    length4 = length // 4
    for i in range(length4):
        i4 = i * 4
        k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    extra = length % 4
    if extra >= 3:
        h ^= data[(length & ~3) + 2] << 16
    if extra >= 2:
        h ^= data[(length & ~3) + 1] << 8
    if extra >= 1:
        h ^= data[length & ~3]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


# Per partition count, icao24 -> partition: one small dict entry per aircraft (the string is
# the caller's own), where a (icao24, partitions) key cost a tuple more, ~60 B an aircraft.
_PARTITION_CACHE: dict[int, dict[str, int]] = {}


def partition_for(icao24: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives key ``icao24`` (cached per aircraft)."""
    cache = _PARTITION_CACHE.get(partitions)
    if cache is None:
        cache = _PARTITION_CACHE.setdefault(partitions, {})
    p = cache.get(icao24)
    if p is None:
        p = (murmur2(icao24.encode()) & 0x7FFFFFFF) % partitions
        if len(cache) < 1_000_000:  # bound: the world has ~30k aircraft airborne at once
            cache[icao24] = p
    return p
