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
  // hostd's own work: shown only when the service runs and has data.
  { id: "backup-age", unit: "s", optional: true, queries: [
    { q: "time() - hostd_backup_last_success_timestamp_seconds", label: m => m.exported_job } ] },
  { id: "backup-duration", unit: "s", optional: true, queries: [
    { q: "hostd_backup_last_duration_seconds", label: m => m.exported_job } ] },
  { id: "backup-size", unit: "B", optional: true, queries: [
    { q: "hostd_backup_repository_size_bytes", label: m => m.exported_job + " repository" },
    { q: "hostd_backup_added_bytes", label: m => m.exported_job + " added" } ] },
  { id: "dns-queries", unit: "/s", optional: true, queries: [
    { q: "sum by (protocol) (rate(hostd_netcfg_dns_queries_total[$RATE]))", label: m => m.protocol },
    { q: "sum(rate(hostd_netcfg_dns_upstream_errors_total[$RATE]))", label: () => "upstream errors" } ] },
  { id: "dns-cache", unit: "%", optional: true, queries: [
    { q: "100 * sum(rate(hostd_netcfg_dns_cache_hits_total[$RATE])) / (sum(rate(hostd_netcfg_dns_cache_hits_total[$RATE])) + sum(rate(hostd_netcfg_dns_cache_misses_total[$RATE])))", label: () => "hits" } ] },
  { id: "dns-latency", unit: "s", optional: true, queries: [
    { q: "histogram_quantile(0.9, sum by (upstream, le) (rate(hostd_netcfg_dns_upstream_duration_seconds_bucket[$RATE])))", label: m => m.upstream + " p90" } ] },
  { id: "proxy-traffic", unit: "B/s", optional: true, queries: [
    { q: 'sum by (direction) (rate(hostd_proxy_traffic_bytes_total{kind="outbound"}[$RATE]))', label: m => m.direction } ] },
  { id: "proxy-latency", unit: "s", optional: true, queries: [
    { q: "hostd_proxy_probe_latency_seconds", label: () => "probe" } ] },
  { id: "containers-space", unit: "B", optional: true, queries: [
    { q: "hostd_containers_reclaimed_bytes_total", label: () => "reclaimed" },
    { q: "hostd_containers_disk_used_bytes", label: () => "used" } ] },
];

async function api(path, params) {
  const body = new URLSearchParams(params);
  const r = await fetch(path, { method: "POST", body });
  const j = await r.json();
  if (j.status !== "success") throw new Error(j.error || r.statusText);
  return j.data;
}

// fmt prints v in unit: bytes in binary units (KiB, MiB, GiB: what the
// numbers are), durations in ms, s, min, h or d, percentages and rates.
function fmt(v, unit) {
  if (!isFinite(v)) return "";
  const digits = a => (a === 0 || Math.abs(a) >= 100 ? 0 : Math.abs(a) >= 10 ? 1 : 2);
  const trim = (a, d) => String(parseFloat(a.toFixed(d)));
  if (unit === "B" || unit === "B/s") {
    const u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return trim(v, digits(v)) + " " + u[i] + (unit === "B/s" ? "/s" : "");
  }
  if (unit === "s") {
    const a = Math.abs(v);
    if (a === 0) return "0";
    if (a < 1) return trim(v * 1000, digits(v * 1000)) + " ms";
    if (a < 120) return trim(v, digits(v)) + " s";
    if (a < 7200) return trim(v / 60, digits(v / 60)) + " min";
    if (a < 172800) return trim(v / 3600, digits(v / 3600)) + " h";
    return trim(v / 86400, digits(v / 86400)) + " d";
  }
  if (unit === "%") return trim(v, digits(v)) + "%";
  if (unit === "/s") return trim(v, digits(v)) + "/s";
  return trim(v, digits(v));
}

