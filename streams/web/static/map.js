// skyfence live map, drawn with OpenLayers (vendored under /vendor: no tile server, works offline).
// The base is the project's own zone file (Mexico's land + 12 nm, the approach rings, user fences)
// and its neighbours; on top, live aircraft with trails coloured by altitude from /api/events
// (server-sent events), each active on-station pattern's outline (dashed, coloured by kind) and
// where aircraft went dark. Click an aircraft for its popup, an alert to fly to its aircraft; the
// view and the filters live in the URL's hash (#map=zoom/lat/lon&mil=1&cat=...&zone=...).
"use strict";
const { fromLonLat, toLonLat } = ol.proj;
const { Style, Stroke, Fill } = ol.style;
const CircleStyle = ol.style.Circle, TextStyle = ol.style.Text;

// the classification categories of track.v1, in the order the filter lists them
const CATEGORIES = ["military", "surveillance", "government", "civil", "unknown"];
const MIL = new Set(["military", "surveillance"]);
// one colour per pattern kind (the legend in index.html says which)
const KIND_COLOUR = { orbit: "#4cc9f0", racetrack: "#f72585", survey: "#b5e48c", loiter: "#f8961e" };
// Trail colours by altitude: 10,000 ft bands (the flight levels an operator reads at a glance), the lowest
// split at 2,000 ft so approaches and low flying stand out. [upper bound in ft, colour, legend label]
const ALT_BANDS = [[2000, "#ff7b00", "<2,000 ft"], [10000, "#ffd000", "<FL100"], [20000, "#7ae582", "FL100–200"],
  [30000, "#2ec4b6", "FL200–300"], [40000, "#4895ef", "FL300–400"], [Infinity, "#b388ff", "≥FL400"]];
const ALT_UNKNOWN = "#8a9bb0"; // grey: a trail point without an altitude
// The view of a first visit: all of Mexico with its 100 nm ring in a map about 1,000 pixels wide.
const HOME = { lon: -100, lat: 23.5, zoom: 5.1 };
// An alert click zooms in at least this far: about 500 km across 1,000 pixels, the aircraft, its
// ten-minute trail and the nearest stretch of the line in one view.
const FLY_ZOOM = 8;
// 600 ms of flight: short enough not to wait for, long enough to see where the map went.
const FLY_MS = 600;
// Click tolerance in pixels around an aircraft's dot (4.5-5.5 px radius): a near miss still selects it.
const HIT_PX = 6;
// The side list shows the newest 100 alerts (the page keeps 200, as the server does).
const LIST_ALERTS = 100, KEEP_ALERTS = 200;

const state = { aircraft: new Map(), alerts: [], patterns: new Map(), dark: new Map(), rings: [], zonesLoaded: false, selected: null };
// zone: "" (any), "sovereign", "beyond", or a ring's key such as "12nm"
const filters = { mil: false, cats: new Set(CATEGORIES), zone: "" };
// counts of what the map shows, read by the browser test and handy in the devtools console
const drawn = { boundaryRings: 0, ringLines: 0, neighbourPolygons: 0, aircraft: 0, labels: [], alerts: 0, events: 0,
  draws: 0, patterns: 0, patternLabels: [], dark: 0 };

// --- layers -------------------------------------------------------------------------------------------------
const neighbourSource = new ol.source.Vector(), zoneSource = new ol.source.Vector(),
  patternSource = new ol.source.Vector(), darkSource = new ol.source.Vector(),
  trailSource = new ol.source.Vector(), aircraftSource = new ol.source.Vector();
const ZONE_STYLE = {
  sovereign: new Style({ fill: new Fill({ color: "#2f6f4f" }), stroke: new Stroke({ color: "#6fe0a8", width: 1.4 }), zIndex: 1 }),
  buffer: new Style({ stroke: new Stroke({ color: "#8fb3b8aa", width: 1, lineDash: [5, 4] }), zIndex: 0 }),
  user: new Style({ fill: new Fill({ color: "#7b5cd633" }), stroke: new Stroke({ color: "#a58bff", width: 1.2, lineDash: [2, 3] }), zIndex: 2 }),
};
// a feature of the aircraft, trail, pattern and dark layers carries its styles (built when its data change);
// the layer draws them only for aircraft that pass the filters
const filtered = f => (shown(f.get("icao24"), f.get("category")) ? f.get("styles") : undefined);
const neighbourLayer = new ol.layer.Vector({ source: neighbourSource,
  style: new Style({ fill: new Fill({ color: "#1c2735" }), stroke: new Stroke({ color: "#34465c", width: 1 }) }) });
