"""The mission ledger on a history built from real flights: one alert per surge, at the right mission.

Every sortie here is a real recorded flight segment from tests/data (DAL1812 crossing
Yucatán, BOE004's pass near Laredo, and any recording under tests/data/patterns/) that came
within the outer ring (100 nm of Mexico's 12 nm line, scored by the real geofence). A history
only shifts copies of those segments in time and gives each copy its own address; the
mission's time is the copy's first position inside the ring. :func:`mission_history` is the
reusable builder: it returns the positions as well, so the same history can be run end to
end through the engine.
"""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from streams.core.missions import (
    LedgerConfig,
    Mission,
    MissionLedger,
    activity_alert_id,
    baseline_stats,
    day_iso,
    day_of,
    headline,
    poisson_tail,
)
from streams.messages import Position
from streams.parsers import parse_bytes

from .conftest import DATA

pytestmark = pytest.mark.unit

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
NM = 1852.0
DAY = 86_400.0
# The outer ring: a mission is a sortie that came within 100 nm of the 12 nm line (the definition).
RING_M = 100.0 * NM
# Segments are cut to the part within 400 km of the line (as tests/behaviour_history.py does): what a
# receiver network covering Mexico's approaches hears; the rest of a long flight is not the sortie.
NEAR_M = 400_000.0
# A silence this long splits a recording into sorties (the engine's segment_gap_s).
SEGMENT_GAP_S = 600.0
# 2025-01-01 00:00 UTC: the story's months.
T0 = 1_735_689_600.0
# About one mission a month for three months, then 18 in 10 days (two a day, 12 h apart).
BASELINE_DAYS = (14.3, 45.3, 76.3)
BURST_DAYS = tuple(90.3 + 0.5 * k for k in range(18))
QUIET_DAYS = (14.3, 45.3, 76.3, 106.3)


@dataclass(frozen=True)
class Sortie:
    """One copy of a real sortie: its mission record and its (time-shifted) positions."""

    mission: Mission
    positions: list[Position]


@cache
def _geofence():
    from streams.geo import Geofence

    return Geofence.load()


def _distance_m(positions: Sequence[Position]) -> np.ndarray:
    lat = np.array([p.lat for p in positions])
    lon = np.array([p.lon for p in positions])
    nan = np.full(lat.size, np.nan)
    return np.asarray(_geofence().score(lat, lon, nan, nan, nan, closest_approach=False).dist_m)


def _recordings() -> list[tuple[str, str]]:
    out = [("trace", "readsb_trace_full_ac671b.json.gz"), ("traffic-json", "traffic_dreamliner_boeing.json.gz")]
    patterns = DATA / "patterns"
    if patterns.is_dir():
        out += [("traffic-json", f"patterns/{p.name}") for p in sorted(patterns.glob("*.json.gz"))]
    return out


@cache
def real_sorties() -> tuple[tuple[str, tuple[Position, ...], float], ...]:
    """Every real segment in tests/data that came within the outer ring, cut to within NEAR_M of the
    line: (label, positions, seconds from its first position to its first position in the ring)."""
    out = []
    for fmt, name in _recordings():
        result = parse_bytes(fmt, gzip.decompress((DATA / name).read_bytes()))
        by_icao: dict[str, list[Position]] = {}
        for p in sorted(result.positions, key=lambda p: (p.icao24, p.event_time)):
            by_icao.setdefault(p.icao24, []).append(p)
        for icao, track in sorted(by_icao.items()):
            t = np.array([p.event_time for p in track])
            cuts = [0, *(np.flatnonzero(np.diff(t) > SEGMENT_GAP_S) + 1).tolist(), len(track)]
            for a, b in itertools.pairwise(cuts):
                seg = track[a:b]
                d = _distance_m(seg)
                if not (d <= RING_M).any():
                    continue
                near = np.flatnonzero(d <= NEAR_M)
                seg, d = seg[near[0] : near[-1] + 1], d[near[0] : near[-1] + 1]
                entry = int(np.flatnonzero(d <= RING_M)[0])
                label = f"{name}:{icao}:{next((p.callsign for p in seg if p.callsign), '?')}"
                out.append((label, tuple(seg), seg[entry].event_time - seg[0].event_time))
    return tuple(out)


