"""``skyfence report``: mission reports over recorded files or the live tracks topic.

This module owns turning track updates (``schemas/track.v1.json``) into a report: one
entry per military/surveillance track segment with its time window, closest approach
to Mexican sovereign airspace (and the nearest named place), whether it entered, and
seconds in each zone; daily mission counts; and a map picture (matplotlib, Agg, no
internet) of the tracks over the project's own zone files.

A **mission** is a track segment whose closest approach within the report window came
within the outermost approach ring (100 nm by default) of the sovereign boundary.

Behaviour, when given: each track entry lists the on-station patterns (``pattern.v1``
documents, the latest event of each ``pattern_id``) of its aircraft that overlap the
segment, with their total time on station; and a ``baseline`` section quotes the mission
ledger's summary (window against baseline, daily counts), drawn as a bar chart under the map.

Sources: ``collect_file_updates`` runs the same engine as ``skyfence analyze`` over
files; ``collect_topic_updates`` reads the pipeline's tracks topic between two times
(offsets for times). ``build_report`` is pure; ``render_png`` and ``format_text`` draw it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streams.settings import Settings

# A trail point is kept only when it moved this far (degrees, ~1 km) from the last kept one:
# a 10-hour flight stays a few thousand points, far below what a map picture can show.
PATH_STEP_DEG = 0.01
NM = 1852.0
# One colour per pattern kind, the same as the live map's (streams/web/static/map.js KIND_COLOUR).
KIND_COLOUR = {"orbit": "#4cc9f0", "racetrack": "#f72585", "survey": "#b5e48c", "loiter": "#f8961e"}


# --- sources ---------------------------------------------------------------------------------
def _updates_output(engine: Any, partitions: int) -> tuple[Any, list[dict[str, Any]], list[Point]]:
    """``skyfence analyze``'s output (the worker's own track stage), keeping every track update
    (the closing ones too) and every position, not only each aircraft's latest state."""
    from streams.analyze import AnalyzeOutput

    updates: list[dict[str, Any]] = []
    points: list[Point] = []

    def keep_points(positions: Sequence[Any]) -> None:
        points.extend((p.icao24, p.event_time, p.lat, p.lon,
                       math.nan if p.alt_baro_ft is None else p.alt_baro_ft) for p in positions)

    out = AnalyzeOutput(engine, partitions=partitions, keep_tracks=False, on_positions=keep_points,
                        on_tracks=updates.extend)
    return out, updates, points


Point = tuple[str, float, float, float, float]
"""icao24, event time, lat, lon, altitude in feet (NaN if unknown)."""


async def collect_file_updates(
    files: Sequence[tuple[str, str]], engine: Any, max_message_bytes: int | None = None, partitions: int = 8,
    behaviour: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], list[Point]]:
    """Track updates and positions of ``(path, format)`` files through one engine, as ``analyze --close``.

    ``behaviour``, when given, receives the run's ``alerts`` (every schema) and its mission ``ledger``."""
    from streams.ingest import run
    from streams.readers import open_feed

    out, updates, points = _updates_output(engine, partitions)
    for path, fmt in files:
        await run(open_feed(path, fmt=fmt), fmt, out, source=path, receiver=None, max_message_bytes=max_message_bytes)
    out.finish(close_all=True)
    if behaviour is not None:
        behaviour["alerts"] = out.result.alerts
        behaviour["ledger"] = out.result.ledger
    return updates, points


async def collect_topic_updates(
    settings: Settings, t_from: float | None, t_to: float | None, idle_s: float = 2.0
) -> list[dict[str, Any]]:
    """Track updates from the tracks topic with Kafka timestamps in [t_from, t_to] (all partitions)."""
    from streams.topics import TRACKS

    return await collect_topic_docs(settings, TRACKS, t_from, t_to, lambda d: d.get("schema") == "track.v1", idle_s)


async def collect_topic_docs(
    settings: Settings, spec: Any, t_from: float | None, t_to: float | None,
    keep: Callable[[dict[str, Any]], bool], idle_s: float = 2.0,
) -> list[dict[str, Any]]:
    """JSON documents of topic ``spec`` (a streams.topics.TopicSpec) with Kafka timestamps in
    [t_from, t_to] (all partitions) for which ``keep(doc)`` holds: read up to the end each
    partition had when the report started, or ``idle_s`` seconds without records."""
    from streams.kafka_io import From, TopicReader, json_documents

    out: list[dict[str, Any]] = []
    async with TopicReader(settings, [spec.name(settings)], start=From.time(t_from), until=t_to, stop_at_end=True,
                           idle_s=idle_s, missing_hint="; is a worker running?") as reader:
        async for batch in reader:
            for records in batch.values():
                out.extend(doc for doc in json_documents(records) if keep(doc))
    return out


