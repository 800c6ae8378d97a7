"""The engine's kernels on their own: the gate on real positions, the alert state machine on
score sequences (its input IS the geofence's scores, so sequences of scores are its real
input), segments, time in zone, and event-time sweeps."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from streams.core import kernels as K
from streams.core.config import NM, EngineConfig
from streams.core.places import haversine_m

pytestmark = pytest.mark.unit

T0 = 1_738_700_000.0
RINGS_M = np.array([12.0, 50.0, 100.0]) * NM
NZB = 2 + RINGS_M.size


# ---------------------------------------------------------------------------- helpers
def _gzone(dist):
    z = np.full(dist.size, -1, dtype=np.int64)
    for k in range(RINGS_M.size - 1, -1, -1):
        z[(dist >= 0) & (dist <= RINGS_M[k])] = k + 1
    z[dist < 0] = 0
    return z


class Run:
    """One aircraft (slot 0) through track_step, chunk by chunk, state kept between calls."""

    def __init__(self, cfg=None, n_fences=0):
        self.cfg = cfg or EngineConfig()
        self.P = self.cfg.params()
        self.F = n_fences
        self.T = K.new_track_rows(1, NZB + n_fences)
        self.A = K.new_alert_rows(1, 1 + n_fences)
        self.events = []
        self.segments = []

    def feed(self, t, dist, tte=None, fences=None, lat=None):
        t = np.asarray(t, dtype=np.float64)
        dist = np.asarray(dist, dtype=np.float64)
        n = t.size
        tte = np.full(n, np.nan) if tte is None else np.asarray(tte, dtype=np.float64)
        fences = np.zeros((n, self.F), dtype=np.bool_) if fences is None else np.asarray(fences, dtype=np.bool_)
        lat = np.linspace(20.0, 21.0, n) if lat is None else np.asarray(lat, dtype=np.float64)
        E = np.empty((n * (1 + self.F) * 2 + 1, K.E_COLS))
        SEG = np.empty((n, self.T.shape[1] + 2))
        reset = np.zeros(n, dtype=np.bool_)
        k, m = K.track_step(
            np.zeros(n, dtype=np.int64), t, lat, np.full(n, -90.0), np.full(n, 30000.0), np.full(n, 400.0),
            np.full(n, 0.0), np.zeros(n, dtype=np.int64), dist < 0, dist, np.full(n, 180.0), _gzone(dist),
            np.zeros(n), tte, fences, self.T, self.A, self.P, NZB, E, SEG, reset,
        )  # fmt: skip
        self.events += [self._ev(E[j]) for j in range(k)]
        self.segments += [SEG[j].copy() for j in range(m)]
        return reset

    def sweep(self, now):
        E = np.empty((1 + self.F, K.E_COLS))
        SEG = np.empty((1, self.T.shape[1] + 2))
        evict = np.zeros(1, dtype=np.bool_)
        k, m = K.sweep(np.zeros(1, dtype=np.int64), now, self.T, self.A, self.P, E, SEG, evict)
        self.events += [self._ev(E[j]) for j in range(k)]
        self.segments += [SEG[j].copy() for j in range(m)]
        return bool(evict[0])

    @staticmethod
    def _ev(row):
        return {
            "zone": int(row[K.E_ZONE]),
            "transition": K.TRANSITION_NAMES[int(row[K.E_CODE])],
            "t": float(row[K.E_T]),
            "dist": float(row[K.E_DIST]),
            "episode": float(row[K.E_EP_START]),
            "seq": int(row[K.E_SEQ]),
            "reason": K.CLOSE_REASONS[int(row[K.E_REASON])],
            "gap": None if math.isnan(row[K.E_GAP]) else float(row[K.E_GAP]),
            "best": float(row[K.E_BEST_D]),
            "crossing": bool(row[K.E_CROSSING]),
        }

    def transitions(self, zone=0, updates=False):
        return [e["transition"] for e in self.events if e["zone"] == zone and (updates or e["transition"] != "updated")]


def _pass(km_from=200.0, km_to=-30.0, step_km=2.5, back=True):
    """Distances of a straight pass towards the boundary (and back out), 10 s apart."""
    down = np.arange(km_from, km_to - 1e-9, -step_km)
    d = np.concatenate([down, down[::-1][1:]]) if back else down
    return T0 + 10.0 * np.arange(d.size), d * 1000.0


# ---------------------------------------------------------------------------- state machine
def test_approach_entry_exit_one_episode():
    t, d = _pass()
    r = Run()
    r.feed(t, d)
    assert r.transitions() == ["approaching", "entered", "exited"]
    ev = {e["transition"]: e for e in r.events if e["transition"] != "updated"}
    # Each transition is stamped with the first position that met its condition.
    assert ev["approaching"]["t"] == t[np.argmax(d <= 50 * NM)]
    assert ev["entered"]["t"] == t[np.argmax(d < 0)]
    first_out = np.flatnonzero((d >= 0.5 * NM) & (np.arange(d.size) > np.argmin(d)))[0]
    assert ev["exited"]["t"] == t[first_out] and ev["exited"]["reason"] == "exited"
    # One episode: same start, sequence numbers 0..n-1, closest approach is the deepest point.
    assert {e["episode"] for e in r.events} == {ev["approaching"]["t"]}
    assert [e["seq"] for e in r.events] == list(range(len(r.events)))
    assert ev["exited"]["best"] == d.min()
    assert ev["entered"]["crossing"]


def test_updates_are_throttled_and_track_the_closest_approach():
    t, d = _pass(km_from=400.0, km_to=20.0)  # comes within 20 km, never enters
    r = Run()
    r.feed(t, d)
    ups = [e for e in r.events if e["transition"] == "updated"]
    assert 1 <= len(ups) <= 8
    assert all(b["t"] - a["t"] >= 120.0 for a, b in itertools.pairwise(ups))
    assert [u["best"] for u in ups] == sorted((u["best"] for u in ups), reverse=True)
    assert r.transitions() == ["approaching", "closed"]
    assert r.events[-1]["reason"] == "receded" and r.events[-1]["best"] == pytest.approx(20_000.0)


def test_min_dwell_blocks_short_incursions():
    t = T0 + 10.0 * np.arange(60)
    for n_inside, expect in ((3, []), (4, ["entered"])):  # 20 s inside vs 30 s inside
        d = np.full(60, 5_000.0)
        d[20 : 20 + n_inside] = -300.0
        r = Run()
        r.feed(t, d)
        assert [x for x in r.transitions() if x in ("entered", "exited")] == ([*expect, "exited"] if expect else [])
        if expect:
            assert [e["t"] for e in r.events if e["transition"] == "entered"] == [t[20]]


def test_orbit_on_the_approach_ring_does_not_flood():
    t = T0 + 30.0 * np.arange(480)  # 4 h
    # Racetrack between 45 and 58 nm: inside the enter ring, never beyond the leave ring.
    r = Run()
    r.feed(t, np.where((np.arange(480) // 4) % 2 == 0, 45.0, 58.0) * NM)
    assert r.transitions() == ["approaching"]
    # Between 45 and 65 nm, 5 min each side: beyond the leave ring, but for less than the
    # recede dwell, so still one episode.
    r = Run()
    r.feed(t, np.where((np.arange(480) // 10) % 2 == 0, 45.0, 65.0) * NM)
    assert r.transitions() == ["approaching"]
    # 10 min near, 20 min far: each approach is a new episode with its own start.
    r = Run()
    r.feed(t, np.where((np.arange(480) % 60) < 20, 45.0, 70.0) * NM)
    tr = r.transitions()
    assert tr[:4] == ["approaching", "closed", "approaching", "closed"]
    starts = [e["episode"] for e in r.events if e["transition"] == "approaching"]
    assert len(set(starts)) == len(starts) == 8


def test_boundary_flutter_inside_the_exit_margin_does_not_exit():
    t = T0 + 10.0 * np.arange(300)
    d = np.where(np.arange(300) % 2 == 0, -200.0, 400.0)  # ±: within 0.5 nm of the line
    d[:10] = -5_000.0
    d[290:] = 2_000.0
    r = Run()
    r.feed(t, d)
    assert r.transitions() == ["entered", "exited"]
    assert r.events[-1]["t"] == t[290]


def test_predicted_entry_counts_as_approaching_with_hysteresis():
    t = T0 + 10.0 * np.arange(400)
    d = np.full(400, 150_000.0)  # beyond the 60 nm leave ring throughout
    tte = np.full(400, np.nan)
    tte[10:100] = 600.0  # predicted to enter within 10 min
    tte[100:250] = 1000.0  # between the enter (15 min) and leave (20 min) thresholds: holds
    r = Run()
    r.feed(t, d, tte=tte)
    assert r.transitions() == ["approaching", "closed"]
    assert r.events[0]["t"] == t[10]
    assert r.events[-1]["t"] == t[250] and r.events[-1]["reason"] == "receded"


def test_timeout_closes_the_episode_and_a_later_position_outside_is_not_an_exit():
    t_in = T0 + 10.0 * np.arange(30)
    r = Run()
    r.feed(t_in, np.full(30, -20_000.0))
    t_out = t_in[-1] + 7200.0 + 10.0 * np.arange(10)
    r.feed(t_out, np.full(10, 300_000.0))
    assert r.transitions() == ["entered", "closed"]
    closed = r.events[-1]
    assert closed["reason"] == "timeout" and closed["t"] == t_in[-1] + 3600.0


def test_exit_across_a_coverage_gap_reports_the_silence():
    t_in = T0 + 10.0 * np.arange(30)
    r = Run()
    r.feed(t_in, np.full(30, -20_000.0))
    t_out = t_in[-1] + 2887.0 + 10.0 * np.arange(10)  # DAL1812's 48-minute hole over Yucatán
    r.feed(t_out, np.full(10, 400_000.0))
    assert r.transitions() == ["entered", "exited"]
    assert r.events[-1]["gap"] == pytest.approx(2887.0)
    assert r.events[-1]["t"] == t_out[0]


def test_sweep_gives_the_same_events_as_the_next_position():
    t_in = T0 + 10.0 * np.arange(30)
    t_out = t_in[-1] + 9000.0 + 10.0 * np.arange(40)
    d_out = np.linspace(80_000.0, -10_000.0, 40)
    a = Run()
    a.feed(t_in, np.full(30, -20_000.0))
    a.feed(t_out, d_out)
    b = Run()
    b.feed(t_in, np.full(30, -20_000.0))
    assert not b.sweep(t_in[-1] + 3000.0)  # nothing due yet
    assert b.events == a.events[:1]
    assert b.sweep(t_in[-1] + 8000.0)  # timeout, segment close, and eviction due
    b.feed(t_out, d_out)
    assert b.events == a.events
    assert len(a.segments) == len(b.segments) == 1
    assert np.array_equal(a.segments[0][:-1], b.segments[0][:-1], equal_nan=True)  # last: trigger
    # The next position after the eviction time wipes state as eviction would have.
    assert a.transitions() == ["entered", "closed", "approaching", "entered"]


def test_segments_and_time_in_zone():
    t = T0 + 10.0 * np.arange(19)
    d = np.array([300.0] * 7 + [150.0] * 6 + [-10.0] * 6) * 1000.0  # beyond, 100 nm ring, inside
    r = Run()
    r.feed(t, d)
    T = r.T[0]
    zt = dict(zip(["beyond", "sovereign", "r12", "r50", "r100"], T[K.T_ZT0 : K.T_ZT0 + NZB], strict=True))
    assert zt == {"beyond": 70.0, "sovereign": 50.0, "r12": 0.0, "r50": 0.0, "r100": 60.0}
    assert sum(zt.values()) == t[-1] - t[0]
    assert T[K.T_SEG_START] == t[0] and T[K.T_SEG_N] == 19 and T[K.T_CPA_D] == -10_000.0
    # A silence longer than the segment gap closes the segment (snapshot) and opens a new one.
    t2 = t[-1] + 601.0 + 10.0 * np.arange(3)
    r.feed(t2, np.full(3, 200_000.0))
    (seg,) = r.segments
    assert seg[K.T_SEG_START] == t[0] and seg[K.T_SEG_LAST] == t[-1] and seg[K.T_SEG_N] == 19
    assert seg[K.T_ZT0 + 1] == 50.0
    assert r.T[0, K.T_SEG_START] == t2[0] and r.T[0, K.T_SEG_N] == 3
    assert r.T[0, K.T_ZT0 + 1] == 0.0 and r.T[0, K.T_CPA_D] == 200_000.0


def test_user_fence_episodes():
    t = T0 + 10.0 * np.arange(100)
    inside_fence = np.zeros((100, 1), dtype=np.bool_)
    inside_fence[20:50, 0] = True
    inside_fence[70:72, 0] = True  # 10 s: below the minimum dwell
    r = Run(n_fences=1)
    r.feed(t, np.full(100, 500_000.0), fences=inside_fence)
    assert r.transitions(zone=1) == ["entered", "exited"]
    assert r.transitions(zone=0) == []
    ent, ext = [e for e in r.events if e["zone"] == 1]
    assert ent["t"] == t[20] and ext["t"] == t[50] and ent["episode"] == ext["episode"]
    assert r.T[0, K.T_ZT0 + NZB] == 300.0 + 20.0  # seconds credited to the fence


# ---------------------------------------------------------------------------- gate
def _arrays(positions):
    return {
        "t": np.array([p.event_time for p in positions]),
        "lat": np.array([p.lat for p in positions]),
        "lon": np.array([p.lon for p in positions]),
        "gs": np.array([np.nan if p.ground_speed_kt is None else p.ground_speed_kt for p in positions]),
        "trk": np.array([np.nan if p.track_deg is None else p.track_deg for p in positions]),
        "ground": np.array([bool(p.on_ground) for p in positions]),
    }


def _gate(a, cfg=None, T=None):
    n = a["t"].size
    P = (cfg or EngineConfig()).params()
    T = K.new_track_rows(1, NZB) if T is None else T
    reason = np.empty(n, dtype=np.int64)
    gs = np.empty(n)
    trk = np.empty(n)
    derived = np.empty(n, dtype=np.int64)
    rec = K.gate(np.zeros(n, dtype=np.int64), a["t"], a["lat"], a["lon"], a["gs"], a["trk"], a["ground"], T, P,
                 reason, gs, trk, derived)  # fmt: skip
    return reason, gs, trk, derived, rec, T


def test_gate_accepts_a_real_flight(dal1812):
    a = _arrays(dal1812[:88])  # DAL1812 up to its coverage hole over Yucatán
    reason, gs, _, derived, rec, _ = _gate(a)
    assert (reason == K.ACCEPT).sum() >= 86 and rec == 0
    assert set(reason.tolist()) <= {K.ACCEPT, K.R_DUPLICATE}
    # Reported speeds pass through; the few fixes without one get a derived speed, except
    # after a silence longer than the gate's staleness limit (no trusted previous fix).
    has = np.isfinite(a["gs"])
    assert np.array_equal(gs[has], a["gs"][has]) and not (derived[has] & 1).any()
    dt = np.diff(a["t"], prepend=np.nan)
    missing = ~has & (reason == K.ACCEPT)
    fresh = missing & (dt <= 120.0)
    assert fresh.sum() >= 5 and (derived[fresh] & 1).all()
    assert np.all(np.abs(gs[fresh] - np.nanmedian(a["gs"])) < 30.0)
    assert np.isnan(gs[missing & (dt > 120.0)]).all()


def test_gate_rejects_same_message_from_a_second_receiver(dal1812):
    base = _arrays(dal1812[:88])
    a = {k: np.repeat(v, 2) for k, v in base.items()}
    a["t"][1::2] += 0.4  # the second receiver stamps it 0.4 s later
    reason, *_ = _gate(a)
    assert (reason[1::2] == K.R_DUPLICATE).all()
    assert (reason[0::2] == K.ACCEPT).sum() >= 86


def test_gate_rejects_a_glitch_and_recovers_from_a_bad_reference(dal1812):
    a = _arrays(dal1812[:88])
    a["lat"][40] += 1.0  # 111 km off in 10 s
    reason, *_ = _gate(a)
    assert reason[40] == K.R_IMPLAUSIBLE
    assert (reason[41:] == K.ACCEPT).sum() >= 45
    # A bad FIRST position becomes the reference; after three inconsistent rejections the
    # gate presumes the reference is wrong and resets on the real track.
    a = _arrays(dal1812[:88])
    a["lat"][0] += 3.0
    reason, _, _, _, rec, _ = _gate(a)
    assert reason[0] == K.ACCEPT and list(reason[1:3]) == [K.R_IMPLAUSIBLE] * 2
    assert reason[3] == K.ACCEPT and rec == 1
    assert (reason[4:] == K.ACCEPT).sum() >= 82


def test_gate_trusts_no_reference_after_a_gap(dal1812):
    # Positions 87 and 88 are 2,887 s and ~650 km apart (the Yucatán hole): accepted.
    a = _arrays(dal1812[80:100])
    reason, *_ = _gate(a)
    assert reason[8] == K.ACCEPT
    assert a["t"][8] - a["t"][7] > 120.0 and haversine_m(a["lat"][7], a["lon"][7], a["lat"][8], a["lon"][8]) > 600e3


def test_gate_derives_speed_and_track_when_missing(dal1812):
    a = _arrays(dal1812[:88])
    reported_gs, reported_trk = a["gs"].copy(), a["trk"].copy()
    a["gs"][:] = np.nan
    a["trk"][:] = np.nan
    reason, gs, trk, derived, *_ = _gate(a)
    ok = (reason == K.ACCEPT) & np.isfinite(gs)
    ok[0] = False
    assert ok.sum() >= 80 and (derived[ok] == 3).all()
    assert np.nanmedian(np.abs(gs[ok] - reported_gs[ok])) < 10.0  # knots
    dtrk = (trk[ok] - reported_trk[ok] + 180) % 360 - 180
    assert np.nanmedian(np.abs(dtrk)) < 5.0  # degrees


def test_gate_rejects_late_positions(dal1812):
    a = _arrays(dal1812[:20])
    _, _, _, _, _, T = _gate(a)
    late = {k: v[5:6].copy() for k, v in a.items()}
    reason, *_ = _gate(late, T=T)
    assert reason[0] == K.R_LATE


def test_state_rows_start_clean():
    T = K.new_track_rows(3, NZB)
    assert np.isnan(T[:, K.T_G_T]).all() and (T[:, K.T_ZT0 :] == 0).all()
    assert (T[:, K.T_REL_T] == -math.inf).all()
    A = K.new_alert_rows(3, 2)
    assert (A[..., K.A_ST] == K.S_OUTSIDE).all() and (A[..., K.A_PEND] == -1).all()
