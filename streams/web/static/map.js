// skyfence live map: draws the project's own zone file on a canvas (no tile server, works
// offline), then live aircraft and trails from /api/events (server-sent events).
"use strict";
const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d");
const state = { zones: null, neighbours: null, aircraft: new Map(), alerts: [], view: { lon: -100, lat: 23.5, scale: 26 } };
// counts of what was actually drawn, read by the browser test and handy in the devtools console
const drawn = { boundaryRings: 0, ringLines: 0, neighbourPolygons: 0, aircraft: 0, labels: [], alerts: 0, events: 0, draws: 0 };
window.skyfence = Object.freeze({
  get counts() { return JSON.parse(JSON.stringify(drawn)); },
  get aircraft() { return [...state.aircraft.values()].map(a => ({ icao24: a.icao24, callsign: a.callsign, lat: a.lat, lon: a.lon, trail: (a.trail || []).length })); },
  get alerts() { return state.alerts.length; },
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
  document.getElementById("count").textContent = `${state.aircraft.size} aircraft · ${state.alerts.length} alerts`;
}
function renderAlerts() {
  const el = document.getElementById("alerts");
  el.innerHTML = "";
  for (const a of state.alerts.slice(0, 100)) {
    const d = document.createElement("div");
    d.className = `alert ${a.severity || ""}`;
    const who = document.createElement("b");
    who.textContent = `${a.transition} · ${a.callsign || a.icao24}`;
    const info = document.createElement("div");
    const dm = a.distance_to_boundary_m;
    const dist = typeof dm === "number" ? (dm < 0 ? `${Math.round(-dm / 1000)} km inside` : `${Math.round(dm / 1000)} km from boundary`) : "";
    info.textContent = [a.description, dist].filter(Boolean).join(" · ");
    const when = document.createElement("div");
    when.className = "muted";
    when.textContent = `${a.event_time_iso || a.event_time || ""} · ${(a.classification || {}).category || ""} · ${a.severity || ""}`;
    d.append(who, info, when);
    el.append(d);
  }
  drawn.alerts = el.children.length;
}
function upsert(a) { if (a && a.icao24) state.aircraft.set(a.icao24, a); }

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