# --- the report (pure) -------------------------------------------------------------------------
def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _in(t: float, t_from: float | None, t_to: float | None) -> bool:
    return (t_from is None or t >= t_from) and (t_to is None or t <= t_to)


ScoredPoint = tuple[str, float, float, float, float, float]
"""icao24, event time, lat, lon, altitude ft (NaN if unknown), signed distance to the boundary (m, < 0 inside)."""


def points_from_updates(updates: Iterable[dict[str, Any]]) -> list[ScoredPoint]:
    """Scored points from track updates alone (the live source, where positions are not re-read)."""
    out: list[ScoredPoint] = []
    for u in updates:
        p = u.get("position") or {}
        d = (u.get("geofence") or {}).get("distance_to_boundary_m")
        if not all(isinstance(p.get(k), int | float) for k in ("event_time", "lat", "lon")):
            continue
        alt = p.get("alt_ft")
        out.append((str(u.get("icao24")), float(p["event_time"]), float(p["lat"]), float(p["lon"]),
                    float(alt) if isinstance(alt, int | float) else math.nan,
                    float(d) if isinstance(d, int | float) else math.inf))
    return out


def build_report(
    updates: Iterable[dict[str, Any]],
    outer_ring_m: float,
    t_from: float | None = None,
    t_to: float | None = None,
    all_aircraft: bool = False,
    points: Sequence[ScoredPoint] | None = None,
    describe: Callable[[float, float], str | None] | None = None,
    patterns: Sequence[dict[str, Any]] | None = None,
    baseline: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report as a JSON-able dict: ``window``, ``summary``, ``daily``, ``tracks`` (one per segment)
    and ``baseline``.

    Segments (and their classification and cumulative ``time_in_zone_s``) come from the track
    updates, grouped by ``segment_id``; the closest approach, entry and path come from the
    scored ``points`` of that aircraft between the segment's first and last seen (default: the
    updates' own positions). Only times in [t_from, t_to] count; time in each zone is the growth
    of the cumulative counters over the window. Without ``all_aircraft`` only military,
    surveillance or watchlisted tracks are reported.

    ``patterns``: pattern.v1 documents (any events; other schemas are ignored). Each track entry
    gets ``patterns`` (its aircraft's patterns whose [start, end] overlaps the entry's
    [first_seen, last_seen], from the latest event of each pattern_id) and ``time_on_station_s``
    (the overlapping time, summed). ``baseline``: the mission ledger's summary (flat, or with the
    figures under ``stats``); missing keys become None. It becomes the ``baseline`` section (None
    without one).
    """
    updates = list(updates)
    by_pattern = _patterns_by_icao(patterns or ())
    pts = sorted(points if points is not None else points_from_updates(updates), key=lambda q: (q[0], q[1]))
    by_icao: dict[str, list[ScoredPoint]] = {}
    for q in pts:
        by_icao.setdefault(q[0], []).append(q)
    by_seg: dict[str, list[dict[str, Any]]] = {}
    for u in updates:
        sid = u.get("segment_id")
        pos = u.get("position") or {}
        if isinstance(sid, str) and isinstance(pos.get("event_time"), int | float):
            by_seg.setdefault(sid, []).append(u)
    tracks: list[dict[str, Any]] = []
    for sid, ups in by_seg.items():
        ups.sort(key=lambda u: (u["position"]["event_time"], u.get("positions", 0)))
        last = ups[-1]
        cls = last.get("classification") or {}
        if not all_aircraft and not (cls.get("is_military_or_surveillance") or cls.get("watchlisted")):
            continue
        lo = max(float(last.get("first_seen", ups[0]["position"]["event_time"])),
                 -math.inf if t_from is None else t_from)
        hi = min(float(last.get("last_seen", last["position"]["event_time"])), math.inf if t_to is None else t_to)
        seg_pts = [q for q in by_icao.get(str(last.get("icao24")), ()) if lo <= q[1] <= hi]
        if not seg_pts:
            continue
        in_w = [u for u in ups if _in(float(u["position"]["event_time"]), t_from, t_to)]
        before = [u for u in ups if t_from is not None and u["position"]["event_time"] < t_from]
        cum_last = ((in_w or ups)[-1]).get("time_in_zone_s") or {}
        cum_prior = (before[-1] if before else {}).get("time_in_zone_s") or {}
        zones = {k: round(max(0.0, float(v) - float(cum_prior.get(k, 0.0))), 1) for k, v in cum_last.items()}
        entry = _segment_entry(sid, (in_w or ups)[-1], seg_pts, zones, outer_ring_m, describe, (lo, hi))
        on = [p for p in by_pattern.get(str(last.get("icao24")), ()) if p["start"] <= hi and p["end"] >= lo]
        entry["patterns"] = on
        entry["time_on_station_s"] = round(sum(max(0.0, min(p["end"], hi) - max(p["start"], lo)) for p in on), 1)
        tracks.append(entry)
    tracks.sort(key=lambda t: (t["first_seen"], t["segment_id"]))
    missions = [t for t in tracks if t["mission"]]
    daily: dict[str, int] = {}
    for m in missions:
        day = str(m["closest_approach"]["time_iso"])[:10]
        daily[day] = daily.get(day, 0) + 1
    if t_from is not None and t_to is not None:
        days = _day_span(t_from, t_to, [])
    else:
        # no closed window: the days the data covers, so two recordings years apart are not "2,744 days"
        days = sorted({_iso(x)[:10] for t in tracks for x in (t["first_seen"], t["last_seen"])})  # type: ignore[index]
    for d in days:
        daily.setdefault(d, 0)
    summary = {
        "missions": len(missions),
        "days": len(days),
        "entered": sum(1 for m in missions if m["entered"]),
        "tracks": len(tracks),
        "aircraft": len({t["icao24"] for t in missions}),
        "patterns": sum(len(t["patterns"]) for t in tracks),
        "time_on_station_s": round(sum(t["time_on_station_s"] for t in tracks), 1),
        "headline": f"{len(missions)} mission{'s' if len(missions) != 1 else ''} in {len(days)} "
                    f"day{'s' if len(days) != 1 else ''}",
    }
    return {
        "schema": "report.v1",
        "window": {"from": t_from, "to": t_to, "from_iso": _iso(t_from), "to_iso": _iso(t_to)},
        "scope": "all aircraft" if all_aircraft else "military and surveillance aircraft",
        "mission_definition": f"a track segment that came within {outer_ring_m / 1852:g} nm "
                              "of Mexico's sovereign airspace (land + 12 nm) in the window",
        "summary": summary,
        "daily": dict(sorted(daily.items())),
        "tracks": tracks,
        "baseline": None if baseline is None else baseline_section(baseline),
    }


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None


def pattern_label(doc: dict[str, Any]) -> str:
    """A pattern's kind, dimensions and distance to the 12 nm line, as the map labels it:
    "racetrack 54 nm x 9 nm, 30 nm from the line". Missing dimensions are left out."""
    kind = str(doc.get("kind") or "pattern")
    raw = doc.get("dimensions")
    dims: dict[str, Any] = raw if isinstance(raw, dict) else {}
    leg, width, radius, span = (None if (x := _number(dims.get(k))) is None else f"{x / NM:.0f} nm"
                                for k in ("leg_length_m", "width_m", "radius_m", "span_m"))
    if kind == "orbit" and radius:
        size = f"radius {radius}"
    elif leg and width:
        size = f"{leg} x {width}"
    else:
        size = span or ""
    d = _number(doc.get("distance_to_boundary_m"))
    where = "" if d is None else (f"{-d / NM:.0f} nm inside the line" if d < 0 else f"{d / NM:.0f} nm from the line")
    head = f"{kind} {size}".strip()
    return f"{head}, {where}" if where else head


def _patterns_by_icao(docs: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The latest event of each pattern (by event time, then seq), as report entries, per icao24.

    The on_station alert repeats its pattern's figures under its own alert_id but the same
    pattern_id: it marks the pattern ``on_station_alert`` and never hides a later update.
    """
    latest: dict[str, dict[str, Any]] = {}
    alerted: set[str] = set()
    for d in docs:
        pid = d.get("pattern_id")
        if d.get("schema") != "pattern.v1" or not isinstance(pid, str) or _number(d.get("started_at")) is None:
            continue
        if d.get("transition") == "on_station":
            alerted.add(pid)
        key = (_number(d.get("event_time")) or 0.0, d.get("transition") != "on_station", _number(d.get("seq")) or 0.0)
        cur = latest.get(pid)
        if cur is None or key >= (_number(cur.get("event_time")) or 0.0, cur.get("transition") != "on_station",
                                  _number(cur.get("seq")) or 0.0):
            latest[pid] = d
    out: dict[str, list[dict[str, Any]]] = {}
    for pid, d in latest.items():
        start = float(d["started_at"])
        tos = _number(d.get("time_on_station_s"))
        end = start + tos if tos is not None else max(start, _number(d.get("event_time")) or start)
        out.setdefault(str(d.get("icao24")), []).append({
            "pattern_id": pid,
            "kind": d.get("kind"),
            "start": start,
            "end": end,
            "start_iso": _iso(start),
            "end_iso": _iso(end),
            "time_on_station_s": round(end - start, 1),
            "status": "closed" if d.get("transition") == "pattern_ended" else "open",
            "end_reason": d.get("end_reason"),
            "distance_to_boundary_m": _number(d.get("distance_to_boundary_m")),
            "inside_sovereign": d.get("inside_sovereign"),
            "airspace_country": d.get("airspace_country"),
            "centre": d.get("centre"),
            "dimensions": d.get("dimensions"),
            "description": d.get("description"),
            "label": pattern_label(d),
            "on_station_alert": pid in alerted,
            "outline": d.get("outline") or [],
        })
    for lst in out.values():
        lst.sort(key=lambda p: (p["start"], p["pattern_id"]))
    return out


