// skyfence live map: draws the project's own zone file on a canvas (no tile server, works
// offline), then live aircraft and trails from /api/events (server-sent events), each active
// on-station pattern's outline (dashed, coloured by kind) and where aircraft went dark.
"use strict";
const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d");
const state = { zones: null, neighbours: null, aircraft: new Map(), alerts: [], patterns: new Map(), dark: new Map(), view: { lon: -100, lat: 23.5, scale: 26 } };
// counts of what was actually drawn, read by the browser test and handy in the devtools console
const drawn = { boundaryRings: 0, ringLines: 0, neighbourPolygons: 0, aircraft: 0, labels: [], alerts: 0, events: 0, draws: 0,
  patterns: 0, patternLabels: [], dark: 0 };
// one colour per pattern kind (the legend in index.html says which)
const KIND_COLOUR = { orbit: "#4cc9f0", racetrack: "#f72585", survey: "#b5e48c", loiter: "#f8961e" };
window.skyfence = Object.freeze({
  get counts() { return JSON.parse(JSON.stringify(drawn)); },
  get aircraft() { return [...state.aircraft.values()].map(a => ({ icao24: a.icao24, callsign: a.callsign, lat: a.lat, lon: a.lon, trail: (a.trail || []).length })); },
  get alerts() { return state.alerts.length; },
  get patterns() { return [...state.patterns.values()].map(p => ({ icao24: p.icao24, kind: p.kind, label: p.label, outline: (p.outline || []).length })); },
  get dark() { return [...state.dark.values()].map(d => ({ icao24: d.icao24, callsign: d.callsign })); },
});

