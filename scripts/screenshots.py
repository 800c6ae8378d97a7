"""Regenerate the README's pictures with the project's own commands.

- docs/web-map.png: the live map in headless Chromium after a real replay through a real
  worker (it runs the browser test, which saves artifacts/web-map.png, and copies it);
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


def web_map() -> None:
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "tests/e2e/test_browser.py"], cwd=ROOT, check=True)
    shutil.copyfile(ROOT / "artifacts" / "web-map.png", DOCS / "web-map.png")
    print(f"wrote {DOCS / 'web-map.png'}")


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
