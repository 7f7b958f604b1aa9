// skytime status page: polls /api/status every second and /api/history every
// five, and draws everything itself (no libraries, works offline).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// Nanoseconds with a unit an operator reads at a glance.
function ns(v, signed) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  const a = Math.abs(v);
  const sign = signed ? (v < 0 ? "−" : "+") : (v < 0 ? "−" : "");
  if (a >= 1e9) return sign + (a / 1e9).toFixed(3) + " s";
  if (a >= 1e6) return sign + (a / 1e6).toFixed(3) + " ms";
  if (a >= 1e3) return sign + (a / 1e3).toFixed(2) + " µs";
  return sign + a.toFixed(0) + " ns";
}

function age(s) {
  if (s === null || s === undefined || !isFinite(s)) return "never";
  if (s < 10) return s.toFixed(1) + " s ago";
  const w = Math.round(s);
  if (w < 120) return w + " s ago";
  if (w < 7200) return Math.floor(w / 60) + " min " + (w % 60) + " s ago";
  return Math.floor(w / 3600) + " h " + Math.floor((w % 3600) / 60) + " min ago";
}

function duration(s) {
  return age(s).replace(/ ago$/, "");
}

// chrony-style reach: octal, plus the last eight samples as dots (newest right).
function reach(r) {
  const span = el("span", { class: "reach" });
  span.append(document.createTextNode(r.toString(8).padStart(3, "0") + " "));
  for (let bit = 7; bit >= 0; bit--) {
    const on = (r >> bit) & 1;
    span.append(el("span", { class: on ? "on" : "off" }, on ? "●" : "○"));
  }
  return span;
}

function figures(dl, rows) {
  dl.replaceChildren();
  for (const [k, v] of rows) {
    dl.append(el("dt", {}, k));
    const dd = el("dd");
    if (v instanceof Node) dd.append(v); else dd.textContent = v;
    dl.append(dd);
  }
}

