"""The engine's event-time reorder buffer: positions admitted but not yet released.

This module owns holding positions back until they may leave in event-time order:
:class:`Pending` (a set of buffered positions as columns, with each one's aircraft slot and
arrival order) and :class:`ReorderBuffer` (append, release by mask, forget aircraft, index by
slot). Which rows may leave is decided by the kernel :func:`streams.core.kernels.releasable`
against the engine's track rows; the engine (:mod:`streams.core.engine`) drives the buffer,
and :mod:`streams.core.snapshot` reads and restores an aircraft's buffered positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from streams.columns import PositionColumns
from streams.core import kernels as K
from streams.messages import Position

F64 = npt.NDArray[np.float64]


@dataclass(slots=True)
class Pending:
    """The reorder buffer: positions admitted but not yet released, as columns plus their
    aircraft slot, arrival order, and the altitude and ground flag the kernels read."""

    slot: npt.NDArray[np.int64]
    arrival: npt.NDArray[np.int64]
    cols: PositionColumns
    alt: F64
    ground: npt.NDArray[np.bool_]

    @classmethod
    def of(cls, slot: npt.NDArray[np.int64], arrival: npt.NDArray[np.int64], cols: PositionColumns) -> Pending:
        return cls(slot, arrival, cols, cols.altitude(), cols.on_ground == 1)

    @property
    def size(self) -> int:
        return int(self.slot.shape[0])

    @property
    def t(self) -> F64:
        return self.cols.event_time

    @property
    def lat(self) -> F64:
        return self.cols.lat

    @property
    def lon(self) -> F64:
        return self.cols.lon

    @property
    def gs(self) -> F64:
        return self.cols.ground_speed_kt

    @property
    def trk(self) -> F64:
        return self.cols.track_deg

    @classmethod
    def empty(cls) -> Pending:
        return cls.of(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), PositionColumns.empty())

    def take(self, idx: npt.NDArray[Any]) -> Pending:
        return Pending(self.slot[idx], self.arrival[idx], self.cols.take(idx), self.alt[idx], self.ground[idx])

    def grown(self, cap: int) -> Pending:
        """A copy with room for ``cap`` rows (rows beyond ``size`` are uninitialised)."""
        def grow(a: Any) -> Any:
            out = np.empty(cap, dtype=a.dtype)
            out[: a.shape[0]] = a
            return out

        return Pending(grow(self.slot), grow(self.arrival), self.cols.grown(cap), grow(self.alt), grow(self.ground))

    def put(self, at: int, rows: Pending) -> None:
        """Write ``rows`` over rows ``at``... of this buffer, in place."""
        k = rows.size
        self.slot[at : at + k] = rows.slot
        self.arrival[at : at + k] = rows.arrival
        self.cols.put(at, rows.cols)
        self.alt[at : at + k] = rows.alt
        self.ground[at : at + k] = rows.ground

    @classmethod
    def concat(cls, a: Pending, b: Pending) -> Pending:
        if not a.size:
            return b
        if not b.size:
            return a
        return Pending(
            np.concatenate((a.slot, b.slot)), np.concatenate((a.arrival, b.arrival)),
            PositionColumns.concat([a.cols, b.cols]), np.concatenate((a.alt, b.alt)),
            np.concatenate((a.ground, b.ground)),
        )  # fmt: skip


class ReorderBuffer:
    """The reorder buffer, sized so that a batch costs what it adds and releases, not what
    the buffer holds: rows are appended into spare capacity, released or dropped rows are
    only marked dead, and the live rows are compacted once dead ones are the majority. At a
    2 s tolerance on a 20,000 positions/s feed it holds ~40,000 positions; copying them all
    twice per 10 ms batch made the engine fall behind the feed."""

    # Compaction and growth start at this many rows: below it, copies cost nothing.
    _MIN_ROWS = 1024
    # Capacity over this many times the live rows is handed back at a compaction; growth
    # doubles, so a steady feed never shrinks and regrows the buffer in turn.
    _SHRINK = 8

    def __init__(self) -> None:
        self._buf = Pending.empty()
        self._alive = np.zeros(0, dtype=np.bool_)
        self._n = 0
        self._dead = 0
        self._by_slot: tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]] | None = None

    @property
    def size(self) -> int:
        return self._n - self._dead

    @property
    def capacity(self) -> int:
        return self._buf.size

    def rows(self) -> tuple[Pending, npt.NDArray[np.bool_]]:
        """Every row (views, not copies) and which of them are still pending."""
        b, n = self._buf, self._n
        return Pending(b.slot[:n], b.arrival[:n], b.cols.head(n), b.alt[:n], b.ground[:n]), self._alive[:n]

    def add(self, inc: Pending) -> None:
        k = inc.size
        if not k:
            return
        if self._n + k > self._buf.size:
            live, alive = self.rows()
            keep = live.take(alive)
            cap = max(self._MIN_ROWS, 2 * (keep.size + k))
            self._buf = Pending.concat(keep, inc).grown(cap)
            self._n = keep.size + k
            self._alive = np.zeros(cap, dtype=np.bool_)
            self._alive[: self._n] = True
            self._dead = 0
        else:
            self._buf.put(self._n, inc)
            self._alive[self._n : self._n + k] = True
            self._n += k
        self._by_slot = None

    def releasable(self, T: F64, horizon: float, tolerance: float) -> npt.NDArray[np.bool_] | None:
        """Mask (over :meth:`rows`) of the pending rows that may leave: older than ``horizon``,
        or ``tolerance`` older than their aircraft's newest position; None if there are none."""
        n = self._n
        mask = np.empty(n, dtype=np.bool_)
        b = self._buf
        if not K.releasable(b.cols.event_time[:n], b.slot[:n], self._alive[:n], T, horizon, tolerance, mask):
            return None
        return mask

    def first_aircraft(self, mask: npt.NDArray[np.bool_], limit: int) -> npt.NDArray[np.bool_] | None:
        """``mask`` cut to the rows of its lowest slots, whole aircraft, at least ``limit``
        rows (more only to finish the last aircraft); None when it has no more than that."""
        n = self._n
        slot = self._buf.slot[:n]
        chosen = slot[mask & self._alive[:n]]
        if chosen.size <= limit:
            return None
        cut = np.partition(chosen, limit - 1)[limit - 1]
        if cut >= chosen.max():
            return None
        return mask & (slot <= cut)

    def pop(self, mask: npt.NDArray[np.bool_]) -> Pending:
        """Rows where ``mask`` (over :meth:`rows`) is set, no longer pending, sorted by
        (slot, event time, arrival)."""
        idx = np.flatnonzero(mask & self._alive[: self._n])
        b = self._buf
        rel = b.take(idx[np.lexsort((b.arrival[idx], b.cols.event_time[idx], b.slot[idx]))])
        self._kill(idx)
        return rel

    def drop_slots(self, slots: npt.NDArray[np.int64]) -> None:
        """Forget the pending rows of these aircraft slots."""
        if self.size:
            self._kill(np.flatnonzero(self._alive[: self._n] & np.isin(self._buf.slot[: self._n], slots)))

    def _index(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
        """(slots sorted, buffer indices in that order): built once per change of the buffer,
        as a state flush asks for thousands of slots in a row."""
        if self._by_slot is None:
            idx = np.flatnonzero(self._alive[: self._n])
            order = idx[np.argsort(self._buf.slot[idx], kind="stable")]
            self._by_slot = (self._buf.slot[order], order)
        return self._by_slot

    def of_slot(self, s: int) -> list[int]:
        """Buffer indices of slot ``s``'s pending rows, in arrival order."""
        sorted_slots, order = self._index()
        lo, hi = np.searchsorted(sorted_slots, [s, s + 1])
        return order[lo:hi].tolist()

    def of_slots(self, slots: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
        """:meth:`of_slot` for many slots at once (-1: none): every slot's rows concatenated in
        the order of ``slots``, and where each slot's run ends. One gather instead of a
        search per aircraft, which was a fifth of a state flush's cost at 25,000 aircraft."""
        sorted_slots, order = self._index()
        lo = np.searchsorted(sorted_slots, slots, side="left")
        hi = np.searchsorted(sorted_slots, slots, side="right")
        counts = hi - lo
        ends = np.cumsum(counts)
        # position k of the output takes order[lo[j] + (k - start of run j)] for its run j
        shift = np.repeat(lo - (ends - counts), counts)
        return order[np.arange(int(ends[-1]) if len(ends) else 0) + shift], ends

    def position(self, i: int) -> Position:
        return self._buf.cols.position(i)

    def columns(self, rows: list[int]) -> PositionColumns:
        return self._buf.cols.take(np.array(rows, dtype=np.intp))

    def _kill(self, idx: npt.NDArray[np.intp]) -> None:
        if not idx.size:
            return
        self._alive[idx] = False
        self._dead += int(idx.size)
        self._by_slot = None
        if self._n > self._MIN_ROWS and self._dead * 2 > self._n:
            live, alive = self.rows()
            keep = live.take(alive)
            if self._buf.size > self._SHRINK * max(self._MIN_ROWS, keep.size):
                # A burst (a catch-up releasing 100,000 positions) grew the buffer; give it back.
                cap = 2 * max(self._MIN_ROWS, keep.size)
                self._buf = keep.grown(cap)
                self._alive = np.zeros(cap, dtype=np.bool_)
            else:
                self._buf.put(0, keep)
                self._alive[:] = False
            self._n, self._dead = keep.size, 0
            self._alive[: self._n] = True
        elif self._dead == self._n:
            self._n = self._dead = 0