const zoneLayer = new ol.layer.Vector({ source: zoneSource, style: f => ZONE_STYLE[f.get("kind")] });
const patternLayer = new ol.layer.Vector({ source: patternSource, style: filtered });
const darkLayer = new ol.layer.Vector({ source: darkSource, style: filtered });
const trailLayer = new ol.layer.Vector({ source: trailSource, style: filtered });
const aircraftLayer = new ol.layer.Vector({ source: aircraftSource, style: filtered });

const view = new ol.View({ center: fromLonLat([HOME.lon, HOME.lat]), zoom: HOME.zoom, enableRotation: false });
const popupEl = document.getElementById("popup");
const popup = new ol.Overlay({ element: popupEl, positioning: "bottom-center", offset: [0, -14], stopEvent: true });
const map = new ol.Map({
  target: "map",
  layers: [neighbourLayer, zoneLayer, patternLayer, darkLayer, trailLayer, aircraftLayer],
  overlays: [popup],
  view,
  // one scale bar per unit: OpenLayers' ScaleLine shows one; km for the map, NM for aviation
  controls: [new ol.control.Zoom(), new ol.control.ScaleLine({ units: "metric", className: "scale-km", minWidth: 90 }),
    new ol.control.ScaleLine({ units: "nautical", className: "scale-nm", minWidth: 90 })],
});
map.on("rendercomplete", () => { drawn.draws++; });

// --- hooks for the browser test (and the devtools console) ----------------------------------------------------
window.skyfence = Object.freeze({
  get counts() { return JSON.parse(JSON.stringify(drawn)); },
  get aircraft() {
    return [...state.aircraft.values()].map(a => ({ icao24: a.icao24, callsign: a.callsign, lat: a.lat, lon: a.lon,
      trail: (a.trail || []).length, category: a.category, zone: a.zone, visible: shown(a.icao24) }));
  },
  get alerts() { return state.alerts.length; },
  get patterns() { return [...state.patterns.values()].map(p => ({ icao24: p.icao24, kind: p.kind, label: p.label, outline: (p.outline || []).length })); },
  get dark() { return [...state.dark.values()].map(d => ({ icao24: d.icao24, callsign: d.callsign })); },
});
window.skyfenceMap = Object.freeze({
  map,
  get view() {
    const [lon, lat] = toLonLat(view.getCenter());
    return { lat, lon, zoom: view.getZoom(), animating: view.getAnimating() };
  },
  get filters() { return { mil: filters.mil, cats: CATEGORIES.filter(c => filters.cats.has(c)), zone: filters.zone }; },
  get zones() { return [...document.getElementById("f-zone").options].map(o => o.value); },
  get popup() { return popupEl.hidden ? null : { icao24: state.selected, text: popupEl.innerText }; },
  get scale() {
    const t = c => (document.querySelector(`.${c}-inner`) || {}).textContent || "";
    return { km: t("scale-km"), nm: t("scale-nm") };
  },
  // where an aircraft's dot is, in CSS pixels from the map's top left corner (null if not on the map)
  pixelOf(icao) {
    const f = aircraftSource.getFeatureById(icao);
    const px = f && map.getPixelFromCoordinate(f.getGeometry().getCoordinates());
    return px ? px.map(Math.round) : null;
  },
  // what a click at the aircraft's dot would hit, by OpenLayers' own hit detection on the last frame
  hit(icao) {
    const px = this.pixelOf(icao);
    return !!px && map.getFeaturesAtPixel(px, { layerFilter: l => l === aircraftLayer, hitTolerance: HIT_PX })
      .some(f => f.getId() === icao);
  },
});

