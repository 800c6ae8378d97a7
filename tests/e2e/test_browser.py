"""The live web map in a real headless browser (Debian's chromium + chromium-driver).

A real worker serves the page (OpenLayers, vendored in the package: no network); a real replay
of DAL1812's trace goes through the broker; the page must draw Mexico's boundary from the
project's own zone file, show the aircraft and list its alerts. Clicks are real pointer clicks
at the pixel where the map drew the aircraft; the page's hooks (``window.skyfence``,
``window.skyfenceMap``) report what it shows. The screenshots are saved as
artifacts/web-map.png and artifacts/web-racetrack.png (scripts/screenshots.py runs these tests
and copies them to docs/ for the README).
"""

from __future__ import annotations

import re
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


def click_aircraft(driver: Any, icao: str) -> None:
    """A real click at the pixel where the map drew the aircraft's dot."""
    from selenium.webdriver.common.action_chains import ActionChains

    viewport = driver.find_element("css selector", "#map .ol-viewport")
    x, y = wait_for(driver, f"return window.skyfenceMap.hit('{icao}') && window.skyfenceMap.pixelOf('{icao}')")
    # Selenium offsets are from the element's centre
    w, h = viewport.size["width"], viewport.size["height"]
    ActionChains(driver).move_to_element_with_offset(viewport, x - w // 2, y - h // 2).click().perform()


def popup_fields(driver: Any, icao: str) -> dict[str, Any]:
    """The open popup's rows (data-k -> text) once it shows ``icao``; evidence items under "evidence_items"."""
    wait_for(driver, f"const p = window.skyfenceMap.popup; return p && p.icao24 === '{icao}'")
    return driver.execute_script(
        "const out = {}; document.querySelectorAll('#popup dd').forEach(d => { out[d.dataset.k] = d.textContent; });"
        "out.evidence_items = document.querySelectorAll('#popup dd[data-k=evidence] li').length;"
        "out.title = document.querySelector('#popup h2').textContent; return out")


def frame_drawn(driver: Any) -> None:
    """Ask the map for one more frame and wait until it has been drawn completely."""
    before = driver.execute_script("window.skyfenceMap.map.render(); return window.skyfence.counts.draws")
    wait_for(driver, f"return window.skyfence.counts.draws > {before}")


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
    scale = browser.execute_script("return window.skyfenceMap.scale")  # two scale bars: km and nautical miles
    assert re.fullmatch(r"\d+ km", scale["km"]) and re.fullmatch(r"\d+ NM", scale["nm"]), scale

    # a click on DAL1812 opens its popup: classification with evidence, the line, entry, altitude and speed
    click_aircraft(browser, "ac671b")
    popup = popup_fields(browser, "ac671b")
    assert popup["title"] == "DAL1812 · ac671b"
    assert popup["classification"].startswith("civil (") and "confidence" in popup["classification"], popup
    assert popup["evidence_items"] > 0, popup  # from the alerts' classification: tracks carry none
    assert re.fullmatch(r"[\d,.]+ km \([\d,.]+ nm\) (inside the line|from the line), nearest point bearing \d{3}°",
                        popup["line"]), popup
    assert popup["entry"] == "inside now" or popup["entry"].startswith(("predicted in", "not converging")), popup
    assert re.match(r"[\d,]+ ft \(FL\d{3}\) · \d+ kt", popup["flight"]), popup
    assert popup["pattern"] == "none" and popup["zone"].startswith("sovereign"), popup
    browser.find_element("id", "popup-close").click()
    wait_for(browser, "return window.skyfenceMap.popup === null")
    # BOE004, outside the line: how far, and whether it is converging (the README picture shows this popup)
    boe = shown["BOE004"]["icao24"]
    click_aircraft(browser, boe)
    popup = popup_fields(browser, boe)
    assert popup["title"] == f"BOE004 · {boe}" and popup["evidence_items"] > 0, popup
    assert re.fullmatch(r"[\d,.]+ km \([\d,.]+ nm\) from the line, nearest point bearing \d{3}°", popup["line"]), popup
    assert popup["entry"].startswith(("predicted in", "not converging")), popup
    assert popup["zone"].startswith("within "), popup  # an approach ring's name

    frame_drawn(browser)
    out = REPO_ROOT / "artifacts" / "web-map.png"
    out.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(out))
    assert out.stat().st_size > 50_000