def mission_history(days: Sequence[float] = BASELINE_DAYS + BURST_DAYS, category: str = "surveillance",
                    type_code: str | None = "P8", reason: str = "ring") -> list[Sortie]:
    """The real sorties flown in turn, copy k starting at T0 + days[k] days under address ae7{k:03x}
    (the US-military block, as tests/behaviour_history.py's P-8 copies), its real callsign kept.

    The mission is the copy's first position inside the outer ring, with the engine's mission id
    (icao24-segment start). Sorted by mission time.
    """
    sources = real_sorties()
    out = []
    for k, day in enumerate(days):
        _label, seg, entry_s = sources[k % len(sources)]
        icao = f"ae7{k:03x}"
        start = T0 + day * DAY
        shift = start - seg[0].event_time
        positions = [dataclasses.replace(p, icao24=icao, event_time=p.event_time + shift) for p in seg]
        callsign = next((p.callsign for p in seg if p.callsign), None)
        m = Mission(mission_id=f"{icao}-{start:.3f}", icao24=icao, callsign=callsign, category=category,
                    type_code=type_code, t=start + entry_s, reason=reason)
        out.append(Sortie(m, positions))
    return sorted(out, key=lambda s: (s.mission.t, s.mission.mission_id))


def run(missions: Sequence[Mission], ledger: MissionLedger | None = None) -> tuple[MissionLedger, list[dict]]:
    """Missions added and passed by the watermark one at a time, as the stage sees them live."""
    ledger = ledger or MissionLedger()
    alerts = []
    for m in missions:
        ledger.add(m)
        alerts += ledger.advance(m.t)
    return ledger, alerts + ledger.finish()


def reference_trigger(missions: Sequence[Mission], cfg: LedgerConfig) -> list[int]:
    """Indices of the missions that open an episode, straight from the documented rule (no ledger)."""
    ms = sorted(missions, key=lambda m: (m.t, m.mission_id))
    days = [day_of(m.t) for m in ms]
    open_day = None
    out = []
    for i, day in enumerate(days):
        w0 = day - cfg.window_days + 1

        def stats(upto: int, w0: int = w0, day: int = day) -> dict:
            seen = days[:upto]
            base = [seen.count(d) for d in range(w0 - cfg.baseline_days, w0)]
            n = sum(1 for d in seen if w0 <= d <= day)
            return baseline_stats(base, n, cfg.window_days, prior_missions=cfg.prior_missions)

        if open_day is not None and day > open_day and cfg.calm(stats(i)):
            open_day = None
        if open_day is None and days[0] <= w0 - cfg.min_history_days and cfg.elevated(stats(i + 1)):
            open_day = day
            out.append(i)
    return out


