"""The watermarks the track agent owes the keyed stages, on a clock the test moves."""

from __future__ import annotations

import pytest

from streams.agents.watermarks import IDLE_GRACE_S, RESEND_S, StageWatermarks

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def ends(**by_partition: int | None):
    table = {int(k[1:]): v for k, v in by_partition.items()}
    return lambda p: table.get(p)


def test_a_horizon_is_owed_once_and_only_when_it_moves_forward() -> None:
    clock = Clock()
    w = StageWatermarks(clock)
    w.note({0: 50.0, 1: 40.0})
    assert w.prepare([0, 1], ends(p0=9, p1=9))
    assert w.take() == {0: 50.0, 1: 40.0}
    assert w.take() == {}  # taken means sent
    w.note({0: 50.0, 1: 39.0})  # nothing new: not owed again
    clock.t += 0.25
    assert not w.prepare([0, 1], ends(p0=9, p1=9))
    w.note({0: 51.0})
    assert w.prepare([0, 1], ends(p0=9, p1=9)) and w.take() == {0: 51.0}


def test_every_mark_is_sent_again_every_resend_period() -> None:
    """A stage partition that moved to another worker starts with no watermarks."""
    clock = Clock()
    w = StageWatermarks(clock)
    w.note({0: 50.0})
    w.prepare([0], ends(p0=9))
    w.take()
    clock.t += RESEND_S / 2
    assert not w.prepare([0], ends(p0=9))
    clock.t += RESEND_S / 2
    assert w.prepare([0], ends(p0=9)) and w.take() == {0: 50.0}


def test_an_empty_partition_is_idle_only_after_the_grace_period() -> None:
    """Seen empty a moment ago may only mean not fetched since a producer started."""
    clock = Clock()
    w = StageWatermarks(clock)
    w.note({0: 50.0})
    assigned = [0, 1, 2, 3]
    # 1 is empty, 2 has records but no horizon yet, 3 was not fetched yet (unknown)
    highwater = ends(p0=9, p1=0, p2=7, p3=None)
    assert w.idle_partitions(assigned, highwater) == []
    w.prepare(assigned, highwater)
    assert w.take() == {0: 50.0}
    clock.t += IDLE_GRACE_S
    assert w.idle_partitions(assigned, highwater) == [1]
    clock.t += RESEND_S
    assert w.prepare(assigned, highwater)
    assert w.take() == {0: 50.0, 1: None}
    clock.t += RESEND_S  # an idle mark is repeated like the others, until the partition has data
    w.prepare(assigned, highwater)
    assert w.take() == {0: 50.0, 1: None}
    w.note({1: 60.0})  # it has data now: its time replaces the idle mark
    clock.t += RESEND_S
    w.prepare(assigned, highwater)
    assert w.take() == {0: 50.0, 1: 60.0}


def test_a_partition_that_gets_records_restarts_its_grace_period() -> None:
    clock = Clock()
    w = StageWatermarks(clock)
    assert w.idle_partitions([1], ends(p1=0)) == []
    clock.t += IDLE_GRACE_S / 2
    assert w.idle_partitions([1], ends(p1=3)) == []  # records arrived, then (say) were deleted
    clock.t += IDLE_GRACE_S / 2
    assert w.idle_partitions([1], ends(p1=0)) == []
    clock.t += IDLE_GRACE_S
    assert w.idle_partitions([1], ends(p1=0)) == [1]


def test_forgotten_partitions_are_not_spoken_for() -> None:
    clock = Clock()
    w = StageWatermarks(clock)
    w.note({0: 50.0, 1: 40.0})
    w.prepare([0, 1], ends(p0=9, p1=9))
    w.take()
    w.note({0: 55.0})
    w.forget([0, 1])
    clock.t += RESEND_S
    assert not w.prepare([], ends())
    assert w.take() == {}
