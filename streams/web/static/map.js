// skyfence live map: draws the project's own zone file on a canvas (no tile server, works
// offline), then live aircraft and trails from /api/events (server-sent events).
"use strict";
const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d");
const state = { zones: null, aircraft: new Map(), alerts: [], view: { lon: -102, lat: 23.5, scale: 22 } };

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
function drawGeometry(g, fill, stroke, dash) {
  const polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
  ctx.beginPath();
  polys.forEach(p => p.forEach(ring));
  if (fill) { ctx.fillStyle = fill; ctx.fill("evenodd"); }
  if (stroke) { ctx.setLineDash(dash || []); ctx.strokeStyle = stroke; ctx.lineWidth = devicePixelRatio; ctx.stroke(); ctx.setLineDash([]); }
}
function draw() {
  ctx.fillStyle = "#0e1621";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (state.zones) {
    for (const f of state.zones.features) {
      const z = (f.properties || {}).zone || "";
      if (z === "neighbour") drawGeometry(f.geometry, "#1f2a38", "#34465c");
    }
    for (const f of state.zones.features) {
      const z = (f.properties || {}).zone || "";
      if (z.startsWith("ring")) drawGeometry(f.geometry, null, "#9bbbbb", [4, 4]);
    }
    for (const f of state.zones.features) {
      if ((f.properties || {}).zone === "sovereign") drawGeometry(f.geometry, "#2f6f4f", "#5fd39a");
    }
  }
  for (const a of state.aircraft.values()) {
    const mil = a.category === "military" || a.category === "surveillance";
    ctx.strokeStyle = mil ? "#e5484d88" : "#ffd16688";
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.beginPath();
    (a.trail || []).forEach((p, i) => { const [x, y] = project(p[1], p[0]); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.stroke();
    const [x, y] = project(a.lon, a.lat);
    ctx.fillStyle = mil ? "#e5484d" : "#ffd166";
    ctx.beginPath(); ctx.arc(x, y, 4 * devicePixelRatio, 0, 2 * Math.PI); ctx.fill();
    ctx.fillStyle = "#dfe7ef";
    ctx.font = `${11 * devicePixelRatio}px system-ui`;
    ctx.fillText(a.callsign || a.icao24, x + 6 * devicePixelRatio, y - 6 * devicePixelRatio);
  }
  document.getElementById("count").textContent = `${state.aircraft.size} aircraft`;
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
    info.textContent = `${a.zone || ""} · ${a.description || ""}`;
    const when = document.createElement("div");
    when.className = "muted";
    when.textContent = `${a.event_time_iso || a.event_time || ""} · ${(a.classification || {}).category || ""}`;
    d.append(who, info, when);
    el.append(d);
  }
}
function upsert(a) { if (a && a.icao24) state.aircraft.set(a.icao24, a); }

async function start() {
  state.zones = await (await fetch("/api/zones")).json();
  (await (await fetch("/api/aircraft")).json()).forEach(upsert);
  state.alerts = await (await fetch("/api/alerts")).json();
  renderAlerts();
  draw();
  const es = new EventSource("/api/events");
  let pending = false;
  es.onopen = () => { document.getElementById("status").textContent = "live"; };
  es.onerror = () => { document.getElementById("status").textContent = "reconnecting…"; };
  es.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ev.type === "track") upsert(ev.aircraft);
    if (ev.type === "alert") { state.alerts.unshift(ev.alert); state.alerts.length = Math.min(state.alerts.length, 200); renderAlerts(); }
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
