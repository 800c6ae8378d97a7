"""Crossings the state machine must get right, on real recorded positions (issue 16).

- An aircraft working along the line, dipping into Mexico for seconds at a time and never
  clearing the exit margin in between, is one entry and one exit (symmetric hysteresis).
- A track that ends seconds after leaving Mexico is an exit, not an episode closed "inside".
- At the end of a file every open episode ends with a message carrying its true closest approach.
- ``silence_s`` is empty at the normal reporting interval; ``predicted_entry_s`` is empty on
  exits and closings.

The straddling track is a real glider's thermal climb (``tests/data/patterns/glider_franconia``,
traffic 2.13, MIT): about seven circles of ~160 m radius in five minutes while the thermal drifts.
Its shape and timing are kept exactly; it is only turned and moved (every point keeps its
distance from the thermal's centre and its bearing turned by a fixed angle, with pyproj's
geodesic) so that the drift runs west along the Arizona-Sonora border (31.3322 N), the
circles' centre 150 m north of it. Each circle then dips up to ~350 m into Mexico for 15-25 s and
comes out less than 700 m, inside the 0.5 nm (926 m) exit margin, before the next.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from pyproj import Geod

from streams.settings import Settings
from tests.e2e.test_pipeline import skyfence

pytestmark = pytest.mark.unit

GLIDER = Path(__file__).resolve().parents[1] / "data" / "patterns" / "glider_franconia.json.gz"
BORDER_LAT = 31.3322  # the Arizona-Sonora border runs along this parallel from 111.07 W to 108.21 W
_GEOD = Geod(ellps="WGS84")


def _glider_on_the_border(north_m: float = 150.0, turn_deg: float = 141.0) -> list[dict[str, Any]]:
    """Minutes 340-352 of the glider's flight (a thermal climb 340-345, then on its way), turned by
    ``turn_deg`` (the thermal's drift, 129 deg, becomes 270: west along the border) and moved so the
    thermal's centre is ``north_m`` north of the border at 109.6 W."""
    rows = [r for r in orjson.loads(gzip.decompress(GLIDER.read_bytes())) if r.get("latitude") is not None]
    rows.sort(key=lambda r: r["timestamp"])
    t0 = rows[0]["timestamp"]
    seg = [r for r in rows if 340 * 60_000 <= r["timestamp"] - t0 <= 352 * 60_000]
    thermal = [r for r in seg if r["timestamp"] - t0 <= 345 * 60_000]
    alat = float(np.mean([r["latitude"] for r in thermal]))
    alon = float(np.mean([r["longitude"] for r in thermal]))
    clon, clat, _ = _GEOD.fwd(-109.6, BORDER_LAT, 0.0, north_m)
    out = []
    for r in seg:
        az, _baz, dist = _GEOD.inv(alon, alat, r["longitude"], r["latitude"])
        lon, lat, _ = _GEOD.fwd(clon, clat, (az + turn_deg) % 360.0, dist)
        c = dict(r, latitude=lat, longitude=lon)
        if c.get("track") is not None:
            c["track"] = (float(c["track"]) + turn_deg) % 360.0
        out.append(c)
    # The file starts with the glider on the US side: drop the few positions before it is first
    # outside Mexico (found with the real geofence).
    _t, inside, _d = _scores(out)
    return out[int(np.flatnonzero(~inside)[0]):]


def _write(tmp_path: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    p = tmp_path / name
    p.write_bytes(gzip.compress(orjson.dumps(rows)))
    return p


def _analyze(path: Path, *extra: str) -> list[dict[str, Any]]:
    proc = skyfence(Settings(alert_policy="all"), "analyze", str(path), "--format", "traffic-json", "--json", *extra)
    return [orjson.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def _scores(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from streams.geo import Geofence

    lat = np.array([r["latitude"] for r in rows])
    lon = np.array([r["longitude"] for r in rows])
    sc = Geofence.load().score(lat, lon, closest_approach=False)
    return np.array([r["timestamp"] / 1000.0 for r in rows]), np.asarray(sc.inside), np.asarray(sc.dist_m)


def test_the_straddling_track_really_straddles(tmp_path: Path) -> None:
    """The premise, checked with the real geofence: several short dips, never clear of the margin."""
    rows = _glider_on_the_border()
    t, inside, dist = _scores(rows)
    starts = np.flatnonzero(inside[1:] & ~inside[:-1]) + 1
    assert len(starts) >= 6
    first = int(np.flatnonzero(inside)[0])
    out_after = np.flatnonzero(~inside & (np.arange(inside.size) > first) & (dist >= 0.5 * 1852.0))
    leave = int(out_after[0])  # first position clear of the exit margin
    assert len([s for s in starts if s < leave]) >= 6  # six or more dips before it leaves
    # every dip before the glider leaves is shorter than the 30 s dwell
    ends = np.flatnonzero(~inside[1:] & inside[:-1]) + 1
    lengths = [t[e] - t[s] for s, e in zip(starts, ends, strict=False) if e < leave - 1 and s < e]
    assert lengths and max(lengths[:5]) < 30.0


def test_working_along_the_line_is_one_entry_and_one_exit(tmp_path: Path) -> None:
    rows = _glider_on_the_border()
    t, inside, _dist = _scores(rows)
    alerts = [a for a in _analyze(_write(tmp_path, "straddle.json.gz", rows)) if a["zone"] == "sovereign"]
    entered = [a for a in alerts if a["transition"] == "entered"]
    exited = [a for a in alerts if a["transition"] == "exited"]
    assert len(entered) == 1 and len(exited) == 1, [a["transition"] for a in alerts]
    # The entry is the first dip (the old rule cancelled it at every outside position and
    # reported the entry only at the first dip longer than the dwell, minutes later).
    assert entered[0]["event_time"] == pytest.approx(t[np.flatnonzero(inside)[0]], abs=0.5)
    assert entered[0]["alert_id"] == exited[0]["alert_id"]
    # Positions every ~7 s: no coverage hole, so no silence and no estimate.
    assert entered[0]["silence_s"] is None and not entered[0]["crossing_estimated"]
    assert exited[0]["predicted_entry_s"] is None


def test_a_track_ending_just_after_leaving_is_an_exit(tmp_path: Path) -> None:
    rows = _glider_on_the_border()
    t, inside, dist = _scores(rows)
    first = int(np.flatnonzero(inside)[0])
    clear = np.flatnonzero((np.arange(inside.size) > first) & ~inside & (dist >= 0.5 * 1852.0))
    cut = [r for r, ti in zip(rows, t, strict=True) if ti <= t[clear[0]] + 20.0]  # 20 s after it left
    alerts = [a for a in _analyze(_write(tmp_path, "left.json.gz", cut)) if a["zone"] == "sovereign"]
    last = alerts[-1]
    assert last["transition"] == "exited" and last["close_reason"] == "exited", [
        (a["transition"], a["close_reason"], a["state_before"]) for a in alerts]
    assert last["event_time"] == pytest.approx(t[clear[0]], abs=0.5)
    assert not any(a["transition"] == "closed" for a in alerts)


def test_every_episode_ends_with_its_true_closest_approach(tmp_path: Path) -> None:
    """Cut the track while the glider is in Mexico: the file ends mid-episode. Without --no-close
    analyze ends the episode, and that message's closest approach is the deepest point of the
    whole track, found independently with the geofence."""
    rows = _glider_on_the_border()
    _t, inside, dist = _scores(rows)
    first = int(np.flatnonzero(inside)[0])
    cut = rows[: first + 25]
    alerts = [a for a in _analyze(_write(tmp_path, "open.json.gz", cut)) if a["zone"] == "sovereign"]
    ids = {a["alert_id"] for a in alerts}
    for aid in ids:
        ep = [a for a in alerts if a["alert_id"] == aid]
        assert ep[-1]["status"] == "closed", [a["transition"] for a in ep]
    last = alerts[-1]
    assert last["closest_approach"]["distance_m"] == pytest.approx(float(dist[: first + 25].min()), abs=0.5)
    assert last["predicted_entry_s"] is None
    # --no-close: what a worker has sent by the last position, the episode still open
    still = [a for a in _analyze(_write(tmp_path, "open2.json.gz", cut), "--no-close") if a["zone"] == "sovereign"]
    assert still and still[-1]["status"] == "open"