_BASELINE_KEYS = ("category", "window_days", "window_count", "baseline_days", "baseline_count",
                  "baseline_per_window", "baseline_daily_median", "baseline_daily_mad", "rate_ratio", "p_value")


def baseline_section(baseline: dict[str, Any]) -> dict[str, Any]:
    """The report's ``baseline`` section from the mission ledger's summary (missing keys: None).

    Window days are those in [window_start, window_end) when the summary gives them, else the
    last ``window_days`` days of ``daily_counts``.
    """
    raw_stats = baseline.get("stats")
    stats: dict[str, Any] = raw_stats if isinstance(raw_stats, dict) else {}
    out: dict[str, Any] = {k: baseline.get(k, stats.get(k)) for k in _BASELINE_KEYS}
    raw_daily = baseline.get("daily_counts") or baseline.get("daily") or {}
    daily = {str(k): int(v) for k, v in sorted(raw_daily.items()) if _number(v) is not None} \
        if isinstance(raw_daily, dict) else {}
    w0, w1, wd = _number(baseline.get("window_start")), _number(baseline.get("window_end")), _number(out["window_days"])
    if w0 is not None and w1 is not None:
        lo, hi = _iso(w0)[:10], _iso(w1 - 1)[:10]  # type: ignore[index]
        window = [d for d in daily if lo <= d <= hi]
    else:
        window = list(daily)[-int(wd):] if wd is not None and wd >= 1 else []
    headline = baseline.get("headline")
    if not headline and all(_number(out[k]) is not None for k in ("window_count", "window_days", "baseline_days",
                                                                  "baseline_per_window")):
        n, w = int(out["window_count"]), int(out["window_days"])
        cat = f"{out['category']} " if out["category"] else ""
        headline = (f"{n} {cat}mission{'s' if n != 1 else ''} in {w} days against "
                    f"{out['baseline_per_window']:.1f} per {w} days over the previous {int(out['baseline_days'])} days")
    out.update(headline=headline or None, daily_counts=daily, window=window,
               window_start_iso=_iso(w0), window_end_iso=_iso(w1))
    return out


