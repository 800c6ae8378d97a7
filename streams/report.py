"""``skyfence report``: mission reports over recorded files or the live tracks topic.

This module owns turning track updates (``schemas/track.v1.json``) into a report: one
entry per military/surveillance track segment with its time window, closest approach
to Mexican sovereign airspace (and the nearest named place), whether it entered, and
seconds in each zone; daily mission counts; and a map picture (matplotlib, Agg, no
internet) of the tracks over the project's own zone files.

A **mission** is a track segment whose closest approach within the report window came
within the outermost approach ring (100 nm by default) of the sovereign boundary.

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


# --- sources ---------------------------------------------------------------------------------
class _Tap:
    """Stands in for the output's track adapter and keeps every track update it returns."""

    def __init__(self, adapter: Any, updates: list[dict[str, Any]]) -> None:
        self._adapter = adapter
        self._updates = updates

    def handle(self, records: Any, now: float) -> Any:
        import orjson

        out = self._adapter.handle(records, now)
        self._updates.extend(orjson.loads(v) for _k, v in out.tracks)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)


def _updates_output(engine: Any, partitions: int) -> tuple[Any, list[dict[str, Any]], list[Point]]:
    """``skyfence analyze``'s output (the worker's own track adapter), keeping every track update
    and every position, not only each aircraft's latest state."""
    from streams.analyze import EngineOutput

    updates: list[dict[str, Any]] = []
    points: list[Point] = []

    class Output(EngineOutput):
        async def positions(self, positions: Sequence[Any]) -> None:
            points.extend((p.icao24, p.event_time, p.lat, p.lon,
                           math.nan if p.alt_baro_ft is None else p.alt_baro_ft) for p in positions)
            await super().positions(positions)

        def finish(self, close_all: bool) -> None:
            # like EngineOutput.finish, but the closing track updates (final time in zone) are kept too
            import orjson

            for out in (self.engine.flush(), self.engine.advance(math.inf)):
                self.result.alerts.extend(out.alerts)
                # the adapter's engine hands back its track records (see Engine.track_encoder)
                updates.extend(orjson.loads(value) for _key, value in out.track_updates)

    out = Output(engine, partitions=partitions, keep_tracks=False)
    out.adapter = _Tap(out.adapter, updates)  # type: ignore[assignment]  # duck-typed stand-in
    return out, updates, points


Point = tuple[str, float, float, float, float]
"""icao24, event time, lat, lon, altitude in feet (NaN if unknown)."""


async def collect_file_updates(
    files: Sequence[tuple[str, str]], engine: Any, max_message_bytes: int | None = None, partitions: int = 8
) -> tuple[list[dict[str, Any]], list[Point]]:
    """Track updates and positions of ``(path, format)`` files through one engine, as ``analyze --close``."""
    from streams.feeds import open_feed
    from streams.ingest import run

    out, updates, points = _updates_output(engine, partitions)
    for path, fmt in files:
        await run(open_feed(path, fmt=fmt), fmt, out, source=path, receiver=None, max_message_bytes=max_message_bytes)
    out.finish(close_all=True)
    return updates, points