// --- filters ----------------------------------------------------------------------------------------------------
function categoryOf(c) { return CATEGORIES.includes(c) ? c : "unknown"; }
function zoneName(key) {
  const ring = state.rings.find(r => r.key === key);
  return ring ? ring.name : key;
}
// does the aircraft pass the filters? Its pattern and dark marks follow it (or their own category if it is not on the map)
function shown(icao, category) {
  const a = state.aircraft.get(icao);
  const cat = categoryOf(a ? a.category : category);
  if (filters.mil && !MIL.has(cat)) return false;
  if (!filters.cats.has(cat)) return false;
  return !filters.zone || (!!a && a.zone === zoneName(filters.zone));
}
function syncFilterControls() {
  document.getElementById("f-mil").checked = filters.mil;
  document.querySelectorAll("#f-cats input").forEach(i => { i.checked = filters.cats.has(i.value); });
  const sel = document.getElementById("f-zone");
  if (state.zonesLoaded && ![...sel.options].some(o => o.value === filters.zone)) filters.zone = ""; // not a zone here
  sel.value = filters.zone;
}
function readFilterControls() {
  filters.mil = document.getElementById("f-mil").checked;
  filters.cats = new Set([...document.querySelectorAll("#f-cats input")].filter(i => i.checked).map(i => i.value));
  filters.zone = document.getElementById("f-zone").value;
}
function applyFilters() {
  for (const layer of [patternLayer, darkLayer, trailLayer, aircraftLayer]) layer.changed();
  recount();
  renderPopup();
  writeHash();
}
document.getElementById("filters").addEventListener("change", () => { readFilterControls(); applyFilters(); });