def _segment_entry(sid: str, last: dict[str, Any], pts: list[ScoredPoint], zones: dict[str, float],
                   outer_ring_m: float, describe: Callable[[float, float], str | None] | None,
                   window: tuple[float, float]) -> dict[str, Any]:
    best = min(pts, key=lambda q: q[5])
    dist = best[5] if math.isfinite(best[5]) else None
    closest = {
        "distance_m": None if dist is None else round(dist, 1),
        "lat": best[2], "lon": best[3], "alt_ft": None if math.isnan(best[4]) else best[4],
        "time": best[1], "time_iso": _iso(best[1]),
        "description": describe(best[2], best[3]) if describe is not None else None,
    }
    # The engine's running closest approach sees every position, while the live source only has
    # the positions of track updates: prefer it when it lies in the window and is closer.
    ca = last.get("closest_approach") or {}
    ca_d, ca_t = ca.get("distance_m"), ca.get("event_time")
    if (isinstance(ca_d, int | float) and isinstance(ca_t, int | float) and window[0] <= ca_t <= window[1]
            and (dist is None or ca_d < dist) and isinstance(ca.get("lat"), int | float)):
        dist = float(ca_d)
        closest = {"distance_m": round(dist, 1), "lat": ca["lat"], "lon": ca["lon"], "alt_ft": ca.get("alt_ft"),
                   "time": float(ca_t), "time_iso": _iso(float(ca_t)),
                   "description": ca.get("description") or (describe(ca["lat"], ca["lon"]) if describe else None)}
    path: list[list[float]] = []
    for q in pts:
        pt = [round(q[2], 5), round(q[3], 5)]
        if not path or abs(pt[0] - path[-1][0]) + abs(pt[1] - path[-1][1]) >= PATH_STEP_DEG or q is pts[-1]:
            path.append(pt)
    cls = last.get("classification") or {}
    return {
        "segment_id": sid,
        "icao24": last.get("icao24"),
        "callsign": last.get("callsign"),
        "category": cls.get("category"),
        "type_code": cls.get("type_code"),
        "registration": cls.get("registration"),
        "first_seen": window[0],
        "last_seen": window[1],
        "first_seen_iso": _iso(window[0]),
        "last_seen_iso": _iso(window[1]),
        "points": len(pts),
        "closest_approach": closest,
        "entered": dist is not None and dist < 0,
        "mission": dist is not None and dist <= outer_ring_m,
        "time_in_zone_s": zones,
        "path": path,
    }


