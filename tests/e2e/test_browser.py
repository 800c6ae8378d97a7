"""The live web map in a real headless browser (Debian's chromium + chromium-driver).

A real worker serves the page; a real replay of DAL1812's trace goes through the broker;
the page must draw Mexico's boundary from the project's own zone file, show the aircraft
and list its alerts. The screenshot is saved as artifacts/web-map.png (scripts/screenshots.py
runs this test and copies it to docs/web-map.png for the README).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.settings import Settings
from tests.e2e.test_pipeline import redis_alerts, skyfence
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.browser

TRACE = REPO_ROOT / "tests" / "data" / "readsb_trace_full_ac671b.json.gz"
BOEING = REPO_ROOT / "tests" / "data" / "traffic_dreamliner_boeing.json.gz"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("chromium and chromium-driver are required (dev/setup.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="skyfence-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # the background-networking flags keep a closed network from stalling the browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,900"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: Any, script: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.3)
    status = driver.execute_script("const s = document.getElementById('status'); return s && s.textContent")
    logs = driver.get_log("browser") if hasattr(driver, "get_log") else []
    counts = driver.execute_script("return window.skyfence && window.skyfence.counts")
    raise AssertionError(f"timed out waiting for {script!r} (last {value!r}); page status {status!r}; "
                         f"drawn {counts}; console {logs}")


async def test_live_map_in_real_browser(settings: Settings, start_worker: Callable[..., Any], browser: Any) -> None:
    settings = settings.replace(alert_policy="all")
    start_worker(settings_=settings)
    browser.get(f"http://127.0.0.1:{settings.web_port}/map")
    # the boundary is drawn from /api/zones before any aircraft arrive
    counts = wait_for(browser, "return window.skyfence && window.skyfence.counts.boundaryRings > 0 "
                               "&& window.skyfence.counts")
    assert counts["boundaryRings"] > 10  # mainland plus the islands
    assert counts["ringLines"] > 0 and counts["neighbourPolygons"] > 0

    # replay the approach up to mid-crossing, so both aircraft are over Mexico when the picture is
    # taken; at 300x event time the worker sees many small batches, so the trails fill in
    skyfence(settings, "replay", str(TRACE), "--format", "trace", "--speed", "300",
             "--from", "2025-02-04T21:05:00Z", "--to", "2025-02-04T21:40:00Z")
    skyfence(settings, "replay", str(BOEING), "--format", "traffic-json", "--speed", "300",
             "--from", "2017-08-03T06:15:00Z", "--to", "2017-08-03T06:52:00Z")
    await redis_alerts(settings, expect=3)
    labels = wait_for(browser, "const c = window.skyfence.counts; "
                               "return c.labels.includes('DAL1812') && c.labels.includes('BOE004') && c.labels")
    assert sorted(labels) == ["BOE004", "DAL1812"]
    shown = {a["callsign"]: a for a in browser.execute_script("return window.skyfence.aircraft")}
    assert 17 < shown["DAL1812"]["lat"] < 22 and -90 < shown["DAL1812"]["lon"] < -87  # over Yucatán
    assert 27 < shown["BOE004"]["lat"] < 30 and -101 < shown["BOE004"]["lon"] < -98  # near Laredo
    assert shown["DAL1812"]["trail"] > 3 and shown["BOE004"]["trail"] > 3  # track trails drawn
    n_alerts = wait_for(browser, "return window.skyfence.counts.alerts >= 3 && window.skyfence.counts.alerts")
    side = browser.find_element("id", "alerts").text
    assert "DAL1812" in side and "entered" in side and "BOE004" in side
    assert "OpenStreetMap contributors" in browser.find_element("tag name", "body").text
    assert n_alerts >= 3
    assert "exited" not in side  # nothing after --to was replayed

    time.sleep(0.5)  # one more animation frame after the last event
    out = REPO_ROOT / "artifacts" / "web-map.png"
    out.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(out))
    assert out.stat().st_size > 50_000


async def test_live_map_draws_a_racetrack_in_real_browser(settings: Settings, start_worker: Callable[..., Any],
                                                        browser: Any) -> None:
    """A P-8's real racetrack off Baja (tests/data/behaviour) drawn as an outline with its label."""
    from tests.e2e.test_behaviour import RACETRACK, RACETRACK_CSV

    settings = settings.replace(aircraft_csv=str(RACETRACK_CSV))
    start_worker(settings_=settings)
    browser.get(f"http://127.0.0.1:{settings.web_port}/map")
    wait_for(browser, "return window.skyfence && window.skyfence.counts.boundaryRings > 0")
    skyfence(settings, "replay", str(RACETRACK), "--format", "traffic-json", "--speed", "max")
    labels = wait_for(browser, "const c = window.skyfence.counts; return c.patterns > 0 && c.patternLabels")
    assert any(label.startswith("racetrack") and "from the line" in label for label in labels), labels
    (pattern,) = browser.execute_script("return window.skyfence.patterns")
    assert pattern["icao24"] == "ae7100" and pattern["kind"] == "racetrack" and pattern["outline"] > 10
    side = browser.find_element("id", "alerts").text
    assert "ON STATION" in side or "on_station" in side or "racetrack" in side
    out = REPO_ROOT / "artifacts" / "web-racetrack.png"
    out.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(out))