function resize() {
  canvas.width = canvas.clientWidth * devicePixelRatio;
  canvas.height = canvas.clientHeight * devicePixelRatio;
  draw();
}
// equirectangular around the view centre, with longitude shrunk by cos(latitude)
function project(lon, lat) {
  const v = state.view, k = v.scale * devicePixelRatio, c = Math.cos(v.lat * Math.PI / 180);
  return [canvas.width / 2 + (lon - v.lon) * c * k, canvas.height / 2 - (lat - v.lat) * k];
}
function ring(coords) {
  coords.forEach((pt, i) => { const [x, y] = project(pt[0], pt[1]); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
  ctx.closePath();
}
function drawGeometry(g, fill, stroke, dash, width) {
  const polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
  ctx.beginPath();
  let n = 0;
  polys.forEach(p => p.forEach(r => { ring(r); n++; }));
  if (g.type === "MultiLineString") {
    g.coordinates.forEach(line => { line.forEach((pt, i) => { const [x, y] = project(pt[0], pt[1]); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); }); n++; });
  }
  if (fill) { ctx.fillStyle = fill; ctx.fill("evenodd"); }
  if (stroke) { ctx.setLineDash((dash || []).map(d => d * devicePixelRatio)); ctx.strokeStyle = stroke; ctx.lineWidth = (width || 1) * devicePixelRatio; ctx.stroke(); ctx.setLineDash([]); }
  return n;
}
function draw() {
  drawn.draws++;
  ctx.fillStyle = "#0b1a28";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  let nb = 0, rl = 0, br = 0;
  if (state.neighbours) {
    for (const f of state.neighbours.features) nb += drawGeometry(f.geometry, "#1c2735", "#34465c");
  }
  if (state.zones) {
    for (const f of state.zones.features) {
      if ((f.properties || {}).kind === "buffer") rl += drawGeometry(f.geometry, null, "#8fb3b8aa", [5, 4], 1);
    }
    for (const f of state.zones.features) {
      const k = (f.properties || {}).kind;
      if (k === "sovereign") br += drawGeometry(f.geometry, "#2f6f4f", "#6fe0a8", null, 1.4);
      if (k === "user") drawGeometry(f.geometry, "#7b5cd633", "#a58bff", [2, 3], 1.2);
    }
  }
  drawn.neighbourPolygons = nb; drawn.ringLines = rl; drawn.boundaryRings = br;
  const labels = [];
  const dpr = devicePixelRatio;
  drawPatterns(dpr);
  drawDark(dpr);
  for (const a of state.aircraft.values()) {
    if (typeof a.lat !== "number" || typeof a.lon !== "number") continue;
    const mil = a.category === "military" || a.category === "surveillance";
    const inside = typeof a.distance_m === "number" ? a.distance_m < 0 : a.zone === "sovereign";
    const colour = mil ? "#ff5a5f" : inside ? "#ffb347" : "#ffd166";
    ctx.strokeStyle = colour + "cc";
    ctx.lineWidth = 2.4 * dpr;
    ctx.beginPath();
    (a.trail || []).forEach((p, i) => { const [x, y] = project(p[1], p[0]); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.stroke();
    const [x, y] = project(a.lon, a.lat);
    ctx.fillStyle = colour;
    ctx.strokeStyle = "#0b1a28";
    ctx.lineWidth = 1.5 * dpr;
    ctx.beginPath(); ctx.arc(x, y, (mil ? 5.5 : 4.5) * dpr, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    const label = a.callsign || a.icao24;
    const alt = typeof a.alt_ft === "number" ? ` ${Math.round(a.alt_ft / 100)}` : "";
    ctx.font = `600 ${12 * dpr}px system-ui, sans-serif`;
    const text = `${label}${alt ? " FL" + alt.trim() : ""}`;
    const w = ctx.measureText(text).width;
    ctx.fillStyle = "#0b1a28cc";
    ctx.fillRect(x + 7 * dpr, y - 18 * dpr, w + 6 * dpr, 15 * dpr);
    ctx.fillStyle = "#f2f6fa";
    ctx.fillText(text, x + 10 * dpr, y - 6 * dpr);
    labels.push(label);
  }
  drawn.aircraft = labels.length; drawn.labels = labels;
  document.getElementById("count").textContent = `${state.aircraft.size} aircraft · ${state.alerts.length} alerts`
    + (state.patterns.size ? ` · ${state.patterns.size} on station` : "") + (state.dark.size ? ` · ${state.dark.size} dark` : "");
}
function tag(text, x, y, colour, dpr) {
  ctx.font = `600 ${11 * dpr}px system-ui, sans-serif`;
  const w = ctx.measureText(text).width;
  ctx.fillStyle = "#0b1a28cc";
  ctx.fillRect(x - 3 * dpr, y - 12 * dpr, w + 6 * dpr, 15 * dpr);
  ctx.fillStyle = colour;
  ctx.fillText(text, x, y);
}
// each active pattern: its outline dashed in the kind's colour, labelled above its northernmost point
function drawPatterns(dpr) {
  const labels = [];
  for (const p of state.patterns.values()) {
    const outline = p.outline || [];
    if (outline.length < 2) continue;
    const colour = KIND_COLOUR[p.kind] || "#dfe7ef";
    ctx.beginPath();
    ring(outline);
    ctx.fillStyle = colour + "22";
    ctx.fill();
    ctx.setLineDash([6 * dpr, 4 * dpr]);
    ctx.strokeStyle = colour;
    ctx.lineWidth = (p.on_station ? 2.2 : 1.6) * dpr;
    ctx.stroke();
    ctx.setLineDash([]);
    const top = outline.reduce((a, b) => (b[1] > a[1] ? b : a), outline[0]);
    const [x, y] = project(top[0], top[1]);
    tag(p.label || p.kind, x, y - 6 * dpr, colour, dpr);
    labels.push(p.label || p.kind);
  }
  drawn.patterns = labels.length; drawn.patternLabels = labels;
}
// went dark: a hollow marker at the last position, a dotted line to the dead-reckoned position now
function drawDark(dpr) {
  let n = 0;
  for (const d of state.dark.values()) {
    const last = d.last_seen || {}, dr = d.dead_reckoned || {};
    if (typeof last.lat !== "number" || typeof last.lon !== "number") continue;
    const colour = d.severity === "high" ? "#ff5a5f" : "#f5a524";
    const [x0, y0] = project(last.lon, last.lat);
    if (typeof dr.lat === "number" && typeof dr.lon === "number") {
      const [x1, y1] = project(dr.lon, dr.lat);
      ctx.setLineDash([2 * dpr, 3 * dpr]);
      ctx.strokeStyle = colour; ctx.lineWidth = 1.6 * dpr;
      ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
      ctx.setLineDash([]);
      ctx.beginPath(); ctx.arc(x1, y1, 4 * dpr, 0, 2 * Math.PI); ctx.fillStyle = colour + "88"; ctx.fill();
    }
    ctx.strokeStyle = colour; ctx.lineWidth = 2 * dpr;
    ctx.beginPath(); ctx.arc(x0, y0, 6 * dpr, 0, 2 * Math.PI); ctx.stroke();
    tag(`${d.callsign || d.icao24} dark`, x0 + 8 * dpr, y0 + 14 * dpr, colour, dpr);
    n++;
  }
  drawn.dark = n;
}
function renderAlerts() {
  const el = document.getElementById("alerts");
  el.innerHTML = "";
  for (const a of state.alerts.slice(0, 100)) {
    const d = document.createElement("div");
    d.className = `alert ${a.severity || ""}`;
    const who = document.createElement("b");
    who.textContent = `${a.transition} · ${a.callsign || a.icao24 || a.category || ""}`;
    const info = document.createElement("div");
    const dm = a.distance_to_boundary_m;
    const dist = typeof dm === "number" ? (dm < 0 ? `${Math.round(-dm / 1000)} km inside` : `${Math.round(dm / 1000)} km from boundary`) : "";
    // pattern, dark and activity documents say it best in their headline
    info.textContent = a.schema && a.schema !== "alert.v1" ? (a.headline || "") : [a.description, dist].filter(Boolean).join(" · ");
    const when = document.createElement("div");
    when.className = "muted";
    when.textContent = `${a.event_time_iso || a.event_time || ""} · ${(a.classification || {}).category || ""} · ${a.severity || ""}`;
    d.append(who, info, when);
    el.append(d);
  }
  drawn.alerts = el.children.length;
}
function upsert(a) { if (a && a.icao24) state.aircraft.set(a.icao24, a); }
// a pattern or dark event carries the aircraft's whole current state: null means it is over
function setOrDelete(map, icao, v) { if (!icao) return; if (v) map.set(icao, v); else map.delete(icao); }

function alertKey(a) { return a.event_id || `${a.alert_id}:${a.transition}:${a.event_time}`; }
function addAlert(a) {
  if (state.alerts.some(b => alertKey(b) === alertKey(a))) return;
  state.alerts.unshift(a);
  state.alerts.length = Math.min(state.alerts.length, 200);
}
// The snapshot is taken after the event stream opens (and again after every reconnect): the
// worker starts following its topics on the first request, so records it reads between a
// snapshot and the stream's opening would otherwise be missing until the next update.
async function snapshot() {
  (await (await fetch("/api/aircraft")).json()).forEach(upsert);
  state.patterns = new Map((await (await fetch("/api/patterns")).json()).map(p => [p.icao24, p]));
  state.dark = new Map((await (await fetch("/api/dark")).json()).map(d => [d.icao24, d]));
  const alerts = await (await fetch("/api/alerts")).json();
  const live = state.alerts;
  state.alerts = alerts;
  live.slice().reverse().forEach(addAlert);
  renderAlerts();
  draw();
}

async function start() {
  state.zones = await (await fetch("/api/zones")).json();
  try { state.neighbours = await (await fetch("/api/neighbours")).json(); } catch (e) { state.neighbours = null; }
  draw();
  const es = new EventSource("/api/events");
  let pending = false;
  es.onopen = () => { document.getElementById("status").textContent = "live"; snapshot(); };
  es.onerror = () => { document.getElementById("status").textContent = "reconnecting…"; };
  es.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    drawn.events++;
    if (ev.type === "track") upsert(ev.aircraft);
    if (ev.type === "alert") { addAlert(ev.alert); renderAlerts(); }
    if (ev.type === "pattern") setOrDelete(state.patterns, ev.icao24, ev.pattern);
    if (ev.type === "dark") setOrDelete(state.dark, ev.icao24, ev.dark);
    if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; draw(); }); }
  };
}
let drag = null;
canvas.addEventListener("mousedown", e => { drag = [e.clientX, e.clientY]; });
window.addEventListener("mouseup", () => { drag = null; });
window.addEventListener("mousemove", e => {
  if (!drag) return;
  const v = state.view, c = Math.cos(v.lat * Math.PI / 180);
  v.lon -= (e.clientX - drag[0]) / (v.scale * c); v.lat += (e.clientY - drag[1]) / v.scale;
  drag = [e.clientX, e.clientY]; draw();
});
canvas.addEventListener("wheel", e => { e.preventDefault(); state.view.scale *= e.deltaY < 0 ? 1.2 : 1 / 1.2; draw(); }, { passive: false });
window.addEventListener("resize", resize);
resize();
start().catch(err => { document.getElementById("status").textContent = `error: ${err}`; });
