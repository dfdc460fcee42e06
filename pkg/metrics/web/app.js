"use strict";
// hostd dashboard: reads the Prometheus-compatible query API and /status
// of the same listener and draws SVG charts. No external code.

const COLORS = ["#58a6ff", "#3fb950", "#d29922", "#f85149", "#bc8cff", "#39c5cf", "#ff7b72", "#e3b341"];

const CHARTS = [
  { id: "cpu", unit: "%", queries: [
    { q: 'sum by (mode) (rate(node_cpu_seconds_total{mode!="idle"}[$RATE])) / scalar(count(count by (cpu) (node_cpu_seconds_total))) * 100', label: m => m.mode } ] },
  { id: "memory", unit: "B", queries: [
    { q: "node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes", label: () => "used" },
    { q: "node_memory_MemTotal_bytes", label: () => "total" } ] },
  { id: "load", unit: "", queries: [
    { q: "node_load1", label: () => "1m" }, { q: "node_load5", label: () => "5m" }, { q: "node_load15", label: () => "15m" } ] },
  { id: "disk-io", unit: "B/s", queries: [
    { q: "sum by (device) (rate(node_disk_read_bytes_total[$RATE]))", label: m => m.device + " read" },
    { q: "sum by (device) (rate(node_disk_written_bytes_total[$RATE]))", label: m => m.device + " write" } ] },
  { id: "network", unit: "B/s", queries: [
    { q: 'sum by (device) (rate(node_network_receive_bytes_total{device!="lo"}[$RATE]))', label: m => m.device + " in" },
    { q: 'sum by (device) (rate(node_network_transmit_bytes_total{device!="lo"}[$RATE]))', label: m => m.device + " out" } ] },
];

async function api(path, params) {
  const body = new URLSearchParams(params);
  const r = await fetch(path, { method: "POST", body });
  const j = await r.json();
  if (j.status !== "success") throw new Error(j.error || r.statusText);
  return j.data;
}

function fmt(v, unit) {
  if (!isFinite(v)) return "";
  if (unit === "B" || unit === "B/s") {
    const u = ["", "K", "M", "G", "T", "P"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    const digits = v === 0 || Math.abs(v) >= 100 || (i === 0 && Math.abs(v) >= 10) ? 0 : 1;
    return v.toFixed(digits) + " " + u[i] + unit;
  }
  if (unit === "%") return v.toFixed(v < 10 ? 1 : 0) + "%";
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2);
}

function svgEl(name, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  return e;
}

function draw(el, series, start, end, unit) {
  el.textContent = "";
  if (!series.length) {
    const d = document.createElement("div");
    d.className = "empty";
    d.textContent = "no data yet";
    el.appendChild(d);
    return;
  }
  const W = 600, H = 180, L = 56, B = 18, T = 6, R = 6;
  let max = 0;
  for (const s of series) for (const [, v] of s.values) if (isFinite(v)) max = Math.max(max, v);
  if (unit === "%") max = Math.max(max, 1);
  if (max === 0) max = 1;
  max *= 1.1;
  const x = t => L + (t - start) / (end - start) * (W - L - R);
  const y = v => T + (1 - v / max) * (H - T - B);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4, yy = y(v);
    svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: yy, y2: yy, class: "gridline" }));
    const t = svgEl("text", { x: L - 4, y: yy + 3, "text-anchor": "end", class: "axis" });
    t.textContent = fmt(v, unit);
    svg.appendChild(t);
  }
  for (let i = 0; i <= 3; i++) {
    const ts = start + (end - start) * i / 3;
    const t = svgEl("text", { x: x(ts), y: H - 4, "text-anchor": i === 0 ? "start" : i === 3 ? "end" : "middle", class: "axis" });
    t.textContent = new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    svg.appendChild(t);
  }
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    // Break the line over gaps (hostd not running); a point with no
    // neighbour (a fresh start) is drawn as a dot.
    const segs = [];
    let prev = null;
    for (const [t, v] of s.values) {
      if (!isFinite(v)) { prev = null; continue; }
      if (prev === null || t - prev > s.step * 3) segs.push([]);
      segs[segs.length - 1].push([x(t), y(v)]);
      prev = t;
    }
    let d = "";
    for (const seg of segs) {
      if (seg.length === 1) {
        svg.appendChild(svgEl("circle", { cx: seg[0][0].toFixed(1), cy: seg[0][1].toFixed(1), r: 2.5, fill: color }));
        continue;
      }
      seg.forEach(([px, py], j) => { d += (j ? "L" : "M") + px.toFixed(1) + "," + py.toFixed(1); });
    }
    if (d) svg.appendChild(svgEl("path", { d, stroke: color }));
  });
  el.appendChild(svg);
  const leg = document.createElement("div");
  leg.className = "legend";
  series.forEach((s, i) => {
    const sp = document.createElement("span");
    sp.style.setProperty("--c", COLORS[i % COLORS.length]);
    const last = s.values.length ? s.values[s.values.length - 1][1] : NaN;
    sp.textContent = s.label + " " + fmt(last, unit);
    leg.appendChild(sp);
  });
  el.appendChild(leg);
}

