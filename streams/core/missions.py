"""The mission ledger: sorties of aircraft of interest per day, against a baseline.

This module owns what a mission counts for once the engine has seen it
(:class:`Mission`, emitted by :mod:`streams.core.behaviour`): the per-category ledger of
missions per UTC day (and per aircraft type), the comparison of the latest window (default
10 days) with the baseline before it (default the 90 days before the window), the decision
that the window *clearly* exceeds the baseline, and the ``activity.v1`` alert that says so,
exactly once per elevated episode. It is keyed by category (``military``, ``surveillance``
...), so one category's state is one changelog value: :meth:`MissionLedger.export_state` /
:meth:`MissionLedger.import_state`. Pure: event time only, no I/O.

The statistic (:func:`baseline_stats`) reports what an analyst quotes: the window count,
the baseline's count and rate scaled to the window's length, the plain rate ratio, and the
robust description of the baseline's daily counts (median and MAD, the pair the issue asks
for after planefence's Insights). The decision (:meth:`LedgerConfig.elevated`)
needs all four of:

1. at least ``min_missions`` in the window: a couple of sorties is not a story, whatever
   the baseline (this is what keeps an empty baseline from alerting on every pair);
2. the Poisson upper tail ``P(X >= n | lambda)`` below ``p_alert``, with ``lambda`` the
   baseline rate under a Jeffreys prior, ``(baseline_count + 1/2) / baseline_days``
   per day times the window: a 0-mission baseline expects 0.06 per 10 days, not 0, so the
   p-value stays a number;
3. the window's mean daily count above the baseline's daily median by ``mad_k`` robust
   standard errors of a ``window_days``-day mean (``1.4826 * MAD / sqrt(window_days)``):
   the Poisson tail assumes independent sorties, and a bursty baseline (exercises, a few
   busy weeks) has a larger MAD than Poisson allows, so this guards the dense case the way
   (2) guards the sparse one (where median and MAD are both 0 and (3) always holds);
4. a history: the category's first mission at least ``min_history_days`` before the
   window. The ledger cannot tell a quiet sky from a pipeline that was not yet running
   (``skyfence analyze`` of a one-day file); "against 0.0 per 10 days over the previous
   90 days" must not be said of days nobody watched.

Each mission is evaluated at its own event time ``t``, in ``(t, mission_id)`` order, once
the watermark passes it: the window is the ``window_days`` UTC days ending with the
mission's day, the baseline the ``baseline_days`` days before that. An episode opens (and
its one alert is raised, ``event_time`` = that mission's ``t``) at the first mission after
which the window is elevated; it ends, re-arming the ledger, when just before a later
mission the window has calmed down (:meth:`LedgerConfig.calm`: at most ``rearm_missions``
in the window, or a Poisson tail of at least ``rearm_p``). The gap between the two
thresholds is the hysteresis: a window hovering around the alert level stays one episode.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.core.alerts import iso

ACTIVITY_SCHEMA = "activity.v1"
ACTIVITY_ZONE = "activity"
DAY_S = 86_400.0
REASONS = ("ring", "pattern")
# Categories whose surge is the story skyfence exists for (streams.core.classify's interest rule).
INTEREST = ("military", "surveillance")
# MAD -> standard deviation of a normal distribution (1 / Phi^-1(3/4)); Rousseeuw & Croux (1993).
MAD_TO_SD = 1.4826
_STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    """Windows and thresholds of the mission ledger (days, missions, probabilities)."""

    # The defaults: the latest 10 days against the 90 days (about three months) before them.
    window_days: int = 10
    baseline_days: int = 90
    # Fewer than 5 sorties in 10 days is not a surge to report whatever the baseline: with an
    # empty baseline any mission is "improbable", and two or three P-8 sorties in ten days are
    # ordinary traffic off Baja (planefence-style reports list them, they do not flag them).
    min_missions: int = 5
    # One false alarm in a thousand windows evaluated: with ~10 evaluations a day per busy
    # category that is about one spurious alert per category every few months.
    p_alert: float = 1e-3
    # Jeffreys prior (Gamma(1/2)) on the baseline's Poisson rate: half a pseudo-mission, the
    # least informative choice, so a 0-mission baseline gives lambda > 0, not p = 0.
    prior_missions: float = 0.5
    # Iglewicz & Hoaglin (1993): a modified z-score above 3.5 marks an outlier.
    mad_k: float = 3.5
    # The baseline must have been watched for at least three windows (see module docstring, 4).
    min_history_days: int = 30
    # Re-arm: the window calmed to at most 2 missions (under half the minimum) ...
    rearm_missions: int = 2
    # ... or to an ordinary count (tail >= 5 %, fifty times the alert level).
    rearm_p: float = 0.05

    def __post_init__(self) -> None:
        if self.window_days < 1 or self.baseline_days < 1:
            raise ValueError("window_days and baseline_days must be >= 1")
        if self.min_missions < 1 or self.min_history_days < 0:
            raise ValueError("min_missions must be >= 1 and min_history_days >= 0")
        if not 0.0 < self.p_alert < self.rearm_p <= 1.0:
            raise ValueError("need 0 < p_alert < rearm_p <= 1 (hysteresis)")
        if not 0 <= self.rearm_missions < self.min_missions:
            raise ValueError("need 0 <= rearm_missions < min_missions (hysteresis)")
        if self.prior_missions <= 0.0 or self.mad_k < 0.0:
            raise ValueError("prior_missions must be > 0 and mad_k >= 0")

    @property
    def horizon_days(self) -> int:
        """Days of counts a decision reads: the window and the baseline before it."""
        return self.window_days + self.baseline_days

    def elevated(self, stats: dict[str, Any]) -> bool:
        """Does the window clearly exceed the baseline (rules 1-3 of the module docstring)?"""
        n = int(stats["window_count"])
        w = int(stats["window_days"])
        robust = stats["baseline_daily_median"] + self.mad_k * MAD_TO_SD * stats["baseline_daily_mad"] / math.sqrt(w)
        return n >= self.min_missions and stats["p_value"] < self.p_alert and n / w > robust

    def calm(self, stats: dict[str, Any]) -> bool:
        """Has the window fallen back far enough below the alert level to re-arm?"""
        return int(stats["window_count"]) <= self.rearm_missions or stats["p_value"] >= self.rearm_p


@dataclass(frozen=True, slots=True)
class Mission:
    """One sortie of an aircraft of interest that qualified as a mission."""

    mission_id: str
    icao24: str
    callsign: str | None
    category: str
    type_code: str | None
    # Event time the sortie qualified (entered the outer ring, or a pattern within distance); its UTC day counts.
    t: float
    reason: str  # "ring" | "pattern"

    def to_dict(self) -> dict[str, Any]:
        return {
            "mission_id": self.mission_id,
            "icao24": self.icao24,
            "callsign": self.callsign,
            "category": self.category,
            "type_code": self.type_code,
            "t": self.t,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: Any) -> Mission:
        """A mission from its dict (ValueError on anything malformed; extra keys are ignored)."""
        if not isinstance(d, dict):
            raise ValueError("mission: not an object")
        try:
            mission_id, icao24, category, reason, t = d["mission_id"], d["icao24"], d["category"], d["reason"], d["t"]
        except KeyError as exc:
            raise ValueError(f"mission: missing {exc.args[0]!r}") from None
        for name, v in (("mission_id", mission_id), ("icao24", icao24), ("category", category)):
            if not isinstance(v, str) or not v:
                raise ValueError(f"mission: {name} must be a non-empty string")
        if reason not in REASONS:
            raise ValueError(f"mission: reason must be one of {REASONS}, not {reason!r}")
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
            raise ValueError("mission: t must be a finite number")
        callsign, type_code = d.get("callsign"), d.get("type_code")
        for name, v in (("callsign", callsign), ("type_code", type_code)):
            if v is not None and not isinstance(v, str):
                raise ValueError(f"mission: {name} must be a string or null")
        return cls(mission_id=mission_id, icao24=icao24, callsign=callsign, category=category,
                   type_code=type_code, t=float(t), reason=reason)

    @property
    def day(self) -> int:
        return day_of(self.t)

    @property
    def order(self) -> tuple[float, str]:
        return (self.t, self.mission_id)


def day_of(t: float) -> int:
    """UTC day number (days since 1970-01-01) of an epoch time."""
    return math.floor(t / DAY_S)


def day_iso(day: int) -> str:
    return datetime.fromtimestamp(day * DAY_S, UTC).date().isoformat()


def poisson_tail(n: int, lam: float) -> float:
    """P(X >= n) for X ~ Poisson(lam), accurate in the far upper tail (no 1 - cdf there)."""
    if n <= 0:
        return 1.0
    if lam <= 0.0:
        return 0.0
    if n <= lam:  # the tail is large: 1 - cdf loses nothing
        term = math.exp(-lam)
        cdf = 0.0
        for k in range(n):
            cdf += term
            term *= lam / (k + 1)
        return min(1.0, max(0.0, 1.0 - cdf))
    term = math.exp(-lam + n * math.log(lam) - math.lgamma(n + 1))
    total, k = term, n
    while term > total * 1e-17:
        k += 1
        term *= lam / k
        total += term
    return min(1.0, total)


def baseline_stats(daily_counts: Sequence[int], window_count: int, window_days: int, *,
                   prior_missions: float = 0.5) -> dict[str, Any]:
    """The window's count against a baseline of daily counts (oldest first), as the report quotes it.

    ``baseline_per_window`` is the plain rate (count / days) scaled to the window's length and
    ``rate_ratio`` = window_count / baseline_per_window (None when the baseline is empty);
    ``expected_per_window`` adds ``prior_missions`` (Jeffreys) and is the Poisson mean of
    ``p_value`` = P(X >= window_count). ``baseline_daily_mad`` is the raw median absolute
    deviation (multiply by 1.4826 for a standard deviation).
    """
    if not daily_counts:
        raise ValueError("baseline_stats needs at least one baseline day")
    if window_days < 1 or window_count < 0:
        raise ValueError("window_days must be >= 1 and window_count >= 0")
    days = len(daily_counts)
    count = int(sum(daily_counts))
    median = float(statistics.median(daily_counts))
    mad = float(statistics.median(abs(c - median) for c in daily_counts))
    per_window = count / days * window_days
    expected = (count + prior_missions) / days * window_days
    return {
        "window_count": int(window_count),
        "window_days": int(window_days),
        "baseline_days": days,
        "baseline_count": count,
        "baseline_per_window": per_window,
        "baseline_daily_median": median,
        "baseline_daily_mad": mad,
        "expected_per_window": expected,
        "rate_ratio": window_count / per_window if count else None,
        "p_value": poisson_tail(int(window_count), expected),
    }


def activity_alert_id(category: str, episode_day: int) -> str:
    """Stable id of one elevated episode: the category and the UTC day it started."""
    key = f"activity|{category}|{day_iso(episode_day)}".encode()
    return hashlib.sha1(key, usedforsecurity=False).hexdigest()[:20]


def headline(category: str, stats: dict[str, Any]) -> str:
    n, w, b = stats["window_count"], stats["window_days"], stats["baseline_days"]
    return (f"{n} {category} mission{'s' if n != 1 else ''} in {w} days against "
            f"{stats['baseline_per_window']:.1f} per {w} days over the previous {b} days")


@dataclass
class _Category:
    """One category's ledger: what its changelog value holds."""

    # Missions evaluated, by day, kept for the window (ids for idempotence, types, mission lists).
    missions: dict[str, Mission] = field(default_factory=dict)
    # Missions evaluated per day, kept for window + baseline.
    counts: dict[int, int] = field(default_factory=dict)
    # Added, not yet passed by the watermark.
    pending: dict[str, Mission] = field(default_factory=dict)
    # Day of the category's first mission ever (the history rule); never pruned.
    first_day: int | None = None
    # Latest evaluated mission's day: the pruning reference.
    latest_day: int | None = None
    # The open episode's start day (None: armed).
    episode_day: int | None = None

    def empty(self) -> bool:
        return not self.missions and not self.counts and not self.pending and self.first_day is None