def _day_span(t_from: float | None, t_to: float | None, times: Sequence[float]) -> list[str]:
    lo = t_from if t_from is not None else (min(times) if times else None)
    hi = t_to if t_to is not None else (max(times) if times else None)
    if lo is None or hi is None or hi < lo:
        return []
    d0 = datetime.fromtimestamp(lo, UTC).date()
    d1 = datetime.fromtimestamp(hi, UTC).date()
    return [(d0 + timedelta(days=i)).isoformat() for i in range((d1 - d0).days + 1)]


# --- output ----------------------------------------------------------------------------------
def _hms(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{(s % 3600) // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def format_text(report: dict[str, Any]) -> str:
    """The report for a terminal or a newsroom note."""
    w = report["window"]
    lines = [f"skyfence mission report — {report['scope']}, "
             f"{w['from_iso'] or 'start of data'} to {w['to_iso'] or 'end of data'}",
             f"mission = {report['mission_definition']}", ""]
    for t in report["tracks"]:
        ca = t["closest_approach"]
        d = ca["distance_m"]
        where = "inside" if d is not None and d < 0 else "from the boundary"
        dist = f"{abs(d) / 1000:.1f} km {where}" if d is not None else "unknown distance"
        zones = ", ".join(f"{k} {_hms(v)}" for k, v in t["time_in_zone_s"].items() if v > 0)
        who = t["callsign"] or t["icao24"]
        lines.append(
            f"{'MISSION' if t['mission'] else 'track  '} {who} ({t['icao24']}, {t['category']}"
            f"{', ' + t['type_code'] if t['type_code'] else ''})  {t['first_seen_iso']} – {t['last_seen_iso']}"
        )
        lines.append(f"    closest approach {dist} at {ca['time_iso']}"
                     f"{', ' + ca['description'] if ca['description'] else ''}; "
                     f"{'ENTERED' if t['entered'] else 'did not enter'} Mexican sovereign airspace")
        if zones:
            lines.append(f"    time in zones: {zones}")
        for p in t.get("patterns") or ():
            lines.append(f"    on station: {p['label']}, {p['start_iso']} – {p['end_iso']} "
                         f"({_hms(p['time_on_station_s'])}{', ' + p['description'] if p['description'] else ''})"
                         f"{'; ON STATION alert' if p['on_station_alert'] else ''}")
        if t.get("patterns"):
            lines.append(f"    time on station: {_hms(t['time_on_station_s'])}")
    s = report["summary"]
    lines += ["", "daily missions: " + (", ".join(f"{d} {n}" for d, n in report["daily"].items()) or "none"),
              f"{s['headline']} ({s['aircraft']} aircraft, {s['entered']} entered; {s['tracks']} tracks reported)"]
    if s.get("patterns"):
        lines.append(f"{s['patterns']} on-station pattern{'s' if s['patterns'] != 1 else ''}, "
                     f"{_hms(s['time_on_station_s'])} on station")
    b = report.get("baseline")
    if b:
        lines += ["", f"baseline ({b['category'] or 'all categories'}): {b['headline'] or 'no missions known'}"]
        figures = []
        if b["window_days"] is not None:
            figures.append(f"window {b['window_days']} days: {_opt(b['window_count'], 'd')} mission(s)")
        if b["baseline_days"] is not None:
            figures.append(f"baseline {b['baseline_days']} days: {_opt(b['baseline_count'], 'd')} mission(s) "
                           f"(median {_opt(b['baseline_daily_median'], 'g')}/day, "
                           f"MAD {_opt(b['baseline_daily_mad'], 'g')})")
        figures.append(f"rate ratio {_opt(b['rate_ratio'], '.1f')}, p = {_opt(b['p_value'], '.2g')}")
        lines.append("    " + "; ".join(figures))
        busy = [f"{d}{'*' if d in b['window'] else ''} {n}" for d, n in b["daily_counts"].items() if n]
        lines.append(f"    missions per day ({len(b['daily_counts'])} days, * = window): "
                     + (", ".join(busy) or "none"))
    return "\n".join(lines)


def _opt(v: Any, fmt: str) -> str:
    return "n/a" if _number(v) is None else format(int(v) if fmt == "d" else v, fmt)


def render_png(report: dict[str, Any], zones: dict[str, Any], neighbours: dict[str, Any] | None,
               path: Path, title: str | None = None, zoom: bool = False) -> None:
    """A map of the reported tracks over the sovereign zone and rings (matplotlib, Agg, offline).

    The map frames all of Mexico and the tracks; ``zoom`` frames the missions and their patterns
    alone (a racetrack 20 nm across is a speck on a map of Mexico)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = report.get("baseline")
    if base:
        fig, (ax, bx) = plt.subplots(2, 1, figsize=(11, 10), dpi=110, gridspec_kw={"height_ratios": [3.2, 1]})
        _baseline_chart(bx, base)
    else:
        fig, ax = plt.subplots(figsize=(11, 7.5), dpi=110)
    fig.patch.set_facecolor("#0e1621")
    ax.set_facecolor("#0b2030")

    def polys(geom: dict[str, Any]) -> list[Any]:
        if geom["type"] == "Polygon":
            return [geom["coordinates"]]
        if geom["type"] == "MultiPolygon":
            return list(geom["coordinates"])
        return []

    for f in (neighbours or {}).get("features", []):
        for poly in polys(f["geometry"]):
            for ring in poly[:1]:
                xs, ys = zip(*[(c[0], c[1]) for c in ring], strict=True)
                ax.fill(xs, ys, color="#1f2a38", ec="#3c5068", lw=0.5, zorder=1)
    for f in zones["features"]:
        kind = f["properties"].get("kind")
        if kind == "sovereign":
            for poly in polys(f["geometry"]):
                xs, ys = zip(*[(c[0], c[1]) for c in poly[0]], strict=True)
                ax.fill(xs, ys, color="#2f6f4f", ec="#5fd39a", lw=0.8, zorder=2)
        elif kind == "buffer" and f["geometry"]["type"] == "MultiLineString":
            for i, line in enumerate(f["geometry"]["coordinates"]):
                xs, ys = zip(*[(c[0], c[1]) for c in line], strict=True)
                ax.plot(xs, ys, ls=(0, (4, 3)), color="#9bbbbb", lw=0.7, zorder=3,
                        label=f["properties"]["name"] if i == 0 else None)
    lon_all: list[float] = []
    lat_all: list[float] = []
    palette = ["#ff5a5f", "#ffd166", "#4cc9f0", "#f72585", "#b5e48c", "#f8961e", "#c77dff"]
    k = 0
    for t in sorted(report["tracks"], key=lambda t: t["mission"]):  # missions drawn last, on top
        if not t["path"]:
            continue
        lats, lons = zip(*t["path"], strict=True)
        lat_all += lats
        lon_all += lons
        if not t["mission"]:
            ax.plot(lons, lats, color="#8a9bb0", lw=0.7, alpha=0.5, zorder=4)
            continue
        color = palette[k % len(palette)]
        k += 1
        ca = t["closest_approach"]
        who = t["callsign"] or t["icao24"]
        d = ca["distance_m"]
        how = "" if d is None else f"{abs(d) / 1000:.0f} km inside" if d < 0 else f"{d / 1000:.0f} km from boundary"
        ax.plot(lons, lats, color=color, lw=1.8, zorder=5, label=f"{who} {str(ca['time_iso'])[:10]}: {how}")
        if ca["lat"] is not None and ca["lon"] is not None:
            ax.plot([ca["lon"]], [ca["lat"]], marker="o", ms=6, color=color, mec="white", mew=0.8, zorder=6)
            ax.annotate(f"{who}\n{how}", (ca["lon"], ca["lat"]), xytext=(7, 4), textcoords="offset points",
                        color="white", fontsize=8, fontweight="bold", zorder=7)
    kinds: set[str] = set()
    for t in report["tracks"]:
        for p in t.get("patterns") or ():
            ring = [c for c in p["outline"] if isinstance(c, list | tuple) and len(c) >= 2]
            if len(ring) < 2:
                continue
            colour = KIND_COLOUR.get(str(p["kind"]), "#dfe7ef")
            xs, ys = zip(*[(c[0], c[1]) for c in ring], strict=True)
            lon_all += xs
            lat_all += ys
            ax.fill(xs, ys, color=colour, alpha=0.15, zorder=5)
            ax.plot(xs, ys, ls=(0, (5, 3)), color=colour, lw=1.6, zorder=6,
                    label=None if p["kind"] in kinds else f"{p['kind']} (on-station pattern)")
            kinds.add(str(p["kind"]))
            # under the outline's southernmost point: the closest-approach label sits to its right
            low = min(ring, key=lambda c: c[1])
            ax.annotate(f"{t['callsign'] or t['icao24']}: {p['label']}", (low[0], low[1]), xytext=(0, -6),
                        textcoords="offset points", ha="center", va="top", color=colour, fontsize=7.5,
                        fontweight="bold", zorder=7)
    ax.fill([], [], color="#2f6f4f", ec="#5fd39a", label="Mexico land + 12 nm (sovereign)")
    # frame Mexico plus the reported tracks, clipped to the bundled data's box
    frame_x, frame_y = ([], []) if zoom and lon_all else ([-118.5, -86.0], [14.0, 33.0])
    # zoomed: a degree around what is drawn, at most; Mexico's frame keeps its 1-degree margin
    margin = 0.6 if zoom and lon_all else 1.0
    lo_x = min([*frame_x, *lon_all]) - margin
    hi_x = max([*frame_x, *lon_all]) + margin
    lo_y = min([*frame_y, *lat_all]) - margin
    hi_y = max([*frame_y, *lat_all]) + margin
    ax.set_xlim(max(lo_x, -125.0), min(hi_x, -78.0))
    ax.set_ylim(max(lo_y, 5.0), min(hi_y, 40.0))
    ax.set_aspect(1.0 / math.cos(math.radians((lo_y + hi_y) / 2)))
    ax.tick_params(colors="#8a9bb0", labelsize=8)
    for s in ax.spines.values():
        s.set_color("#253244")
    s = report["summary"]
    ax.set_title(title or f"skyfence — {s['headline']} ({report['scope']})", color="#dfe7ef", fontsize=12, pad=10)
    leg = ax.legend(loc="lower left", fontsize=7, facecolor="#0e1621", edgecolor="#253244", labelcolor="#dfe7ef")
    leg.set_zorder(8)
    fig.text(0.99, 0.01, "Boundaries © OpenStreetMap contributors, ODbL 1.0 · rings are distance buffers, "
             "not legal zones", ha="right", va="bottom", color="#8a9bb0", fontsize=7)
    fig.tight_layout(rect=(0.0, 0.02, 1.0, 1.0))  # room for the credit line under the lowest panel
    fig.savefig(path, facecolor=fig.get_facecolor())
    plt.close(fig)


def _baseline_chart(ax: Any, base: dict[str, Any]) -> None:
    """Missions per day, window days highlighted against the baseline days, with the baseline's median."""
    ax.set_facecolor("#0b2030")
    days = list(base["daily_counts"])
    counts = [base["daily_counts"][d] for d in days]
    window = set(base["window"])
    colours = ["#ff5a5f" if d in window else "#4c7aa8" for d in days]
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    idx = [i for i, d in enumerate(days) if d in window]
    if idx:  # shade the window so its quiet days show as window days too
        ax.axvspan(min(idx) - 0.5, max(idx) + 0.5, color="#ff5a5f", alpha=0.08, lw=0)
    ax.bar(range(len(days)), counts, color=colours, width=0.85)
    handles: list[Any] = [
        Patch(color="#ff5a5f", label=f"window ({base['window_days'] or len(window)} days)"),
        Patch(color="#4c7aa8", label=f"baseline ({base['baseline_days'] or len(days) - len(window)} days)"),
    ]
    median = _number(base["baseline_daily_median"])
    if median is not None:
        handles.append(ax.axhline(median, color="#dfe7ef", lw=0.8, ls=(0, (4, 3)),
                                  label=f"baseline daily median {median:g}"))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    step = max(1, len(days) // 10)
    ax.set_xticks(range(0, len(days), step), [d[5:] for d in days[::step]])
    ax.set_xlim(-0.6, max(len(days), 1) - 0.4)
    ax.set_ylabel("missions / day", color="#8a9bb0", fontsize=8)
    ax.tick_params(colors="#8a9bb0", labelsize=7)
    for sp in ax.spines.values():
        sp.set_color("#253244")
    ax.set_title(base["headline"] or "missions per day", color="#dfe7ef", fontsize=9.5)
    ax.legend(handles=handles, loc="upper left", fontsize=7, facecolor="#0e1621", edgecolor="#253244",
              labelcolor="#dfe7ef")


def neighbours_geojson() -> dict[str, Any]:
    """The bundled neighbours' land + 12 nm outlines, muted background for maps."""
    import json

    from streams.geo.zonefiles import NEIGHBOURS_FILE, data_path

    doc: dict[str, Any] = json.loads(data_path(NEIGHBOURS_FILE).read_text(encoding="utf-8"))
    return doc


def score_points(fence: Any, raw: Sequence[Point]) -> list[ScoredPoint]:
    """Signed distance to the sovereign boundary for every position (one geofence kernel call)."""
    import numpy as np

    if not raw:
        return []
    lat = np.array([q[2] for q in raw], dtype=np.float64)
    lon = np.array([q[3] for q in raw], dtype=np.float64)
    d, _ = fence.distance(lat, lon)
    inside = fence.contains(lat, lon)
    signed = np.where(inside, -d, d)
    return [(q[0], q[1], q[2], q[3], q[4], float(x)) for q, x in zip(raw, signed, strict=True)]


# --- command ---------------------------------------------------------------------------------
def run_report(settings: Settings, files: Sequence[str], fmt: str | None, t_from: float | None,
               t_to: float | None, png: str | None, as_json: bool, all_aircraft: bool,
               zoom: bool = False, collected: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the report from ``files`` (embedded engine) or, with no files, the live tracks topic.

    Writes the PNG when ``png`` is given and returns the report dict; the CLI prints it.
    ``collected``, when given, receives what ``skyfence export`` needs beyond the report: the
    run's alert documents (``alerts``), every position (``points``: icao24, t, lat, lon, alt ft)
    and the geofence (``fence``).
    """
    import asyncio

    from streams.readers import sniff_format
    from streams.settings import SettingsError
    from streams.wiring import build_engine, load_geofence

    if files:
        pairs = []
        for f in files:
            if not Path(f).is_file():
                raise SettingsError(f"report: no such file {f}")
            pairs.append((f, fmt or sniff_format(Path(f))))
        fence = load_geofence(settings)
        engine = build_engine(settings, geofence=fence)
        got: dict[str, Any] = {}
        updates, raw = asyncio.run(collect_file_updates(pairs, engine, settings.max_message_bytes,
                                                        settings.partitions, behaviour=got))
        points = score_points(fence, raw)
        patterns = [a for a in got["alerts"] if a.get("schema") == "pattern.v1"]
        if collected is not None:
            collected.update(alerts=list(got["alerts"]), points=raw, fence=fence)
        ledger = got["ledger"]
    else:
        fence = load_geofence(settings, warm=False)
        updates = asyncio.run(collect_topic_updates(settings, t_from, t_to))
        points = None
        patterns, ledger = asyncio.run(_topic_behaviour(settings, t_from, t_to))
    from streams.core.places import Places

    places = Places.load()
    outer = float(max(fence.ring_m)) if len(fence.ring_m) else 0.0
    baseline = _baseline(ledger, t_to)
    report = build_report(updates, outer, t_from, t_to, all_aircraft=all_aircraft, points=points,
                          describe=places.describe, patterns=patterns, baseline=baseline)
    if png:
        from streams.geo.describe import zones_geojson

        render_png(report, zones_geojson(fence), neighbours_geojson(), Path(png), zoom=zoom)
    return report


async def _topic_behaviour(settings: Settings, t_from: float | None, t_to: float | None) -> tuple[list[dict], Any]:
    """Pattern events from the alerts topic in the window, and the mission ledger rebuilt from
    the whole missions topic (small: one record per sortie; the baseline needs months of it)."""
    from streams.core.missions import Mission
    from streams.topics import ALERTS, MISSIONS
    from streams.wiring import mission_ledger

    patterns = await collect_topic_docs(settings, ALERTS, t_from, t_to, lambda d: d.get("schema") == "pattern.v1")
    ledger = mission_ledger(settings)
    try:
        missions = await collect_topic_docs(settings, MISSIONS, None, None, lambda d: d.get("kind") == "mission")
    except Exception:  # an older pipeline without a missions topic: no baseline section
        return patterns, None
    for d in missions:
        try:
            ledger.add(Mission.from_dict(d))
        except ValueError:
            continue  # the worker dead-letters bad records; a report reads only good ones
    ledger.finish()
    return patterns, ledger


def _baseline(ledger: Any, t_to: float | None) -> dict[str, Any] | None:
    """The ledger's summary for the report: the category with the most missions (the report
    is about one story; the JSON lists the others under ``categories``)."""
    if ledger is None or not ledger.categories():
        return None
    cats = ledger.categories()
    best = max(cats, key=lambda c: (ledger.summary(c, t_to).get("missions_known", 0), c))
    out = dict(ledger.summary(best, t_to))
    out["categories"] = {c: ledger.summary(c, t_to).get("stats") for c in cats}
    # Days before the first mission the ledger holds were not watched: "0 over the previous 90
    # days" would claim a quiet history nobody recorded.
    start, hist = out.get("window_start"), out.get("history_start")
    if isinstance(start, int | float) and isinstance(hist, str):
        from datetime import datetime

        base0 = start - 86_400.0 * float(out.get("baseline_days") or 0)
        first = datetime.fromisoformat(hist).replace(tzinfo=UTC).timestamp()
        if first > base0:
            from streams.core.missions import headline

            stats = out.get("stats") or {}
            text = str(out.get("headline") or headline(best, stats)) if stats else str(out.get("headline") or "")
            watched = max(0, round((start - first) / 86_400.0))
            out["headline"] = (f"{text} (the input starts {hist}: {watched} of the "
                               f"{out.get('baseline_days')} baseline days watched)")
    return out