// niceStep rounds a raw tick step up to a round value: a power of two in
// the largest binary unit (KiB, MiB, GiB) for bytes, else 1, 2, 2.5 or 5
// times a power of ten (of minutes, hours or days for long durations), so
// axis labels read 256 MiB, 512 MiB, not 243.7 MiB.
function niceStep(raw, unit) {
  if (raw <= 0 || !isFinite(raw)) return 1;
  let base = 1;
  if (unit === "B" || unit === "B/s") {
    // Powers of two within the unit: 256 MiB, 512 MiB, 768 MiB, 1 GiB.
    while (raw / base >= 1024) base *= 1024;
    return Math.pow(2, Math.ceil(Math.log2(Math.max(raw / base, 1)))) * base;
  } else if (unit === "s" && raw >= 60) {
    for (const b of [60, 3600, 86400]) if (raw >= b) base = b;
  }
  const r = raw / base;
  const p = Math.pow(10, Math.floor(Math.log10(r)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= r) return m * p * base;
  return 10 * p * base;
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
  const W = 600, H = 180, L = 64, B = 18, T = 6, R = 6;
  let max = 0;
  for (const s of series) for (const [, v] of s.values) if (isFinite(v)) max = Math.max(max, v);
  // A near-idle disk or link still gets a readable axis.
  max = Math.max(max, { "%": 1, "B": 1024, "B/s": 1024, "/s": 1, "s": 0.001 }[unit] || 0);
  if (max === 0) max = 1;
  // Four or so gridlines at round values; the top one at or above max.
  const step = niceStep(max / 4, unit);
  max = Math.ceil(max * 1.0001 / step) * step;
  const x = t => L + (t - start) / (end - start) * (W - L - R);
  const y = v => T + (1 - v / max) * (H - T - B);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
  for (let v = 0; v <= max + step / 2; v += step) {
    const yy = y(v);
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
  hover(el, svg, series, start, end, unit, x, W, L, R, T, B, H);
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

// hover shows, under the pointer (mouse or touch), a vertical line and
// every series' value at the nearest point in time.
function hover(el, svg, series, start, end, unit, x, W, L, R, T, B, H) {
  const line = svgEl("line", { y1: T, y2: H - B, class: "cursor", visibility: "hidden" });
  svg.appendChild(line);
  const tip = document.createElement("div");
  tip.className = "tip";
  tip.hidden = true;
  el.appendChild(tip);
  const move = ev => {
    const r = svg.getBoundingClientRect();
    const px = (ev.clientX - r.left) / r.width * W;
    if (px < L || px > W - R) { leave(); return; }
    const t = start + (px - L) / (W - L - R) * (end - start);
    const rows = [];
    let at = null;
    series.forEach((s, i) => {
      let best = null;
      for (const p of s.values) if (best === null || Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
      if (best === null || Math.abs(best[0] - t) > s.step * 1.5 || !isFinite(best[1])) return;
      at = best[0];
      rows.push([COLORS[i % COLORS.length], s.label, fmt(best[1], unit)]);
    });
    if (at === null) { leave(); return; }
    line.setAttribute("x1", x(at));
    line.setAttribute("x2", x(at));
    line.setAttribute("visibility", "visible");
    tip.textContent = "";
    const head = document.createElement("div");
    head.textContent = new Date(at * 1000).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
    tip.appendChild(head);
    for (const [c, label, v] of rows) {
      const d = document.createElement("div");
      d.style.setProperty("--c", c);
      d.className = "row";
      d.textContent = label + " " + v;
      tip.appendChild(d);
    }
    tip.hidden = false;
    const left = ev.clientX - el.getBoundingClientRect().left;
    tip.style.left = Math.max(0, Math.min(left + 12, el.clientWidth - tip.offsetWidth)) + "px";
  };
  const leave = () => { line.setAttribute("visibility", "hidden"); tip.hidden = true; };
  svg.addEventListener("pointermove", move);
  svg.addEventListener("pointerdown", move);
  svg.addEventListener("pointerleave", leave);
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
    if (c.optional) {
      // A service that is off or has no data yet: no card at all.
      el.closest(".card").hidden = series.length === 0;
      if (!series.length) return;
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

// alerts lists the firing and pending alerts above everything else; the
// card is hidden while there are none.
async function alerts() {
  const card = document.getElementById("alerts-card"), ul = document.getElementById("alerts");
  try {
    const d = await api("api/v1/alerts", {});
    const as = d.alerts.slice().sort((a, b) => (a.state === b.state ? 0 : a.state === "firing" ? -1 : 1) ||
      (a.labels.alertname || "").localeCompare(b.labels.alertname || ""));
    ul.textContent = "";
    for (const a of as) {
      const li = document.createElement("li");
      const b = document.createElement("span");
      b.className = "state " + a.state;
      b.textContent = a.state;
      const name = document.createElement("strong");
      name.textContent = " " + (a.labels.alertname || "") + " ";
      const text = document.createElement("span");
      text.textContent = (a.annotations.summary || "") + (a.activeAt ? " · since " + ago(a.activeAt) : "");
      const ls = document.createElement("span");
      ls.className = "labels";
      ls.textContent = Object.keys(a.labels).filter(k => k !== "alertname").sort().map(k => k + "=" + a.labels[k]).join(" ");
      li.append(b, name, text, ls);
      ul.appendChild(li);
    }
    card.hidden = as.length === 0;
  } catch (e) {
    card.hidden = true;
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
    await Promise.all([alerts(), services(), diskSpace(), ...CHARTS.map(c => chart(c, start, end, step))]);
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.loaded = "1";
  } finally {
    busy = false;
  }
}

// fitRange picks the shortest range that holds all the history there is
// (a fresh host shows its first 15 minutes, not an empty hour).
async function fitRange() {
  const sel = document.getElementById("range");
  try {
    const d = await api("api/v1/query", { query: 'time() - min_over_time(timestamp(up{job="hostd"})[7d:5m])' });
    if (!d.result.length) return;
    const span = parseFloat(d.result[0].value[1]);
    for (const o of sel.options) {
      if (parseInt(o.value, 10) >= span) { sel.value = o.value; return; }
    }
    sel.value = sel.options[sel.options.length - 1].value;
  } catch (e) { /* keep the default */ }
}

document.getElementById("range").addEventListener("change", refresh);
hostname();
fitRange().then(refresh);
setInterval(refresh, 15000);