@pytest.fixture(scope="module")
def history() -> list[Sortie]:
    return mission_history()


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads((SCHEMAS / "activity.v1.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


# ---------------------------------------------------------------------------- the history itself
def test_history_is_built_from_real_sorties(history):
    labels = [label for label, _seg, _e in real_sorties()]
    assert any("DAL1812" in x for x in labels) and any("BOE004" in x for x in labels)
    assert len(history) == 21
    for s in history:
        d = _distance_m(s.positions)
        entry = int(np.flatnonzero(d <= RING_M)[0])
        assert s.positions[entry].event_time == s.mission.t  # the mission is the first position in the ring
        assert {p.icao24 for p in s.positions} == {s.mission.icao24}
    # Each copy keeps its own UTC day: the story's days are the missions' days.
    assert [day_of(s.mission.t) - day_of(T0) for s in history] == [int(d) for d in BASELINE_DAYS + BURST_DAYS]


# ---------------------------------------------------------------------------- the surge
def test_a_surge_raises_one_alert_at_the_crossing_mission(history, validator):
    missions = [s.mission for s in history]
    cfg = LedgerConfig()
    _ledger, alerts = run(missions)
    assert len(alerts) == 1
    a = alerts[0]
    validator.validate(a)

    # The rule, worked by hand: the baseline holds 3 missions in 90 days, so the Poisson mean for
    # 10 days is (3 + 1/2) / 90 * 10 = 0.389; P(X >= 4) = 6e-4 is already below 1e-3, but 4 is
    # under the minimum of 5, so the 5th mission of the burst is the one that crosses.
    trigger = reference_trigger(missions, cfg)
    assert trigger == [len(BASELINE_DAYS) + 4]
    crossing = missions[trigger[0]]
    assert a["event_time"] == crossing.t
    assert a["trigger_mission_id"] == crossing.mission_id
    assert a["window_count"] == 5 and a["baseline_count"] == 3
    assert a["baseline_per_window"] == pytest.approx(3 / 90 * 10)
    assert a["rate_ratio"] == pytest.approx(5 / (3 / 90 * 10))  # 15x
    lam = 3.5 / 90 * 10
    assert a["p_value"] == pytest.approx(1 - sum(math.exp(-lam) * lam**k / math.factorial(k) for k in range(5)))
    assert a["p_value"] < 1e-3 < poisson_tail(3, lam)
    assert a["baseline_daily_median"] == 0 and a["baseline_daily_mad"] == 0
    assert a["headline"] == "5 surveillance missions in 10 days against 0.3 per 10 days over the previous 90 days"
    assert a["missions"] == [m.mission_id for m in missions[len(BASELINE_DAYS) : trigger[0] + 1]]
    assert a["types"] == {"P8": 5}
    day = day_of(crossing.t)
    assert a["alert_id"] == activity_alert_id("surveillance", day)
    assert a["event_id"] == f"{a['alert_id']}:0" and a["seq"] == 0 and a["status"] == "open"
    assert a["severity"] == "high" and a["icao24"] == "" and a["classification"] is None
    assert a["window_start"] == (day - 9) * DAY and a["window_end"] == (day + 1) * DAY
    assert len(a["daily_counts"]) == 100 and sum(a["daily_counts"].values()) == 8
    assert list(a["daily_counts"])[-1] == day_iso(day)
    assert a["history_start"] == day_iso(day_of(missions[0].t))


def test_after_the_surge_the_window_holds_all_18(history):
    ledger, _alerts = run([s.mission for s in history])
    s = ledger.summary("surveillance")
    st = s["stats"]
    assert st["window_count"] == 18 and st["baseline_count"] == 3
    assert st["rate_ratio"] == pytest.approx(18 / (3 / 90 * 10))  # 54x
    assert st["p_value"] < 1e-12
    assert headline("surveillance", st) == \
        "18 surveillance missions in 10 days against 0.3 per 10 days over the previous 90 days"
    assert s["types"] == {"P8": 18} and len(s["missions"]) == 18
    assert s["episode_open"] is True
    # Pooled over categories (one category here) it is the same.
    pooled = ledger.summary()
    assert pooled["stats"] == st and list(pooled["categories"]) == ["surveillance"]


def test_a_quiet_history_raises_nothing():
    missions = [s.mission for s in mission_history(QUIET_DAYS)]
    ledger, alerts = run(missions)
    assert alerts == []
    st = ledger.summary("surveillance")["stats"]
    assert st["window_count"] == 1 and st["p_value"] > 0.01


def test_a_surge_without_a_watched_baseline_raises_nothing():
    # The burst alone (say `skyfence analyze` of those ten days): nobody watched the 90 days before,
    # so "against 0.0 per 10 days" would be a claim about nothing.
    missions = [s.mission for s in mission_history(BURST_DAYS)]
    ledger, alerts = run(missions)
    assert alerts == []
    assert ledger.summary("surveillance")["stats"]["window_count"] == 18


def test_a_continuing_surge_is_one_episode_and_a_later_one_is_another():
    # 36 missions over 20 days: the window never calms, one alert.
    long_days = BASELINE_DAYS + BURST_DAYS + tuple(100.3 + 0.5 * k for k in range(18))
    _l, alerts = run([s.mission for s in mission_history(long_days)])
    assert len(alerts) == 1
    # A second burst four months later, after the window fell back to nothing: armed again.
    two = BASELINE_DAYS + BURST_DAYS + tuple(200.3 + 0.5 * k for k in range(18))
    missions = [s.mission for s in mission_history(two)]
    _l, alerts = run(missions)
    assert len(alerts) == 2 and alerts[0]["alert_id"] != alerts[1]["alert_id"]
    assert [a["event_time"] for a in alerts] == [missions[i].t for i in reference_trigger(missions, LedgerConfig())]


# ---------------------------------------------------------------------------- determinism and state
def test_add_order_does_not_matter(history):
    missions = [s.mission for s in history]
    _l, expected = run(missions)
    for seed in range(5):
        shuffled = list(missions)
        random.Random(seed).shuffle(shuffled)
        ledger = MissionLedger()
        for m in shuffled:
            ledger.add(m)
        # Watermarks in a few uneven steps: every mission before a step is added before it passes.
        got = []
        for wm in (T0 + 50 * DAY, T0 + 92.5 * DAY, T0 + 95 * DAY):
            got += ledger.advance(wm)
        got += ledger.finish()
        assert got == expected


def test_redelivery_adds_nothing(history):
    missions = [s.mission for s in history]
    _l, expected = run(missions)
    ledger = MissionLedger()
    got = []
    for m in missions:
        ledger.add(m)
        ledger.add(Mission.from_dict(m.to_dict()))
        got += ledger.advance(m.t)
        ledger.add(m)  # again after it was counted
    got += ledger.finish()
    assert got == expected
    assert ledger.summary("surveillance")["stats"]["window_count"] == 18


def test_export_import_mid_history_continues_identically(history):
    missions = [s.mission for s in history]
    _l, expected = run(missions)
    for cut in (2, len(BASELINE_DAYS) + 2, len(BASELINE_DAYS) + 6):
        first = MissionLedger()
        got = []
        for m in missions[:cut]:
            first.add(m)
            got += first.advance(m.t)
        first.add(missions[cut])  # one pending, not yet passed by the watermark
        data = first.export_state("surveillance")
        assert data is not None
        second = MissionLedger()
        second.import_state("surveillance", data)
        assert second.export_state("surveillance") == data
        _l2, rest = run(missions[cut:], second)
        assert got + rest == expected


def test_state_is_bounded_to_window_and_baseline():
    # Missions a month apart for two years: only the last 100 days of counts, 10 days of missions stay.
    days = tuple(14.3 + 30.0 * k for k in range(24))
    ledger, alerts = run([s.mission for s in mission_history(days)])
    assert alerts == []
    state = json.loads(ledger.export_state("surveillance") or b"")
    latest = state["latest_day"]
    assert all(latest - 100 < d <= latest for d, _n in state["counts"])
    assert len(state["counts"]) == 4 and len(state["missions"]) == 1
    assert ledger.categories() == ["surveillance"] and ledger.export_state("military") is None


def test_categories_are_separate(history):
    # The same surge flown by military aircraft does not count toward surveillance's baseline.
    mil = mission_history(BASELINE_DAYS + BURST_DAYS, category="military", type_code="C17")
    # ids must differ from the surveillance copies': same addresses, so tag them
    mil_missions = [dataclasses.replace(s.mission, mission_id=s.mission.mission_id + "m") for s in mil]
    ledger, alerts = run(sorted([*(s.mission for s in history), *mil_missions], key=lambda m: m.t))
    assert sorted(a["category"] for a in alerts) == ["military", "surveillance"]
    assert ledger.categories() == ["military", "surveillance"]
    assert ledger.summary()["stats"]["window_count"] == 36


# ---------------------------------------------------------------------------- records and the statistic
def test_mission_round_trip_and_validation(history):
    m = history[0].mission
    assert Mission.from_dict(m.to_dict()) == m
    assert Mission.from_dict({**m.to_dict(), "kind": "mission"}) == m  # extra keys are ignored
    d = m.to_dict()
    bad: list[Any] = [None, [], {}, {**d, "t": "x"}, {**d, "t": math.nan}, {**d, "t": True},
                      {**d, "reason": "rumour"}, {**d, "category": ""}, {**d, "callsign": 7}]
    bad.append({k: v for k, v in m.to_dict().items() if k != "mission_id"})
    for doc in bad:
        with pytest.raises(ValueError):
            Mission.from_dict(doc)


def test_import_state_rejects_garbage(history):
    ledger = MissionLedger()
    for data in (b"", b"[]", b'{"v": 99}', b'{"v": 1}', b"not json"):
        with pytest.raises(ValueError):
            ledger.import_state("surveillance", data)
    good = run([history[0].mission])[0].export_state("surveillance")
    assert good is not None
    with pytest.raises(ValueError):
        ledger.import_state("military", good)  # another category's missions


def test_config_refuses_thresholds_without_hysteresis():
    for bad in ({"p_alert": 0.1}, {"rearm_missions": 5}, {"window_days": 0}, {"prior_missions": 0.0}):
        with pytest.raises(ValueError):
            LedgerConfig(**bad)


def test_poisson_tail_matches_exact_sums():
    def exact(n: int, lam: Fraction, terms: int = 400) -> float:
        # P(X >= n) = e^-lam * sum_{k>=n} lam^k / k!, the series summed in exact arithmetic.
        s, term = Fraction(0), Fraction(1)
        for k in range(terms):
            if k >= n:
                s += term
            term = term * lam / (k + 1)
        return float(s) * math.exp(-float(lam))

    for n, lam in ((0, Fraction(1, 3)), (1, Fraction(7, 18)), (5, Fraction(7, 18)), (18, Fraction(7, 18)),
                   (3, Fraction(5)), (50, Fraction(30)), (12, Fraction(30))):
        assert poisson_tail(n, float(lam)) == pytest.approx(exact(n, lam), rel=1e-9)
    assert poisson_tail(1, 0.0) == 0.0 and poisson_tail(0, 0.0) == 1.0


def test_baseline_stats():
    st = baseline_stats([0] * 87 + [1, 1, 1], 18, 10)
    assert st["baseline_count"] == 3 and st["baseline_days"] == 90
    assert st["baseline_per_window"] == pytest.approx(1 / 3)
    assert st["expected_per_window"] == pytest.approx(3.5 / 9)
    assert st["rate_ratio"] == pytest.approx(54.0)
    assert st["baseline_daily_median"] == 0.0 and st["baseline_daily_mad"] == 0.0
    empty = baseline_stats([0] * 90, 3, 10)
    assert empty["rate_ratio"] is None and empty["expected_per_window"] == pytest.approx(0.5 / 9)
    # Three missions against an empty baseline are improbable (3e-5), yet no alert: the minimum count.
    assert empty["p_value"] < 1e-3 and not LedgerConfig().elevated(empty)
    with pytest.raises(ValueError):
        baseline_stats([], 1, 10)


def test_a_bursty_baseline_needs_more_than_poisson():
    # Busy days come in runs (exercises): daily counts 0-6, median 2, MAD 2. Poisson with the mean
    # (2.4/day, 24 per window) calls 42 in 10 days a 6e-4 event; the robust rule wants the window's
    # daily mean above 2 + 3.5 * 1.4826 * 2 / sqrt(10) = 5.28, i.e. 53 or more.
    base = [0, 0, 1, 2, 2, 3, 6, 6, 4, 0] * 9
    cfg = LedgerConfig()
    st42 = baseline_stats(base, 42, 10)
    assert st42["baseline_daily_median"] == 2.0 and st42["baseline_daily_mad"] == 2.0
    assert st42["p_value"] < cfg.p_alert and not cfg.elevated(st42)
    assert cfg.elevated(baseline_stats(base, 53, 10)) and not cfg.elevated(baseline_stats(base, 52, 10))
