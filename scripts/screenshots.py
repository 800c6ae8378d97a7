"""Regenerate the README's pictures with the project's own commands.

- docs/web-map.png and docs/web-racetrack.png: the live map (OpenLayers, vendored in the
  package) in headless Chromium after real replays through a real worker, the first with an
  aircraft's popup open (it runs the browser tests, which save artifacts/web-map.png and
  artifacts/web-racetrack.png, and copies them);
- docs/report.png: ``skyfence report`` over the repository's recordings.

Usage: .venv/bin/python scripts/screenshots.py [--only map|report]
Needs chromium + chromium-driver (dev/setup.sh) for the map; the report needs nothing running.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DATA = ROOT / "tests" / "data"


# The pictures tests/e2e/test_browser.py saves in artifacts/, by the name the README shows them under in docs/.
MAP_PICTURES = ("web-map.png", "web-racetrack.png")


def web_map() -> None:
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "tests/e2e/test_browser.py"], cwd=ROOT, check=True)
    for name in MAP_PICTURES:
        shutil.copyfile(ROOT / "artifacts" / name, DOCS / name)
        print(f"wrote {DOCS / name}")


def report() -> None:
    subprocess.run([sys.executable, "-m", "streams.cli", "report", str(DATA / "readsb_trace_full_ac671b.json.gz"),
                    str(DATA / "traffic_dreamliner_boeing.json.gz"), "--all-aircraft",
                    "--png", str(DOCS / "report.png")], cwd=ROOT, check=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=("map", "report"), default=None)
    args = p.parse_args()
    DOCS.mkdir(exist_ok=True)
    if args.only in (None, "report"):
        report()
    if args.only in (None, "map"):
        web_map()
    return 0


if __name__ == "__main__":
    sys.exit(main())