function renderStatus(s) {
  const state = $("state");
  state.textContent = s.state;
  state.className = "state state-" + s.state;
  $("reason").textContent = s.state_reason;
  $("since").textContent = "since " + s.state_since + " (" + duration(s.state_for_s) + ")";
  $("simulated").hidden = !s.simulated;
  document.title = "skytime: " + s.state;

  const alerts = $("alerts");
  alerts.replaceChildren();
  if (s.alerts.length === 0) {
    alerts.append(el("li", { class: "none" }, "No active alerts"));
  }
  for (const a of s.alerts) {
    const li = el("li", { class: a.severity, "data-alert": a.name });
    li.append(el("span", { class: "name" }, a.name), document.createTextNode(" "));
    li.append(el("span", { class: "muted" }, a.severity + ", " + duration(a.active_for_s) + ": "));
    li.append(document.createTextNode(a.message));
    alerts.append(li);
  }

  const req = s.ntp.requests;
  figures($("figures"), [
    ["Offset", ns(s.offset_ns, true) + " ± " + ns(s.offset_sigma_ns)],
    ["RMS offset", ns(s.rms_offset_ns)],
    ["Jitter", ns(s.jitter_ns)],
    ["Frequency", Math.abs(s.frequency_fast_ppm).toFixed(3) + " ppm " + (s.frequency_fast_ppm >= 0 ? "fast" : "slow") + " (residual " + s.residual_frequency_ppm.toFixed(4) + ", skew " + s.skew_ppm.toFixed(4) + ")"],
    ["Root dispersion", ns(s.root_dispersion_ns) + " (+" + ns(s.dispersion_rate_ns_per_s) + "/s)"],
    ["Stratum", s.stratum + " (" + s.reference_id + ")" + (s.synchronised ? "" : ", unsynchronised: LI=3")],
    ["Leap", s.leap.status + (s.leap.at ? " before " + s.leap.at : "")],
    ["Holdover", s.holdover ? duration(s.holdover.elapsed_s) + ", bound " + ns(s.holdover.bound_ns) + " of " + ns(s.holdover.limit_ns) : "no"],
    ["Temperature", s.temperature ? (s.temperature.reading_c === null ? "no reading" : s.temperature.reading_c.toFixed(2) + " °C")
      + ", coefficient " + s.temperature.coefficient_ppm_per_k.toFixed(4) + " ± " + s.temperature.coefficient_sigma_ppm_per_k.toFixed(4) + " ppm/K"
      + (s.temperature.quadratic_ppm_per_k2 != null ? ", quadratic " + s.temperature.quadratic_ppm_per_k2.toFixed(5) + " ± " + s.temperature.quadratic_sigma_ppm_per_k2.toFixed(5) + " ppm/K²" : "")
      + (s.temperature.trusted ? " (used in holdover)" : " (not yet trusted)") + ", sensor " + s.temperature.sensor
      + (s.temperature.compensation_ppm !== null ? ", compensating " + s.temperature.compensation_ppm.toFixed(4) + " ppm" : "") : "no sensor"],
    ["NTP requests", s.ntp.requests_per_second.toFixed(1) + "/s; served " + req.served + ", limited " + req.rate_limited + ", denied " + req.denied],
  ].concat(s.nts ? [
    ["NTS", s.nts.requests + " requests, " + s.nts.naks + " NAKs; NTS-KE " + s.nts.ke_sessions + " sessions on " + s.nts.ke_listen.join(", ")],
    ["NTS certificate", s.nts.certificate_subject + ": expires " + s.nts.certificate_expires + " (" + s.nts.certificate_days_left + " days)"],
  ] : []).concat(s.hardware_detection ? [
    ["Hat detection", s.hardware_detection.outcome],
  ].concat(s.hardware_detection.tried.map((t) => ["  tried", t])) : []));

  const n = s.nmea;
  const delay = n.delay_median_ms !== null
    ? n.delay_median_ms.toFixed(1) + " ms (p95 " + (n.delay_p95_ms !== null ? n.delay_p95_ms.toFixed(1) : "–") + " ms)"
    : (n.delay_learned_ms !== null ? n.delay_learned_ms.toFixed(1) + " ms (learned)" : "not measured yet");
  const ppsReach = reach(s.pps.reach);
  ppsReach.id = "pps-reach";
  const nmeaReach = reach(n.reach);
  nmeaReach.id = "nmea-reach";
  figures($("sources"), [
    ["PPS reach", ppsReach],
    ["PPS last pulse", age(s.pps.last_seen_age_s) + " (" + s.pps.pulses_seen + " seen, " + s.pps.pulses_missed + " missed)"],
    ["NMEA reach", nmeaReach],
    ["NMEA last epoch", age(n.last_seen_age_s) + (n.last_label ? " (" + n.last_label + ")" : "")],
    ["NMEA delay", delay],
    ["Fix", n.fix_mode + (n.fix_valid ? "" : " (not valid)")],
    ["Satellites", (n.sats_used ?? "?") + " used / " + (n.sats_visible ?? "?") + " visible"],
    ["Sentences", n.sentences + " (" + n.checksum_errors + " checksum errors)"],
    ["Receiver", s.receiver.identified
      ? s.receiver.family + ", firmware " + s.receiver.firmware
      : "unknown (not identified yet)"],
  ]);

  const tbody = $("satellites").tBodies[0];
  tbody.replaceChildren();
  const sats = [...n.satellites].sort((a, b) => (b.snr_dbhz ?? -1) - (a.snr_dbhz ?? -1));
  for (const sat of sats) {
    const tr = el("tr", { class: "sat " + (sat.used ? "used" : "unused") });
    tr.append(el("td", { class: "num" }, String(sat.prn)));
    tr.append(el("td", { class: "num" }, sat.snr_dbhz === null ? "–" : String(sat.snr_dbhz)));
    const barCell = el("td");
    const bar = el("div", { class: "bar" });
    bar.style.width = Math.min(100, ((sat.snr_dbhz ?? 0) / 55) * 100) + "%";
    barCell.append(bar);
    tr.append(barCell);
    tr.append(el("td", {}, sat.used ? "✓ used" : "–"));
    tbody.append(tr);
  }
  if (sats.length === 0) {
    const tr = el("tr");
    tr.append(el("td", { colspan: "4", class: "muted" }, "no satellites reported"));
    tbody.append(tr);
  }
  $("sky-summary").textContent = "(" + (n.sats_used ?? "?") + " used of " + (n.sats_visible ?? "?") + ")";

  $("footer").textContent = "skytimed " + s.version + " · snapshot " + s.as_of
    + " · up " + duration(s.uptime_s) + " · NTP " + s.endpoints.ntp.join(", ")
    + (s.endpoints.metrics ? " · metrics " + s.endpoints.metrics : "");
}

