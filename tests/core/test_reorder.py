"""The reorder buffer and the state format on their own, without an engine.

The engine tests (test_engine.py) run both through the engine on real recordings; these pin
the buffer's release order and bookkeeping and the state format's pieces directly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from streams.columns import PositionColumns
from streams.core.reorder import Pending, ReorderBuffer
from streams.core.snapshot import A_NAMES, T_NAMES, _dec, _enc, _json_row, layout_signature
from streams.messages import Position

pytestmark = pytest.mark.unit


def _rows(slots: list[int], times: list[float], first_arrival: int) -> Pending:
    cols = PositionColumns.from_positions([Position(f"{s:06x}", t, 20.0, -100.0, "sbs") for s, t in
                                           zip(slots, times, strict=True)])
    n = len(slots)
    return Pending.of(np.array(slots, dtype=np.int64), np.arange(first_arrival, first_arrival + n, dtype=np.int64),
                      cols)


def test_pop_releases_masked_rows_by_slot_time_arrival() -> None:
    buf = ReorderBuffer()
    buf.add(_rows([2, 1, 2, 1], [10.0, 5.0, 3.0, 5.0], 0))
    buf.add(_rows([1], [4.0], 4))
    assert buf.size == 5
    assert buf.of_slot(1) == [1, 3, 4] and buf.of_slot(2) == [0, 2] and buf.of_slot(3) == []
    rows, alive = buf.rows()
    assert alive.all() and rows.size == 5
    mask = np.array([True, True, False, True, True])
    rel = buf.pop(mask)
    assert rel.slot.tolist() == [1, 1, 1, 2]
    assert rel.t.tolist() == [4.0, 5.0, 5.0, 10.0]
    assert rel.arrival.tolist() == [4, 1, 3, 0]  # equal times keep arrival order
    assert buf.size == 1 and buf.of_slot(2) == [2] and buf.of_slot(1) == []
    assert buf.position(2).event_time == 3.0
    # A popped row does not come back, even if the mask asks again.
    assert buf.pop(np.ones(5, dtype=np.bool_)).t.tolist() == [3.0]
    assert buf.size == 0


def test_of_slots_is_of_slot_for_each_slot_in_turn() -> None:
    rng = np.random.default_rng(7)
    buf = ReorderBuffer()
    slots = rng.integers(0, 40, 500).tolist()
    buf.add(_rows(slots, rng.uniform(0.0, 100.0, 500).tolist(), 0))
    buf.pop(rng.random(500) < 0.3)  # some rows gone: the index skips them
    asked = [*rng.integers(0, 45, 60).tolist(), -1, 3, 3]  # absent, none (-1), repeated
    flat, ends = buf.of_slots(np.array(asked, dtype=np.int64))
    runs = [buf.of_slot(s) if s >= 0 else [] for s in asked]
    assert ends.tolist() == np.cumsum([len(r) for r in runs]).tolist()
    assert flat.tolist() == [i for r in runs for i in r]
    empty, none = buf.of_slots(np.array([], dtype=np.int64))
    assert empty.size == 0 and none.size == 0


def test_drop_slots_forgets_only_those_aircraft() -> None:
    buf = ReorderBuffer()
    buf.add(_rows([1, 2, 3, 2], [1.0, 2.0, 3.0, 4.0], 0))
    buf.drop_slots(np.array([2], dtype=np.int64))
    assert buf.size == 2
    assert buf.of_slot(2) == []
    assert buf.columns(buf.of_slot(3)).event_time.tolist() == [3.0]


def test_buffer_compacts_and_gives_back_a_burst() -> None:
    buf = ReorderBuffer()
    n = 20 * ReorderBuffer._MIN_ROWS
    buf.add(_rows(list(range(n)), [float(i) for i in range(n)], 0))
    assert buf.capacity >= n
    keep = np.zeros(n, dtype=np.bool_)
    keep[-10:] = True
    buf.pop(~keep)
    assert buf.size == 10
    assert buf.capacity <= 2 * ReorderBuffer._MIN_ROWS
    # The live rows survived the compaction, in place of the released ones.
    assert sorted(buf.columns(list(range(10))).event_time.tolist()) == [float(i) for i in range(n - 10, n)]


def test_state_format_pieces() -> None:
    # Every named kernel column appears once; the zone bins are not named columns.
    assert len(set(T_NAMES.values())) == len(T_NAMES) and len(set(A_NAMES.values())) == len(A_NAMES)
    assert _json_row(np.array([1.5, math.nan, math.inf, -math.inf])) == [1.5, None, "inf", "-inf"]
    assert [_dec(_enc(x)) for x in (2.0, math.inf, -math.inf)] == [2.0, math.inf, -math.inf]
    assert math.isnan(_dec(_enc(math.nan)))
    # The layout signature tells engines with other zones or fences apart.
    base = layout_signature(["beyond", "sovereign", "r1"], ["sovereign"], [])
    assert len(base) == 8
    assert base == layout_signature(["beyond", "sovereign", "r1"], ["sovereign"], [])
    assert base != layout_signature(["beyond", "sovereign", "r1"], ["sovereign", "box"], ["box"])