class MissionLedger:
    """Missions per category and UTC day; raises ``activity.v1`` alerts (see module docstring)."""

    def __init__(self, config: LedgerConfig | None = None) -> None:
        self.config = config or LedgerConfig()
        self._cats: dict[str, _Category] = {}

    # ------------------------------------------------------------------ input
    def add(self, m: Mission) -> None:
        """Record a mission; a mission id already known adds nothing (re-delivery after a crash).

        A mission older than the window of the latest evaluated one, and not known, is dropped:
        it is a re-delivery whose id was pruned (the watermark promise rules out anything else),
        and counting it twice would be worse than not at all.
        """
        c = self._cats.setdefault(m.category, _Category())
        if m.mission_id in c.pending or m.mission_id in c.missions:
            return
        if c.latest_day is not None and m.day <= c.latest_day - self.config.window_days:
            return
        c.pending[m.mission_id] = m
        if c.first_day is None or m.day < c.first_day:
            c.first_day = m.day

    def advance(self, watermark: float) -> list[dict[str, Any]]:
        """Evaluate every pending mission with ``t <= watermark``, in (t, mission_id) order per
        category (categories in name order); the activity alerts they raise."""
        alerts: list[dict[str, Any]] = []
        for category in sorted(self._cats):
            c = self._cats[category]
            due = sorted((m for m in c.pending.values() if m.t <= watermark), key=lambda m: m.order)
            for m in due:
                del c.pending[m.mission_id]
                doc = self._evaluate(category, c, m)
                if doc is not None:
                    alerts.append(doc)
            if due:
                self._prune(c)
        return alerts

    def finish(self) -> list[dict[str, Any]]:
        """End of input: evaluate everything pending."""
        return self.advance(math.inf)

    def _evaluate(self, category: str, c: _Category, m: Mission) -> dict[str, Any] | None:
        cfg = self.config
        day = m.day
        # Re-arm on the window as it stood just before this mission (its lowest since the last one:
        # between missions the count only falls as days leave the window). Never on the episode's
        # own day, so an alert id (category, start day) is never reused.
        if c.episode_day is not None and day > c.episode_day and cfg.calm(self._stats(c, day)):
            c.episode_day = None
        c.missions[m.mission_id] = m
        c.counts[day] = c.counts.get(day, 0) + 1
        c.latest_day = day if c.latest_day is None else max(c.latest_day, day)
        if c.episode_day is not None:
            return None
        stats = self._stats(c, day)
        window_start = day - cfg.window_days + 1
        watched = c.first_day is not None and c.first_day <= window_start - cfg.min_history_days
        if not (watched and cfg.elevated(stats)):
            return None
        c.episode_day = day
        return self._alert(category, c, m, stats)

    def _stats(self, c: _Category, day: int, extra: Iterable[Mission] = ()) -> dict[str, Any]:
        """baseline_stats of the window ending with ``day``, over the missions counted so far (plus ``extra``)."""
        cfg = self.config
        counts = Counter(c.counts)
        counts.update(m.day for m in extra)
        w0 = day - cfg.window_days + 1
        n = sum(counts.get(d, 0) for d in range(w0, day + 1))
        base = [counts.get(d, 0) for d in range(w0 - cfg.baseline_days, w0)]
        return baseline_stats(base, n, cfg.window_days, prior_missions=cfg.prior_missions)

    def _window_missions(self, c: _Category, day: int, extra: Iterable[Mission] = ()) -> list[Mission]:
        w0 = day - self.config.window_days + 1
        ms = [m for m in (*c.missions.values(), *extra) if w0 <= m.day <= day]
        return sorted(ms, key=lambda m: m.order)

    def _daily(self, c: _Category, day: int, extra: Iterable[Mission] = ()) -> dict[str, int]:
        counts = Counter(c.counts)
        counts.update(m.day for m in extra)
        first = day - self.config.horizon_days + 1
        return {day_iso(d): counts.get(d, 0) for d in range(first, day + 1)}

    def _alert(self, category: str, c: _Category, m: Mission, stats: dict[str, Any]) -> dict[str, Any]:
        cfg = self.config
        day = m.day
        aid = activity_alert_id(category, day)
        window = self._window_missions(c, day)
        types = Counter(x.type_code or "unknown" for x in window)
        w0 = day - cfg.window_days + 1
        return {
            "schema": ACTIVITY_SCHEMA,
            "alert_id": aid,
            "event_id": f"{aid}:0",
            "seq": 0,
            "icao24": "",
            "transition": "activity",
            "status": "open",
            "event_time": m.t,
            "event_time_iso": iso(m.t),
            "severity": "high" if category in INTEREST else "medium",
            "zone": ACTIVITY_ZONE,
            "classification": None,
            "category": category,
            "window_days": cfg.window_days,
            "window_start": w0 * DAY_S,
            "window_end": (day + 1) * DAY_S,
            "window_count": stats["window_count"],
            "baseline_days": cfg.baseline_days,
            "baseline_count": stats["baseline_count"],
            "baseline_per_window": stats["baseline_per_window"],
            "baseline_daily_median": stats["baseline_daily_median"],
            "baseline_daily_mad": stats["baseline_daily_mad"],
            "expected_per_window": stats["expected_per_window"],
            "rate_ratio": stats["rate_ratio"],
            "p_value": stats["p_value"],
            "daily_counts": self._daily(c, day),
            "types": dict(sorted(types.items())),
            "missions": [x.mission_id for x in window],
            "trigger_mission_id": m.mission_id,
            "history_start": day_iso(c.first_day) if c.first_day is not None else None,
            "headline": headline(category, stats),
        }

    def _prune(self, c: _Category) -> None:
        """Keep counts for window + baseline and missions for the window of the latest day."""
        if c.latest_day is None:
            return
        keep_counts = c.latest_day - self.config.horizon_days + 1
        keep_missions = c.latest_day - self.config.window_days + 1
        c.counts = {d: n for d, n in c.counts.items() if d >= keep_counts}
        c.missions = {k: m for k, m in c.missions.items() if m.day >= keep_missions}

    # ------------------------------------------------------------------ state
    def categories(self) -> list[str]:
        return sorted(k for k, c in self._cats.items() if not c.empty())

    def export_state(self, category: str) -> bytes | None:
        """One category's state as the changelog value (None: nothing known)."""
        c = self._cats.get(category)
        if c is None or c.empty():
            return None
        return orjson.dumps({
            "v": _STATE_VERSION,
            "counts": [[d, n] for d, n in sorted(c.counts.items())],
            "missions": [m.to_dict() for m in sorted(c.missions.values(), key=lambda m: m.order)],
            "pending": [m.to_dict() for m in sorted(c.pending.values(), key=lambda m: m.order)],
            "first_day": c.first_day,
            "latest_day": c.latest_day,
            "episode_day": c.episode_day,
        })

    def import_state(self, category: str, data: bytes) -> None:
        """Replace one category's state with an exported one (ValueError if it is not one)."""
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"mission ledger state of {category!r}: {exc}") from None
        if not isinstance(doc, dict) or doc.get("v") != _STATE_VERSION:
            raise ValueError(f"mission ledger state of {category!r}: not a version {_STATE_VERSION} state")
        try:
            c = _Category(
                missions={m.mission_id: m for m in map(Mission.from_dict, doc["missions"])},
                counts={int(d): int(n) for d, n in doc["counts"]},
                pending={m.mission_id: m for m in map(Mission.from_dict, doc["pending"])},
                first_day=_opt_int(doc["first_day"]),
                latest_day=_opt_int(doc["latest_day"]),
                episode_day=_opt_int(doc["episode_day"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"mission ledger state of {category!r}: {exc!r}") from None
        if any(m.category != category for m in (*c.missions.values(), *c.pending.values())):
            raise ValueError(f"mission ledger state of {category!r} holds another category's missions")
        self._cats[category] = c

    # ------------------------------------------------------------------ report
    def summary(self, category: str | None = None, now: float | None = None) -> dict[str, Any]:
        """The baseline section of a report: the window ending with ``now``'s UTC day (default:
        the latest known mission) against the baseline before it, for one category or, with
        ``category=None``, for all categories pooled (plus each under ``categories``).

        Pending missions (not yet passed by the watermark) count here: a report describes every
        mission known. Days pruned from the state count as 0.
        """
        cats = [category] if category is not None else self.categories()
        known = [c for k in cats if (c := self._cats.get(k)) is not None]
        times = [m.t for c in known for m in (*c.missions.values(), *c.pending.values())]
        if now is None:
            now = max(times) if times else None
        out: dict[str, Any] = {
            "category": category,
            "window_days": self.config.window_days,
            "baseline_days": self.config.baseline_days,
        }
        if now is None:
            out.update(missions_known=0, window_start=None, window_end=None, stats=None, daily_counts={},
                       types={}, missions=[], episode_open=False, history_start=None)
        else:
            day = day_of(now)
            pooled = _Category()
            for c in known:
                for d, n in c.counts.items():
                    pooled.counts[d] = pooled.counts.get(d, 0) + n
                pooled.missions.update(c.missions)
            pending = [m for c in known for m in c.pending.values() if m.t <= now]
            window = self._window_missions(pooled, day, pending)
            firsts = [c.first_day for c in known if c.first_day is not None]
            out.update(
                missions_known=len(times),
                window_start=(day - self.config.window_days + 1) * DAY_S,
                window_end=(day + 1) * DAY_S,
                stats=self._stats(pooled, day, extra=pending),
                daily_counts=self._daily(pooled, day, pending),
                types=dict(sorted(Counter(m.type_code or "unknown" for m in window).items())),
                missions=[m.mission_id for m in window],
                episode_open=any(c.episode_day is not None for c in known),
                history_start=day_iso(min(firsts)) if firsts else None,
            )
        if category is None:
            out["categories"] = {k: self.summary(k, now) for k in cats}
        return out


def _opt_int(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"expected an integer day, not {v!r}")
    return v