// The plot: offset as a line, jitter as a band around zero, over the last
// hour (or, while the daemon is younger, the time it has run, at least two
// minutes). The y scale covers the 95th percentile of |offset| and jitter with
// room to spare, so a start-up step does not flatten an hour of nanoseconds;
// clipped points are drawn at the edge and counted in the note.
function renderHistory(h) {
  const plot = $("plot");
  plot.replaceChildren();
  const W = 1000, H = 320, L = 70, R = 10, T = 10, B = 26;
  const n = h.t.length;
  if (n < 2) {
    plot.append(svg("text", { x: W / 2, y: H / 2, class: "empty", "text-anchor": "middle" }, "collecting history…"));
    $("plot-note").textContent = "";
    return;
  }
  const tEnd = h.t[n - 1];
  const steps = [30, 60, 120, 300, 600];
  const span = Math.min(3600, Math.max(120, Math.ceil((tEnd - h.t[0]) / 60) * 60));
  const step = steps.find((s) => span / s <= 8) || 600;
  const tStart = tEnd - span;
  const mags = [];
  for (let i = 0; i < n; i++) {
    if (h.t[i] >= tStart) mags.push(Math.abs(h.offset_ns[i]), h.jitter_ns[i]);
  }
  mags.sort((a, b) => a - b);
  let ymax = mags[Math.min(mags.length - 1, Math.floor(mags.length * 0.95))] * 1.5;
  if (!(ymax > 0)) ymax = 1;
  const x = (t) => L + ((t - tStart) / span) * (W - L - R);
  const y = (v) => T + (1 - (Math.max(-ymax, Math.min(ymax, v)) + ymax) / (2 * ymax)) * (H - T - B);

  for (let k = -2; k <= 2; k++) {
    const v = (k / 2) * ymax;
    plot.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: k === 0 ? "zero" : "grid" }));
    plot.append(svg("text", { x: L - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, ns(v, k !== 0)));
  }
  for (let ago = 0; ago <= span; ago += step) {
    const t = tEnd - ago;
    const label = ago === 0 ? "now" : "−" + (ago % 60 === 0 ? ago / 60 + " min" : ago + " s");
    plot.append(svg("line", { x1: x(t), x2: x(t), y1: T, y2: H - B, class: "grid" }));
    plot.append(svg("text", { x: x(t), y: H - 8, class: "axis", "text-anchor": ago === span ? "start" : (ago === 0 ? "end" : "middle") }, label));
  }

  let upper = "", lower = "", line = "", clipped = 0, drawn = 0;
  for (let i = 0; i < n; i++) {
    if (h.t[i] < tStart) continue;
    const xi = x(h.t[i]).toFixed(1);
    upper += (drawn ? "L" : "M") + xi + "," + y(h.jitter_ns[i]).toFixed(1);
    lower = "L" + xi + "," + y(-h.jitter_ns[i]).toFixed(1) + lower;
    line += (drawn ? "L" : "M") + xi + "," + y(h.offset_ns[i]).toFixed(1);
    if (Math.abs(h.offset_ns[i]) > ymax) clipped++;
    drawn++;
  }
  plot.append(svg("path", { d: upper + lower + "Z", class: "jitter" }));
  plot.append(svg("path", { d: line, class: "offset", "data-points": String(drawn) }));
  $("plot-note").textContent = "· " + drawn + " points over " + (span >= 3600 ? "the last hour" : span / 60 + " min")
    + (clipped ? " · " + clipped + " off-scale (start-up or re-acquisition)" : "");
}

