"""Geofence correctness on a million random points within 500 km of Mexico.

Usage: .venv/bin/python bench/geofence_accuracy.py [--quick] [--points N]

The issue's acceptance run: inside/outside against shapely 2 (prepared ``contains_xy``) and
distance against pyproj's WGS 84 geodesic (``tests/geo/reference.py``), on the 21,848-vertex
polygon. Criteria: no inside/outside disagreement for points more than 1 m from the boundary;
distance within 0.5 % or 50 m, whichever is larger. Prints a table, then one JSON object on
the last line. The full run takes several minutes (the pyproj reference is the slow part);
``--quick`` uses 20,000 points.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.geo.fence import Geofence
from streams.geo.index import polygon_edges
from streams.geo.zonefiles import data_path, load_packaged
from tests.geo.reference import BoundaryReference

BOX = (-124.6, 9.3, -80.4, 37.3)
WITHIN_M = 500_000.0
# Points handed to the reference at a time: bounds its pair arrays to a few hundred MB.
CHUNK = 20_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20,000 points")
    ap.add_argument("--points", type=int, default=None, help="number of points (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args()
    n = args.points or (20_000 if args.quick else 1_000_000)

    fence = Geofence.load()
    fence.warm()
    doc = json.loads(data_path("mexico_sovereign.geojson").read_text(encoding="utf-8"))
    geom = shapely.geometry.shape(doc["features"][0]["geometry"])
    shapely.prepare(geom)
    ref = BoundaryReference(polygon_edges([p for _, ps in load_packaged("mexico_sovereign.geojson") for p in ps]))

    rng = np.random.default_rng(args.seed)
    lats: list[np.ndarray] = []
    lons: list[np.ndarray] = []
    have = 0
    while have < n:
        lon = rng.uniform(BOX[0], BOX[2], n)
        lat = rng.uniform(BOX[1], BOX[3], n)
        d, _ = fence.distance(lat, lon)
        keep = fence.contains(lat, lon) | (d <= WITHIN_M)
        lats.append(lat[keep])
        lons.append(lon[keep])
        have += int(keep.sum())
    lat = np.concatenate(lats)[:n]
    lon = np.concatenate(lons)[:n]

    t0 = time.perf_counter()
    s = fence.score(lat, lon)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref_in = shapely.contains_xy(geom, lon, lat)
    ref_d = np.empty(n)
    for a in range(0, n, CHUNK):
        b = min(a + CHUNK, n)
        ref_d[a:b], _ = ref.distance(lat[a:b], lon[a:b])
        print(f"reference {b:,}/{n:,} points, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    t_ref = time.perf_counter() - t0

    clear = ref_d > 1.0
    disagree = (s.inside != ref_in) & clear
    disagree_all = s.inside != ref_in
    err = np.abs(np.abs(s.dist_m) - ref_d)
    tol = np.maximum(0.005 * ref_d, 50.0)
    rel = err / np.maximum(ref_d, 1.0)
    over_tol = int((err > tol).sum())
    within = ref_in | (ref_d <= WITHIN_M + 10.0)

    print(f"Geofence accuracy: {n:,} random points within 500 km of Mexico (seed {args.seed})")
    print(f"  inside Mexico (shapely)                          {int(ref_in.sum()):>12,}")
    print(f"  points within 1 m of the boundary                {int((~clear).sum()):>12,}")
    print(f"  inside/outside disagreements, > 1 m from boundary {int(disagree.sum()):>11,}   (must be 0)")
    print(f"  inside/outside disagreements, all points          {int(disagree_all.sum()):>11,}")
    print(f"  distance outside 0.5 % / 50 m                     {over_tol:>11,}   (must be 0)")
    print(f"  distance error max                                {err.max():>11.2f} m")
    print(f"  distance error 99.9th percentile                  {np.percentile(err, 99.9):>11.2f} m")
    print(f"  distance relative error max (d > 1 km)            {rel[ref_d > 1000].max():>11.2e}")
    w = int(np.argmax(err))
    print(f"  worst point: {lat[w]:.5f}, {lon[w]:.5f}: ours {abs(s.dist_m[w]):,.1f} m, "
          f"reference {ref_d[w]:,.1f} m")
    print(f"  time: ours {t_ours:.2f} s, reference (shapely + pyproj) {t_ref:.0f} s")
    result = {
        "benchmark": "geofence_accuracy",
        "points": n,
        "seed": args.seed,
        "all_within_500km": bool(within.all()),
        "inside": int(ref_in.sum()),
        "within_1m_of_boundary": int((~clear).sum()),
        "inside_disagreements_beyond_1m": int(disagree.sum()),
        "inside_disagreements_all": int(disagree_all.sum()),
        "distance_over_tolerance": over_tol,
        "distance_err_max_m": float(err.max()),
        "distance_err_p999_m": float(np.percentile(err, 99.9)),
        "distance_rel_err_max_beyond_1km": float(rel[ref_d > 1000].max()),
        "worst_point": {"lat": float(lat[w]), "lon": float(lon[w]), "ours_m": float(abs(s.dist_m[w])),
                        "reference_m": float(ref_d[w])},
        "ours_s": t_ours,
        "reference_s": t_ref,
        "passed": int(disagree.sum()) == 0 and over_tol == 0,
    }
    print(json.dumps(result, sort_keys=True))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
