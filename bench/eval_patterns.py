"""Evaluation of the on-station pattern detector (``streams.core.patterns``) on real flights.

Runs every hand-labelled flight of ``tests/data/patterns`` (see LABELS.md there) through the real
engine (policy "all", to the end of the file, as ``skyfence analyze --close``), matches the
patterns found to the labelled on-station windows (a window is detected when one pattern overlaps
it by >= 50 % of the window; its kind is the one the pattern reported most) and counts pattern
events on labelled cruise legs of transits. Prints a table per split (see SPLITS), the figures
over every held-out split together against the issue's goals, the detector's own cost, then one
JSON object on the last line.

Usage: ``.venv/bin/python bench/eval_patterns.py [--quick]`` (--quick: the same; the set is small).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.core import pattern_eval as PE  # noqa: E402

SPLITS = {
    "tuning": "thresholds were tuned on these",
    "holdout": "never tuned on; its errors were studied after the first report, the detector left unchanged",
    "holdout2": "labelled blind by a separate helper after the detector was frozen; run once",
    "holdout3": "labelled blind by a third helper (detector still frozen); run once",
    "holdout4": "labelled blind by a fourth helper while the orbit test was retuned on every split above; "
                "run once on that detector (2026-12-05); the lap run and the kind vote were then tuned on it too",
    "holdout5": "labelled blind by a sixth helper while the lap run and kind vote were tuned on every split "
                "above; run once on the frozen detector (2026-12-06); the leave rule was chosen on it too (2026-12-07)",
    "holdout6": "three CAL FIRE sessions no one had labelled, labelled blind by a seventh helper on 2026-12-07 "
                "while the detector stayed as frozen for holdout5; run once; the leave rule was chosen on it too "
                "(2026-12-07)",
    "resolution": "glider thermals below the 20 s sampling; reported, not in the goals",
}

# The orbit test was retuned on tuning and holdout 1-4 (2026-12-06), so holdout5 and holdout6 were
# the held-out splits; their first runs are in bench/results/eval_patterns_holdout{5,6}.txt. The
# leave rule (2026-12-07) was then chosen on every split, these two included (bench/cv_patterns.py
# --grid 4), so no labelled split is unseen by the detector as shipped: the line below sums the last
# two held-out splits, and cv_patterns.py estimates what unseen flights would give.
UNSEEN = ("holdout5", "holdout6")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="same evaluation (the labelled set is small)")
    ap.parse_args()
    t0 = time.perf_counter()
    res = PE.evaluate()
    elapsed = time.perf_counter() - t0
    summary: dict[str, object] = {}
    held = {"windows": 0, "detected": 0, "kind_checked": 0, "kind_right": 0, "transit_legs": 0, "transit_false": 0}
    for split in SPLITS:  # in the order they were made
        s = res.get(split)
        if not s:
            continue
        print(f"== {split}: {s['flights']} flights  ({SPLITS[split]})")
        for f, kind, hit, kinds, right in s["rows"]:
            print(f"  {f:42s} {kind:10s} detected={hit!s:5s} found={kinds} kind_ok={right}")
        print(f"  windows {s['windows']}  detected {s['detected']}  right kind (orbit/racetrack) "
              f"{s['kind_right']}/{s['kind_checked']}  transit legs {s['transit_legs']}  "
              f"false patterns on transit {s['transit_false']}")
        summary[split] = {k: v for k, v in s.items() if k != "rows"}
        if split in UNSEEN:
            for k in held:
                held[k] += s[k]
    ok = (held["detected"] >= 0.9 * held["windows"] and held["kind_right"] >= 0.9 * held["kind_checked"]
          and held["transit_false"] == 0)
    print(f"== held out until 2026-12-07 ({' + '.join(UNSEEN)}; the leave rule was chosen on them): "
          f"windows {held['windows']}  "
          f"detected {held['detected']}  right kind "
          f"{held['kind_right']}/{held['kind_checked']}  false patterns on transit {held['transit_false']}"
          f"  -> goals (>= 90 % detected, >= 90 % right kind, no transit pattern): {'met' if ok else 'NOT met'}")
    summary["held_out"] = {**held, "goals_met": ok}
    # Every labelled kind against the kind found (loiters and surveys too: the goal counts only
    # orbits and racetracks, and a detector could meet it by calling every circle an orbit).
    for name, splits in ((" + ".join(UNSEEN), set(UNSEEN)), ("all splits", set(SPLITS) - {"resolution"})):
        conf: dict[str, dict[str, int]] = {}
        for split in splits:
            for _f, kind, hit, kinds, _right in res.get(split, {}).get("rows", []):
                if kind != "transit":
                    row = conf.setdefault(kind, {})
                    found = kinds[0] if hit and kinds else "-"
                    row[found] = row.get(found, 0) + 1
        print(f"== labelled kind -> kind found ({name}; '-' = not detected): "
              + "; ".join(f"{k}: {v}" for k, v in sorted(conf.items())))
        summary[f"confusion_{'all' if name == 'all splits' else 'held_out'}"] = conf
    # per-sample cost of the detector alone, on all labelled flights
    n = fed = 0
    cost = 0.0
    for lab in PE.labels():
        ps = PE.load(lab["file"], lab.get("icao24"))
        c0 = time.perf_counter()
        PE.run(ps)
        cost += time.perf_counter() - c0
        n += len(ps)
        fed += len({int(p.event_time // PE.SAMPLE_INTERVAL_S) for p in ps})
    print(f"cost: {1e6 * cost / max(n, 1):.1f} us per position, {1e6 * cost / max(fed, 1):.1f} us per fed sample")
    summary["us_per_position_incl_sampling"] = round(1e6 * cost / max(n, 1), 2)
    summary["us_per_sample"] = round(1e6 * cost / max(fed, 1), 2)
    summary["elapsed_s"] = round(elapsed, 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