// --- the URL's hash: #map=zoom/lat/lon (as openstreetmap.org writes it) &mil=1 &cat=a,b &zone=key -----------
function writeHash() {
  const [lon, lat] = toLonLat(view.getCenter());
  const parts = [`map=${view.getZoom().toFixed(2)}/${lat.toFixed(4)}/${lon.toFixed(4)}`];
  if (filters.mil) parts.push("mil=1");
  if (filters.cats.size !== CATEGORIES.length) parts.push(`cat=${CATEGORIES.filter(c => filters.cats.has(c)).join(",")}`);
  if (filters.zone) parts.push(`zone=${encodeURIComponent(filters.zone)}`);
  const hash = `#${parts.join("&")}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}
function readHash() {
  const q = new URLSearchParams(location.hash.slice(1));
  const m = (q.get("map") || "").split("/").map(Number);
  if (m.length === 3 && m.every(Number.isFinite) && Math.abs(m[1]) <= 85 && Math.abs(m[2]) <= 180) {
    view.setCenter(fromLonLat([m[2], m[1]]));
    view.setZoom(m[0]);
  }
  filters.mil = q.get("mil") === "1";
  const cats = q.get("cat");
  filters.cats = new Set(cats === null ? CATEGORIES : cats.split(",").filter(c => CATEGORIES.includes(c)));
  filters.zone = q.get("zone") || "";
  syncFilterControls();
}
map.on("moveend", writeHash);
window.addEventListener("hashchange", () => { readHash(); applyFilters(); });

// --- features from the data -------------------------------------------------------------------------------------
function hasPos(a) { return a && typeof a.lat === "number" && typeof a.lon === "number"; }
function altColour(alt) {
  if (typeof alt !== "number") return ALT_UNKNOWN;
  return ALT_BANDS.find(b => alt < b[0])[1];
}
function label(a) { return a.callsign || a.icao24; }
function aircraftStyles(a) {
  const mil = MIL.has(a.category);
  const inside = typeof a.distance_m === "number" ? a.distance_m < 0 : a.zone === "sovereign";
  const colour = mil ? "#ff5a5f" : inside ? "#ffb347" : "#ffd166";
  const fl = typeof a.alt_ft === "number" ? ` FL${Math.round(a.alt_ft / 100)}` : "";
  const styles = [new Style({
    image: new CircleStyle({ radius: mil ? 5.5 : 4.5, fill: new Fill({ color: colour }), stroke: new Stroke({ color: "#0b1a28", width: 1.5 }) }),
    text: new TextStyle({ text: `${label(a)}${fl}`, font: "600 12px system-ui, sans-serif", textAlign: "left", offsetX: 10, offsetY: -10,
      fill: new Fill({ color: "#f2f6fa" }), backgroundFill: new Fill({ color: "#0b1a28cc" }), padding: [1, 3, 0, 3] }),
    zIndex: mil ? 2 : 1,
  })];
  if (state.selected === a.icao24) {
    styles.unshift(new Style({ image: new CircleStyle({ radius: 10, stroke: new Stroke({ color: "#ffffff", width: 2 }) }) }));
  }
  return styles;
}
// the trail in runs of one altitude band, each run starting where the previous one ended
function trailStyles(a) {
  const pts = a.trail || [], alts = a.trail_alt_ft || [];
  const styles = [];
  let run = null, colour = null;
  pts.forEach((p, i) => {
    const xy = fromLonLat([p[1], p[0]]), c = altColour(alts[i]);
    if (run && c === colour) { run.push(xy); return; }
    if (run && run.length > 1) styles.push(new Style({ geometry: new ol.geom.LineString(run), stroke: new Stroke({ color: colour, width: 2.4 }) }));
    run = run ? [run[run.length - 1], xy] : [xy];
    colour = c;
  });
  if (run && run.length > 1) styles.push(new Style({ geometry: new ol.geom.LineString(run), stroke: new Stroke({ color: colour, width: 2.4 }) }));
  return styles;
}
function upsertFeature(source, id, geometry, props) {
  let f = source.getFeatureById(id);
  if (!f) { f = new ol.Feature(); f.setId(id); f.setProperties({ ...props, geometry }); source.addFeature(f); return; }
  f.setProperties({ ...props, geometry });
}
function syncAircraft(icao) {
  const a = state.aircraft.get(icao);
  if (!hasPos(a)) return;
  upsertFeature(aircraftSource, icao, new ol.geom.Point(fromLonLat([a.lon, a.lat])), { icao24: icao, styles: aircraftStyles(a) });
  const pts = (a.trail || []).map(p => fromLonLat([p[1], p[0]]));
  upsertFeature(trailSource, icao, pts.length > 1 ? new ol.geom.LineString(pts) : new ol.geom.Point(fromLonLat([a.lon, a.lat])),
    { icao24: icao, styles: trailStyles(a) });
}
function tagText(text, colour, place) {
  return new TextStyle({ text, font: "600 11px system-ui, sans-serif", fill: new Fill({ color: colour }),
    backgroundFill: new Fill({ color: "#0b1a28cc" }), padding: [1, 3, 0, 3], ...place });
}
function syncPattern(icao) {
  const p = state.patterns.get(icao), f = patternSource.getFeatureById(icao);
  const outline = (p && p.outline) || [];
  if (outline.length < 2) { if (f) patternSource.removeFeature(f); return; }
  const colour = KIND_COLOUR[p.kind] || "#dfe7ef";
  const top = outline.reduce((a, b) => (b[1] > a[1] ? b : a), outline[0]);
  const styles = [
    new Style({ fill: new Fill({ color: `${colour}22` }), stroke: new Stroke({ color: colour, width: p.on_station ? 2.2 : 1.6, lineDash: [6, 4] }) }),
    // labelled above its northernmost point, reading from there to the right
    new Style({ geometry: new ol.geom.Point(fromLonLat(top)),
      text: tagText(p.label || p.kind, colour, { textAlign: "left", offsetY: -12 }) }),
  ];
  upsertFeature(patternSource, icao, new ol.geom.Polygon([outline.map(c => fromLonLat(c))]),
    { icao24: icao, category: p.category, label: p.label || p.kind, styles });
}
// went dark: a hollow ring at the last position, a dotted line to the dead-reckoned position now
function syncDark(icao) {
  const d = state.dark.get(icao), f = darkSource.getFeatureById(icao);
  const last = (d && d.last_seen) || {}, dr = (d && d.dead_reckoned) || {};
  if (typeof last.lat !== "number" || typeof last.lon !== "number") { if (f) darkSource.removeFeature(f); return; }
  const colour = d.severity === "high" ? "#ff5a5f" : "#f5a524";
  const at = fromLonLat([last.lon, last.lat]);
  const styles = [new Style({ image: new CircleStyle({ radius: 6, stroke: new Stroke({ color: colour, width: 2 }) }),
    text: tagText(`${d.callsign || d.icao24} dark`, colour, { textAlign: "left", offsetX: 8, offsetY: 18 }) })];
  if (typeof dr.lat === "number" && typeof dr.lon === "number") {
    const to = fromLonLat([dr.lon, dr.lat]);
    styles.push(new Style({ geometry: new ol.geom.LineString([at, to]), stroke: new Stroke({ color: colour, width: 1.6, lineDash: [2, 3] }) }));
    styles.push(new Style({ geometry: new ol.geom.Point(to), image: new CircleStyle({ radius: 4, fill: new Fill({ color: `${colour}88` }) }) }));
  }
  // dark.v1 is raised for military and surveillance aircraft only: without a category, filter it as military
  upsertFeature(darkSource, icao, new ol.geom.Point(at), { icao24: icao, category: d.category || "military", styles });
}
function recount() {
  const labels = [];
  for (const a of state.aircraft.values()) if (hasPos(a) && shown(a.icao24)) labels.push(label(a));
  drawn.aircraft = labels.length; drawn.labels = labels;
  const patternLabels = patternSource.getFeatures().filter(f => shown(f.get("icao24"), f.get("category"))).map(f => f.get("label"));
  drawn.patterns = patternLabels.length; drawn.patternLabels = patternLabels;
  drawn.dark = darkSource.getFeatures().filter(f => shown(f.get("icao24"), f.get("category"))).length;
  const total = state.aircraft.size;
  document.getElementById("count").textContent = `${total} aircraft` + (labels.length !== total ? ` (${labels.length} shown)` : "")
    + ` · ${state.alerts.length} alerts` + (state.patterns.size ? ` · ${state.patterns.size} on station` : "")
    + (state.dark.size ? ` · ${state.dark.size} dark` : "");
}
// GeoJSON rings (polygons, holes included) or lines in a feature: what the browser test counts
function parts(g) {
  if (!g) return 0;
  if (g.type === "Polygon" || g.type === "MultiLineString") return g.coordinates.length;
  if (g.type === "MultiPolygon") return g.coordinates.reduce((n, p) => n + p.length, 0);
  return 0;
}
const geojson = new ol.format.GeoJSON({ featureProjection: "EPSG:3857" });

// --- the popup ------------------------------------------------------------------------------------------------
function fmtNum(v, digits = 0) { return v.toLocaleString("en-US", { maximumFractionDigits: digits }); }
function distanceText(m) {
  const km = Math.abs(m) / 1000, nm = Math.abs(m) / 1852;
  return `${fmtNum(km, km < 10 ? 1 : 0)} km (${fmtNum(nm, nm < 10 ? 1 : 0)} nm) ${m < 0 ? "inside the line" : "from the line"}`;
}
function durationText(seconds) {
  const s = Math.round(seconds), m = Math.floor(s / 60);
  if (m >= 60) return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
  return m ? `${m} min ${String(s % 60).padStart(2, "0")} s` : `${s} s`;
}
function utc(t) { return typeof t === "number" ? `${new Date(t * 1000).toISOString().slice(0, 19).replace("T", " ")} UTC` : ""; }
function newestAlert(icao) { return state.alerts.find(x => x.icao24 === icao); }
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }
// The track's verdict with the evidence behind it. The served view has the evidence of the alerts the
// worker had seen when it sent the track; an alert that arrived after the aircraft's last track has it too.
function classification(a) {
  const served = a.classification || {};
  if ((served.evidence || []).length) return served;
  const named = state.alerts.find(x => x.icao24 === a.icao24 && x.classification && (x.classification.evidence || []).length);
  return named ? { ...named.classification, ...served, evidence: named.classification.evidence } : served;
}
// place: choose the popup's side again (a new selection); updates keep it where it is
function renderPopup(place) {
  const a = state.selected && state.aircraft.get(state.selected);
  if (!hasPos(a) || !shown(a.icao24)) { popupEl.hidden = true; popup.setPosition(undefined); return; }
  const cls = classification(a);
  const body = document.getElementById("popup-body");
  body.replaceChildren();
  body.append(el("h2", `${a.callsign || a.icao24} · ${a.icao24}`));
  const dl = el("dl");
  const row = (k, v, key) => { const dd = el("dd"); dd.dataset.k = key; if (typeof v === "string") dd.textContent = v; else dd.append(v); dl.append(el("dt", k), dd); };
  const conf = typeof cls.confidence === "number" ? ` (${Math.round(cls.confidence * 100)}% confidence)` : "";
  const what = [cls.type_code && `${cls.type_code}${cls.type_description ? ` ${cls.type_description}` : ""}`, cls.registration,
    cls.operator, cls.country && `registered ${cls.country}`, cls.watchlisted && "on the watchlist"].filter(Boolean).join(" · ");
  row("class", `${categoryOf(a.category || cls.category)}${conf}${what ? ` · ${what}` : ""}`, "classification");
  const ev = cls.evidence || [];
  if (ev.length) {
    const ul = el("ul");
    ev.forEach(e => ul.append(el("li", `${e.kind}: ${e.detail}${e.suggests ? ` → ${e.suggests}` : ""}`)));
    row("evidence", ul, "evidence");
  } else {
    row("evidence", "none published yet (no alert has named this aircraft)", "evidence");
  }
  const line = typeof a.distance_m === "number" ? distanceText(a.distance_m) : "unknown";
  const bearing = typeof a.bearing_to_boundary_deg === "number" ? `, nearest point bearing ${String(Math.round(a.bearing_to_boundary_deg) % 360).padStart(3, "0")}°` : "";
  row("12 nm line", `${line}${bearing}`, "line");
  const inside = a.inside === true || (typeof a.distance_m === "number" && a.distance_m < 0);
  row("entry", inside ? "inside now" : typeof a.predicted_entry_s === "number" ? `predicted in ${durationText(a.predicted_entry_s)}` : "not converging", "entry");
  const alt = typeof a.alt_ft === "number" ? `${fmtNum(a.alt_ft)} ft (FL${String(Math.round(a.alt_ft / 100)).padStart(3, "0")})` : "altitude unknown";
  const gs = typeof a.ground_speed_kt === "number" ? `${fmtNum(a.ground_speed_kt)} kt` : "speed unknown";
  const trk = typeof a.track_deg === "number" ? ` · track ${String(Math.round(a.track_deg) % 360).padStart(3, "0")}°` : "";
  row("flight", `${alt} · ${gs}${trk}`, "flight");
  row("zone", [a.zone, a.airspace_country && `airspace ${a.airspace_country}`].filter(Boolean).join(" · ") || "unknown", "zone");
  const p = state.patterns.get(a.icao24);
  if (p) {
    const on = [p.label || p.kind, typeof p.time_on_station_s === "number" ? `${durationText(p.time_on_station_s)} on station` : "",
      p.on_station ? "ON STATION" : "", p.description].filter(Boolean).join(" · ");
    row("pattern", on, "pattern");
  } else {
    row("pattern", "none", "pattern");
  }
  const d = state.dark.get(a.icao24);
  if (d) row("dark", d.headline || "went dark", "dark");
  const last = newestAlert(a.icao24);
  if (last) row("last alert", [last.transition, last.headline || last.description].filter(Boolean).join(" · "), "alert");
  row("seen", utc(a.last_seen), "seen");
  body.append(dl);
  popupEl.hidden = false;
  const at = fromLonLat([a.lon, a.lat]);
  if (place) placePopup(at);
  popup.setPosition(at);
}
// The popup opens on the side of the aircraft with the most room (above it in the lower half of the
// map, below it in the upper half; to its left near the right edge, to its right near the left edge),
// so it rarely needs the map to move and does not hide what is on the far side.
function placePopup(at) {
  const px = map.getPixelFromCoordinate(at), size = map.getSize();
  if (px && size) {
    const vertical = px[1] > size[1] / 2 ? "bottom" : "top";
    const horizontal = px[0] < size[0] / 3 ? "left" : px[0] > (2 * size[0]) / 3 ? "right" : "center";
    popup.setPositioning(`${vertical}-${horizontal}`);
    popup.setOffset([0, vertical === "bottom" ? -14 : 14]);
  }
}
function select(icao, pan) {
  const before = state.selected;
  state.selected = icao;
  for (const id of [before, icao]) if (id && state.aircraft.has(id)) syncAircraft(id);
  renderPopup(true);
  if (pan && !popupEl.hidden) requestAnimationFrame(() => popup.panIntoView({ animation: { duration: 250 }, margin: 20 }));
}
document.getElementById("popup-close").addEventListener("click", () => select(null, false));
const hitOptions = { layerFilter: l => l === aircraftLayer, hitTolerance: HIT_PX };
map.on("singleclick", e => {
  const f = map.getFeaturesAtPixel(e.pixel, hitOptions)[0];
  select(f ? f.getId() : null, true);
});
map.on("pointermove", e => {
  if (!e.dragging) map.getTargetElement().style.cursor = map.hasFeatureAtPixel(e.pixel, hitOptions) ? "pointer" : "";
});

// A notification's link names its aircraft (/map?icao=<icao24>, streams/sinks/notify.py): once that
// aircraft is on the map (from the snapshot or later from the stream), centre on it and open its popup, once.
let focusIcao = new URLSearchParams(location.search).get("icao");
function focusFromLink() {
  const a = focusIcao && state.aircraft.get(focusIcao);
  if (!hasPos(a)) return;
  focusIcao = null;
  view.cancelAnimations();
  view.setCenter(fromLonLat([a.lon, a.lat]));
  view.setZoom(Math.max(view.getZoom(), FLY_ZOOM));
  select(a.icao24, false);
}

// --- the alert list ---------------------------------------------------------------------------------------------
// where an alert happened, when its aircraft is not on the map: alert.v1 position, pattern.v1 centre, dark.v1 last seen
function alertLonLat(a) {
  for (const p of [a.position, a.centre, a.last_seen]) {
    if (p && typeof p.lat === "number" && typeof p.lon === "number") return [p.lon, p.lat];
  }
  return null;
}
function flyTo(alert) {
  const a = state.aircraft.get(alert.icao24);
  const lonlat = hasPos(a) ? [a.lon, a.lat] : alertLonLat(alert);
  if (!lonlat) return;
  view.cancelAnimations();
  view.animate({ center: fromLonLat(lonlat), zoom: Math.max(view.getZoom(), FLY_ZOOM), duration: FLY_MS },
    done => { if (done && hasPos(a)) select(alert.icao24, false); });
}
function renderAlerts() {
  const list = document.getElementById("alerts");
  list.replaceChildren();
  for (const a of state.alerts.slice(0, LIST_ALERTS)) {
    const d = el("div", undefined, `alert ${a.severity || ""}`);
    if (a.icao24) {
      d.dataset.icao = a.icao24;
      d.title = "fly to this aircraft";
      d.addEventListener("click", () => flyTo(a));
    }
    const dm = a.distance_to_boundary_m;
    const dist = typeof dm === "number" ? (dm < 0 ? `${Math.round(-dm / 1000)} km inside` : `${Math.round(dm / 1000)} km from boundary`) : "";
    // pattern, dark and activity documents say it best in their headline
    const info = a.schema && a.schema !== "alert.v1" ? (a.headline || "") : [a.description, dist].filter(Boolean).join(" · ");
    d.append(el("b", `${a.transition} · ${a.callsign || a.icao24 || a.category || ""}`), el("div", info),
      el("div", `${a.event_time_iso || a.event_time || ""} · ${(a.classification || {}).category || a.category || ""} · ${a.severity || ""}`, "muted"));
    list.append(d);
  }
  drawn.alerts = list.children.length;
}

// --- live data --------------------------------------------------------------------------------------------------
const dirty = { aircraft: new Set(), patterns: new Set(), dark: new Set(), alerts: false };
function upsert(a) { if (a && a.icao24) { state.aircraft.set(a.icao24, a); dirty.aircraft.add(a.icao24); } }
// a pattern or dark event carries the aircraft's whole current state: null means it is over
function setOrDelete(map_, set, icao, v) { if (!icao) return; if (v) map_.set(icao, v); else map_.delete(icao); set.add(icao); }
function alertKey(a) { return a.event_id || `${a.alert_id}:${a.transition}:${a.event_time}`; }
function addAlert(a) {
  if (state.alerts.some(b => alertKey(b) === alertKey(a))) return;
  state.alerts.unshift(a);
  state.alerts.length = Math.min(state.alerts.length, KEEP_ALERTS);
  dirty.alerts = true;
}
let pending = false;
function scheduleFlush() { if (!pending) { pending = true; requestAnimationFrame(flush); } }
// apply what arrived since the last frame: one feature update per aircraft however many events it had
function flush() {
  pending = false;
  for (const icao of dirty.aircraft) syncAircraft(icao);
  for (const icao of dirty.patterns) syncPattern(icao);
  for (const icao of dirty.dark) syncDark(icao);
  if (dirty.alerts) renderAlerts();
  const popupChanged = [dirty.aircraft, dirty.patterns, dirty.dark].some(s => s.has(state.selected)) || dirty.alerts;
  dirty.aircraft.clear(); dirty.patterns.clear(); dirty.dark.clear(); dirty.alerts = false;
  recount();
  if (state.selected && popupChanged) renderPopup();
  focusFromLink();
}
// The snapshot is taken after the event stream opens (and again after every reconnect): the
// worker starts following its topics on the first request, so records it reads between a
// snapshot and the stream's opening would otherwise be missing until the next update.
async function snapshot() {
  (await (await fetch("/api/aircraft")).json()).forEach(upsert);
  const patterns = new Map((await (await fetch("/api/patterns")).json()).map(p => [p.icao24, p]));
  const dark = new Map((await (await fetch("/api/dark")).json()).map(d => [d.icao24, d]));
  for (const icao of new Set([...state.patterns.keys(), ...patterns.keys()])) dirty.patterns.add(icao);
  for (const icao of new Set([...state.dark.keys(), ...dark.keys()])) dirty.dark.add(icao);
  state.patterns = patterns; state.dark = dark;
  const alerts = await (await fetch("/api/alerts")).json();
  const live = state.alerts;
  state.alerts = alerts;
  live.slice().reverse().forEach(addAlert);
  dirty.alerts = true;
  flush();
}
function zoneOptions(features) {
  state.rings = features.filter(f => (f.properties || {}).kind === "buffer" && typeof f.properties.distance_nm === "number")
    .map(f => ({ key: `${f.properties.distance_nm}nm`, name: f.properties.name, nm: f.properties.distance_nm }));
  const sel = document.getElementById("f-zone");
  const opts = [["", "any"], ["sovereign", "sovereign airspace (land + 12 nm)"],
    ...state.rings.map(r => [r.key, `ring: within ${r.nm} nm beyond the line`]), ["beyond", "beyond the rings"]];
  sel.replaceChildren(...opts.map(([v, t]) => { const o = el("option", t); o.value = v; return o; }));
  state.zonesLoaded = true;
  syncFilterControls();
}
async function start() {
  const zones = await (await fetch("/api/zones")).json();
  zoneSource.addFeatures(geojson.readFeatures(zones));
  const kinds = k => zones.features.filter(f => (f.properties || {}).kind === k);
  drawn.boundaryRings = kinds("sovereign").reduce((n, f) => n + parts(f.geometry), 0);
  drawn.ringLines = kinds("buffer").reduce((n, f) => n + parts(f.geometry), 0);
  zoneOptions(zones.features);
  try {
    const neighbours = await (await fetch("/api/neighbours")).json();
    neighbourSource.addFeatures(geojson.readFeatures(neighbours));
    drawn.neighbourPolygons = neighbours.features.reduce((n, f) => n + parts(f.geometry), 0);
  } catch (e) { drawn.neighbourPolygons = 0; }
  applyFilters();
  const es = new EventSource("/api/events");
  es.onopen = () => { document.getElementById("status").textContent = "live"; snapshot(); };
  es.onerror = () => { document.getElementById("status").textContent = "reconnecting…"; };
  es.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    drawn.events++;
    if (ev.type === "track") upsert(ev.aircraft);
    if (ev.type === "alert") addAlert(ev.alert);
    if (ev.type === "pattern") setOrDelete(state.patterns, dirty.patterns, ev.icao24, ev.pattern);
    if (ev.type === "dark") setOrDelete(state.dark, dirty.dark, ev.icao24, ev.dark);
    scheduleFlush();
  };
}
document.getElementById("alt-legend").replaceChildren(...ALT_BANDS.flatMap(([, colour, text]) => {
  const sw = el("span", undefined, "alt"); sw.style.background = colour; return [sw, document.createTextNode(text)];
}));
readHash();
start().catch(err => { document.getElementById("status").textContent = `error: ${err}`; });