// The holdover plot: the advertised error bound (log scale, left) and the
// temperature (right) over the last hour, holdover spans shaded. Shown once
// the box has a temperature sensor or has been in holdover.
function renderThermal(h) {
  const card = $("thermal-card");
  const n = h.t.length;
  const temps = (h.temperature_c || []).filter((c) => c !== null);
  const held = (h.holdover || []).some((v) => v);
  card.hidden = n < 2 || (temps.length === 0 && !held);
  if (card.hidden) return;
  const plot = $("thermal-plot");
  plot.replaceChildren();
  const W = 1000, H = 220, L = 70, R = 60, T = 10, B = 22;
  const tEnd = h.t[n - 1];
  const span = Math.min(3600, Math.max(120, tEnd - h.t[0]));
  const tStart = tEnd - span;
  const x = (t) => L + ((t - tStart) / span) * (W - L - R);
  const bounds = h.root_dispersion_ns.filter((v, i) => h.t[i] >= tStart && v > 0);
  const lo = Math.log10(Math.max(1, Math.min(...bounds)));
  const hi = Math.max(lo + 1, Math.log10(Math.max(...bounds)));
  const yb = (v) => T + (1 - (Math.log10(Math.max(1, v)) - lo) / (hi - lo)) * (H - T - B);
  for (let d = Math.ceil(lo); d <= hi; d++) {
    plot.append(svg("line", { x1: L, x2: W - R, y1: yb(10 ** d), y2: yb(10 ** d), class: "grid" }));
    plot.append(svg("text", { x: L - 6, y: yb(10 ** d) + 4, class: "axis", "text-anchor": "end" }, ns(10 ** d)));
  }
  let tmin = Math.min(...temps), tmax = Math.max(...temps);
  if (!(tmax - tmin > 0.5)) { tmin -= 0.25; tmax += 0.25; }
  const yt = (c) => T + (1 - (c - tmin) / (tmax - tmin)) * (H - T - B);
  if (temps.length) {
    for (const c of [tmin, tmax]) {
      plot.append(svg("text", { x: W - R + 6, y: yt(c) + 4, class: "axis" }, c.toFixed(1) + " °C"));
    }
  }
  let bound = "", temp = "", drawnB = 0, drawnT = 0, spanStart = null;
  for (let i = 0; i < n; i++) {
    if (h.t[i] < tStart) continue;
    const xi = x(h.t[i]).toFixed(1);
    if (h.root_dispersion_ns[i] > 0) { bound += (drawnB ? "L" : "M") + xi + "," + yb(h.root_dispersion_ns[i]).toFixed(1); drawnB++; }
    const c = (h.temperature_c || [])[i];
    if (c !== null && c !== undefined) { temp += (drawnT ? "L" : "M") + xi + "," + yt(c).toFixed(1); drawnT++; }
    const inHold = (h.holdover || [])[i] === 1;
    if (inHold && spanStart === null) spanStart = h.t[i];
    if ((!inHold || i === n - 1) && spanStart !== null) {
      plot.append(svg("rect", { x: x(spanStart), y: T, width: Math.max(1, x(h.t[i]) - x(spanStart)), height: H - T - B, class: "holdover" }));
      spanStart = null;
    }
  }
  plot.append(svg("path", { d: bound, class: "bound" }));
  plot.append(svg("path", { d: temp, class: "temperature", "data-points": String(drawnT) }));
  $("thermal-note").textContent = held ? "· holdover in the last hour" : "";
}

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

let historyDue = 0;
async function poll() {
  try {
    const s = await getJSON("api/status");
    renderStatus(s);
    if (Date.now() >= historyDue) {
      historyDue = Date.now() + 5000;
      const history = await getJSON("api/history");
      renderHistory(history);
      renderThermal(history);
    }
    $("conn").hidden = true;
    document.body.dataset.rendered = "1";
  } catch (e) {
    $("conn").hidden = false;
    $("conn").textContent = "no answer from skytimed (" + e.message + "): showing the last data received";
  }
  setTimeout(poll, 1000);
}

poll();