async def collect_topic_updates(
    settings: Settings, t_from: float | None, t_to: float | None, idle_s: float = 2.0
) -> list[dict[str, Any]]:
    """Track updates from the tracks topic with Kafka timestamps in [t_from, t_to] (all partitions)."""
    import asyncio
    import time

    import orjson
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from streams.settings import SettingsError
    from streams.status import client_kwargs
    from streams.topics import TRACKS
    from streams.web.live import topic_partitions

    topic = TRACKS.name(settings)
    consumer = AIOKafkaConsumer(**client_kwargs(settings), group_id=None, enable_auto_commit=False)
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        parts = await topic_partitions(consumer, topic)
        if not parts:
            raise SettingsError(f"topic {topic} does not exist on {settings.bootstrap}; is a worker running?")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        if t_from is not None:
            found = await consumer.offsets_for_times({tp: int(t_from * 1000) for tp in tps})
            start = {tp: (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in tps}
        else:
            start = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, start[tp])
        # done per partition once a record past t_to or the end offset seen at start was consumed
        # (not by position(): the fetcher advances it as soon as records are prefetched)
        done = {tp for tp in tps if start[tp] >= ends[tp]}
        idle_since = time.monotonic()
        while len(done) < len(tps) and time.monotonic() - idle_since < idle_s:
            batch = await consumer.getmany(timeout_ms=300, max_records=5000)
            if batch:
                idle_since = time.monotonic()
            for tp, records in batch.items():
                if tp in done:
                    continue
                for r in records:
                    if (t_to is not None and r.timestamp > t_to * 1000) or r.offset >= ends[tp]:
                        done.add(tp)
                        break
                    try:
                        doc = orjson.loads(r.value)
                    except orjson.JSONDecodeError:
                        continue  # the pipeline dead-letters bad records; a report reads only good ones
                    if isinstance(doc, dict) and doc.get("schema") == "track.v1":
                        out.append(doc)
                    if r.offset + 1 >= ends[tp]:
                        done.add(tp)
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
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
) -> dict[str, Any]:
    """The report as a JSON-able dict: ``window``, ``summary``, ``daily`` and ``tracks`` (one per segment).

    Segments (and their classification and cumulative ``time_in_zone_s``) come from the track
    updates, grouped by ``segment_id``; the closest approach, entry and path come from the
    scored ``points`` of that aircraft between the segment's first and last seen (default: the
    updates' own positions). Only times in [t_from, t_to] count; time in each zone is the growth
    of the cumulative counters over the window. Without ``all_aircraft`` only military,
    surveillance or watchlisted tracks are reported.
    """
    updates = list(updates)
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
        tracks.append(_segment_entry(sid, (in_w or ups)[-1], seg_pts, zones, outer_ring_m, describe, (lo, hi)))
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
    }


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
    s = report["summary"]
    lines += ["", "daily missions: " + (", ".join(f"{d} {n}" for d, n in report["daily"].items()) or "none"),
              f"{s['headline']} ({s['aircraft']} aircraft, {s['entered']} entered; {s['tracks']} tracks reported)"]
    return "\n".join(lines)


def render_png(report: dict[str, Any], zones: dict[str, Any], neighbours: dict[str, Any] | None,
               path: Path, title: str | None = None) -> None:
    """A map of the reported tracks over the sovereign zone and rings (matplotlib, Agg, offline)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    ax.fill([], [], color="#2f6f4f", ec="#5fd39a", label="Mexico land + 12 nm (sovereign)")
    # frame Mexico plus the reported tracks, clipped to the bundled data's box
    lo_x = min([-118.5, *lon_all]) - 1
    hi_x = max([-86.0, *lon_all]) + 1
    lo_y = min([14.0, *lat_all]) - 1
    hi_y = max([33.0, *lat_all]) + 1
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
    fig.tight_layout()
    fig.savefig(path, facecolor=fig.get_facecolor())
    plt.close(fig)


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
               t_to: float | None, png: str | None, as_json: bool, all_aircraft: bool) -> dict[str, Any]:
    """Build the report from ``files`` (embedded engine) or, with no files, the live tracks topic.

    Writes the PNG when ``png`` is given and returns the report dict; the CLI prints it.
    """
    import asyncio

    from streams.runners import sniff_format
    from streams.settings import SettingsError
    from streams.wiring import build_engine, load_geofence

    if files:
        pairs = []
        for f in files:
            if not Path(f).is_file():
                raise SettingsError(f"report: no such file {f}")
            pairs.append((f, fmt or sniff_format(Path(f))))
        engine = build_engine(settings)
        fence = engine.geofence
        updates, raw = asyncio.run(collect_file_updates(pairs, engine, settings.max_message_bytes,
                                                        settings.partitions))
        points = score_points(fence, raw)
    else:
        fence = load_geofence(settings, warm=False)
        updates = asyncio.run(collect_topic_updates(settings, t_from, t_to))
        points = None
    from streams.core.places import Places

    places = Places.load()
    outer = float(max(fence.ring_m)) if len(fence.ring_m) else 0.0
    report = build_report(updates, outer, t_from, t_to, all_aircraft=all_aircraft, points=points,
                          describe=places.describe)
    if png:
        from streams.geo.describe import zones_geojson

        render_png(report, zones_geojson(fence), neighbours_geojson(), Path(png))
    return report