async function chart(c, start, end, step) {
  const el = document.getElementById(c.id);
  try {
    const series = [];
    for (const q of c.queries) {
      // Like Grafana's $__rate_interval: at least four default scrape
      // intervals and wider than one step, so every point has two samples.
      const rate = Math.max(60, 2 * step) + "s";
      const data = await api("api/v1/query_range", { query: q.q.replaceAll("$RATE", rate), start, end, step });
      for (const r of data.result) {
        series.push({ label: q.label(r.metric), step, values: r.values.map(([t, v]) => [t, parseFloat(v)]) });
      }
    }
    draw(el, series, start, end, c.unit);
  } catch (e) {
    el.textContent = "error: " + e.message;
  }
}

async function diskSpace() {
  const el = document.getElementById("disk-space");
  try {
    const data = await api("api/v1/query", { query: "100 * (1 - node_filesystem_avail_bytes / node_filesystem_size_bytes)" });
    const size = await api("api/v1/query", { query: "node_filesystem_size_bytes" });
    const sizes = {};
    for (const r of size.result) sizes[r.metric.mountpoint] = parseFloat(r.value[1]);
    el.textContent = "";
    const rows = data.result.map(r => ({ m: r.metric.mountpoint, v: parseFloat(r.value[1]) })).sort((a, b) => a.m.localeCompare(b.m));
    if (!rows.length) { el.innerHTML = '<div class="empty">no data yet</div>'; return; }
    for (const r of rows) {
      const row = document.createElement("div");
      row.className = "bar";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = r.m;
      name.title = r.m + " (" + fmt(sizes[r.m], "B") + ")";
      const track = document.createElement("span");
      track.className = "track";
      const fill = document.createElement("span");
      fill.className = "fill" + (r.v > 90 ? " bad" : r.v > 75 ? " warn" : "");
      fill.style.width = Math.min(100, Math.max(0, r.v)).toFixed(1) + "%";
      fill.style.display = "block";
      track.appendChild(fill);
      const pct = document.createElement("span");
      pct.className = "pct";
      pct.textContent = fmt(r.v, "%");
      row.append(name, track, pct);
      el.appendChild(row);
    }
  } catch (e) {
    el.textContent = "error: " + e.message;
  }
}

function ago(iso) {
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 90) return Math.round(s) + "s ago";
  if (s < 5400) return Math.round(s / 60) + "m ago";
  if (s < 172800) return Math.round(s / 3600) + "h ago";
  return Math.round(s / 86400) + "d ago";
}

async function services() {
  const tb = document.querySelector("#services tbody");
  try {
    const r = await fetch("status");
    const st = await r.json();
    tb.textContent = "";
    for (const s of st.services || []) {
      const tr = document.createElement("tr");
      const cells = [s.name, null, ago(s.since), String(s.restarts || 0), s.last_error ? s.summary + " — " + s.last_error : s.summary || ""];
      cells.forEach((c, i) => {
        const td = document.createElement("td");
        if (i === 1) {
          const b = document.createElement("span");
          b.className = "state " + s.state;
          b.textContent = s.state;
          td.appendChild(b);
        } else {
          td.textContent = c;
        }
        if (i === 4) td.className = "summary";
        tr.appendChild(td);
      });
      tb.appendChild(tr);
    }
  } catch (e) {
    tb.innerHTML = "";
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 5;
    td.textContent = "status unavailable: " + e.message;
    tr.appendChild(td);
    tb.appendChild(tr);
  }
}

async function hostname() {
  try {
    const d = await api("api/v1/query", { query: "node_uname_info" });
    if (d.result.length) document.getElementById("host").textContent = d.result[0].metric.nodename + " · " + d.result[0].metric.release;
  } catch (e) { /* shown by the charts */ }
}

let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const span = parseInt(document.getElementById("range").value, 10);
    const end = Date.now() / 1000, start = end - span;
    const step = Math.max(15, Math.round(span / 240));
    await Promise.all([services(), diskSpace(), ...CHARTS.map(c => chart(c, start, end, step))]);
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.loaded = "1";
  } finally {
    busy = false;
  }
}

document.getElementById("range").addEventListener("change", refresh);
hostname();
refresh();
setInterval(refresh, 15000);
