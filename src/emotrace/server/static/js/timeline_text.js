// The live timeline in words (WCAG 1.1.1: a text alternative for the canvas): a one-line summary
// that screen readers reach through the canvas's aria-describedby, and a table of 10-second bins
// under "The timeline as a table". Rebuilt every few seconds, not every frame: a screen reader
// user reads it when they want, and the page stays cheap.

import { number, t } from "./i18n.js";
import { $, clock, el } from "./util.js";

const BIN_S = 10;
const EVERY_MS = 2000;
let lastBuilt = 0;

function mean(values) {
  const known = values.filter((v) => v !== null && v !== undefined && !Number.isNaN(v));
  return known.length ? known.reduce((a, b) => a + b, 0) / known.length : null;
}

function signed(value) {
  return value === null ? "–" : (value >= 0 ? "+" : "") + number(value, 2);
}

// history: [{t, v, a, label}] (label may be missing); markers: [{time_s, label}].
export function describeTimeline(history, markers, force = false) {
  const now = performance.now();
  if (!force && now - lastBuilt < EVERY_MS) return;
  lastBuilt = now;
  const summary = $("#timeline-summary");
  if (!history.length) {
    lastBuilt = 0; // the first result of a session is described at once
    summary.textContent = t("No results yet.");
    $("#timeline-table tbody").replaceChildren();
    return;
  }
  const start = history[0].t, end = history[history.length - 1].t;
  const v = mean(history.map((p) => p.v)), a = mean(history.map((p) => p.a));
  const seen = history.filter((p) => p.v !== null && p.v !== undefined).length;
  summary.textContent = t(
    "From {start} to {end}: mean valence {valence}, mean arousal {arousal} (-1 to +1), " +
    "face visible in {visible}% of results, markers: {markers}.",
    {
      start: clock(start), end: clock(end), valence: signed(v), arousal: signed(a),
      visible: Math.round((100 * seen) / history.length), markers: markers.length,
    });
  const rows = [];
  for (let from = Math.floor(start / BIN_S) * BIN_S; from <= end; from += BIN_S) {
    const points = history.filter((p) => p.t >= from && p.t < from + BIN_S);
    if (!points.length) continue;
    const counts = {};
    for (const p of points) if (p.label) counts[p.label] = (counts[p.label] || 0) + 1;
    const top = Object.entries(counts).sort((x, y) => y[1] - x[1])[0];
    rows.push(el("tr", {},
      el("td", {}, clock(from)),
      el("td", {}, signed(mean(points.map((p) => p.v)))),
      el("td", {}, signed(mean(points.map((p) => p.a)))),
      el("td", {}, top ? t(top[0]) : t("no face"))));
  }
  $("#timeline-table tbody").replaceChildren(...rows);
}