async def test_live_map_alert_click_filters_and_url_in_real_browser(settings: Settings,
                                                                  start_worker: Callable[..., Any],
                                                                  browser: Any) -> None:
    """Click an alert: the map flies to its aircraft. Filter by zone, category, military only: the
    aircraft drawn (and clickable) follow. The view and filters in the URL's hash: a fresh load of
    that URL restores them."""
    from selenium.webdriver.support.select import Select

    settings = settings.replace(alert_policy="all")
    start_worker(settings_=settings)
    url = f"http://127.0.0.1:{settings.web_port}/map"
    browser.get(url)
    wait_for(browser, "return location.hash === '#map=5.10/23.5000/-100.0000'")  # the home view, in the URL
    skyfence(settings, "replay", str(TRACE), "--format", "trace", "--speed", "300",
             "--from", "2025-02-04T21:05:00Z", "--to", "2025-02-04T21:40:00Z")
    skyfence(settings, "replay", str(BOEING), "--format", "traffic-json", "--speed", "300",
             "--from", "2017-08-03T06:15:00Z", "--to", "2017-08-03T06:52:00Z")
    await redis_alerts(settings, expect=3)
    wait_for(browser, "const c = window.skyfence.counts; return c.labels.length === 2 && c.alerts >= 3")
    shown = {a["callsign"]: a for a in browser.execute_script("return window.skyfence.aircraft")}
    dal, boe = shown["DAL1812"], shown["BOE004"]
    # what the filters below rely on: one inside the sovereign line, one outside it, neither military
    assert dal["zone"] == "sovereign" and boe["zone"] != "sovereign", shown
    assert dal["category"] == "civil" and boe["category"] not in ("military", "surveillance"), shown

    # a click on BOE004's alert flies the map to BOE004 and opens its popup
    browser.find_element("css selector", f"#alerts .alert[data-icao='{boe['icao24']}']").click()
    view = wait_for(browser, f"const v = window.skyfenceMap.view; return !v.animating "
                             f"&& Math.abs(v.lat - {boe['lat']}) < 1e-3 && Math.abs(v.lon - {boe['lon']}) < 1e-3 && v")
    assert view["zoom"] >= 8
    assert popup_fields(browser, boe["icao24"])["title"].startswith("BOE004")

    def labels_after(change: Callable[[], Any]) -> list[str]:
        """Change a filter through its control, then the aircraft drawn once a frame has followed."""
        change()
        frame_drawn(browser)
        return sorted(browser.execute_script("return window.skyfence.counts.labels"))

    def hit(icao: str) -> bool:
        """Would a click at the aircraft's dot (in the last frame drawn) hit it?"""
        return bool(browser.execute_script(f"return window.skyfenceMap.hit('{icao}')"))

    wait_for(browser, f"return window.skyfenceMap.hit('{boe['icao24']}')")  # drawn at the centre of the view
    zone = Select(browser.find_element("id", "f-zone"))
    assert labels_after(lambda: zone.select_by_value("sovereign")) == ["DAL1812"]
    # BOE004 is no longer drawn: a click where it was finds nothing, and its popup closed
    assert not hit(boe["icao24"])
    assert browser.execute_script("return window.skyfenceMap.popup") is None
    assert labels_after(lambda: zone.select_by_value("")) == ["BOE004", "DAL1812"]
    civil = browser.find_element("css selector", "#f-cats input[value=civil]")
    assert labels_after(civil.click) == ([] if boe["category"] == "civil" else ["BOE004"])
    assert labels_after(civil.click) == ["BOE004", "DAL1812"]
    assert labels_after(browser.find_element("id", "f-mil").click) == []  # neither is military/surveillance
    assert not hit(boe["icao24"])
    assert labels_after(lambda: zone.select_by_value("sovereign")) == []
    assert "2 aircraft (0 shown)" in browser.find_element("id", "count").text

    # the view and the filters are in the hash; a fresh load of that URL restores both
    hash_ = browser.execute_script("return location.hash")
    m = re.fullmatch(r"#map=8\.00/(-?[\d.]+)/(-?[\d.]+)&mil=1&zone=sovereign", hash_)
    assert m and abs(float(m[1]) - boe["lat"]) < 1e-4 and abs(float(m[2]) - boe["lon"]) < 1e-4, hash_
    browser.get("about:blank")
    browser.get(url + hash_)
    wait_for(browser, "return window.skyfence && window.skyfence.aircraft.length === 2 "
                      "&& window.skyfence.counts.boundaryRings > 0")
    view = browser.execute_script("return window.skyfenceMap.view")
    assert (view["lat"], view["lon"], view["zoom"]) == pytest.approx((float(m[1]), float(m[2]), 8.0), abs=1e-9)
    assert browser.execute_script("return window.skyfenceMap.filters") == {
        "mil": True, "cats": ["military", "surveillance", "government", "civil", "unknown"], "zone": "sovereign"}
    assert browser.find_element("id", "f-mil").is_selected()
    assert Select(browser.find_element("id", "f-zone")).first_selected_option.get_attribute("value") == "sovereign"
    assert browser.execute_script("return window.skyfence.counts.labels") == []
    assert browser.execute_script("return location.hash") == hash_
    # and a shared link with other filters: civil only, any zone, at home
    browser.get("about:blank")
    browser.get(url + "#map=5.10/23.5000/-100.0000&cat=civil")
    labels = wait_for(browser, "return window.skyfence && window.skyfence.aircraft.length === 2 "
                               "&& window.skyfence.counts.labels")
    assert sorted(labels) == sorted(c for c, a in shown.items() if a["category"] == "civil")
    # a notification's link names its aircraft (streams/sinks/notify.py): the map centres on it, popup open
    browser.get("about:blank")
    browser.get(f"{url}?icao={dal['icao24']}")
    assert popup_fields(browser, dal["icao24"])["title"].startswith("DAL1812")
    view = browser.execute_script("return window.skyfenceMap.view")
    assert view["zoom"] >= 8 and abs(view["lat"] - dal["lat"]) < 0.05 and abs(view["lon"] - dal["lon"]) < 0.05


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
    frame_drawn(browser)
    out = REPO_ROOT / "artifacts" / "web-racetrack.png"
    out.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(out))

    # the P-8's popup: surveillance (maritime patrol), the evidence of its pattern alerts, its racetrack on station
    click_aircraft(browser, "ae7100")
    popup = popup_fields(browser, "ae7100")
    assert popup["classification"].startswith("surveillance (") and "P-8" in popup["classification"], popup
    assert popup["evidence_items"] > 0, popup
    assert popup["pattern"].startswith("racetrack") and "on station" in popup["pattern"], popup
    # military/surveillance only keeps it and its racetrack; without the surveillance category both go
    browser.find_element("id", "f-mil").click()
    frame_drawn(browser)
    counts = browser.execute_script("return window.skyfence.counts")
    assert counts["aircraft"] == 1 and counts["patterns"] == 1, counts
    browser.find_element("css selector", "#f-cats input[value=surveillance]").click()
    frame_drawn(browser)
    counts = browser.execute_script("return window.skyfence.counts")
    assert counts["aircraft"] == 0 and counts["patterns"] == 0, counts
    assert not browser.execute_script("return window.skyfenceMap.hit('ae7100')")
    assert "mil=1&cat=military,government,civil,unknown" in browser.execute_script("return location.hash")
