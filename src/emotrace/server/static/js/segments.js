// Segments in the live view and marker labels on its timeline. "s" opens a segment (labelled
// with the text in the marker field, or "segment"), "s" again closes and stores it, Escape
// cancels it; Stop closes an open one first. An open segment outlives a reload or a lost
// connection: the live view that resumes the session shows it open. Excluded stretches (set in
// the review) are hatched.

import { t } from "./i18n.js";
import { $, api, clock, el, state } from "./util.js";

// The session's clock (seconds since its start, the server's): the last result's time (when the
// server began analysing its frame), the analysis time, and what has passed since the answer
// arrived, so a segment's bounds are those of the key presses give or take the network's delay
// (a point marker is stamped by the server on arrival).
export function sessionNow(live) {
  const result = state.lastResult;
  if (!result || live.resultAt === undefined) return 0;
  return result.time_s + (result.server_ms || 0) / 1000 + (performance.now() - live.resultAt) / 1000;
}

const OPEN_KEY = "emotrace.openSegment";

function keep(live) {
  try {
    if (live.openSegment) localStorage.setItem(OPEN_KEY, JSON.stringify({ id: live.id, ...live.openSegment }));
    else localStorage.removeItem(OPEN_KEY);
  } catch { /* no storage: the open segment lives in this page only */ }
}

// A live view starts: its session's segment left open by an earlier page is open again.
export function restoreOpenSegment(live) {
  let kept = null;
  try { kept = JSON.parse(localStorage.getItem(OPEN_KEY) || "null"); } catch { kept = null; }
  if (live && !live.openSegment && kept && kept.id === live.id) live.openSegment = { start: kept.start, label: kept.label };
  showOpenSegment(live);
}

export function toggleSegment() {
  const live = state.live;
  if (!live || live.stopped) return;
  if (live.openSegment) return closeSegment(live);
  const field = $("#marker-text");
  const label = field.value.trim() || t("segment");
  field.value = "";
  live.openSegment = { start: sessionNow(live), label };
  keep(live);
  showOpenSegment(live);
}

export function cancelSegment() {
  const live = state.live;
  if (!live || !live.openSegment) return;
  live.openSegment = null;
  keep(live);
  showOpenSegment(live);
}

// Stores the open segment [start, now) and logs it; a refusal is logged, never thrown.
export async function closeSegment(live) {
  const open = live.openSegment;
  if (!open) return;
  live.openSegment = null;
  showOpenSegment(live);
  const body = { label: open.label, time_s: open.start, end_s: Math.max(sessionNow(live), open.start + 0.1) };
  try {
    const segment = await api("POST", `/sessions/${live.id}/markers`, body);
    if (!live.openSegment) keep(live); // stored: forget it (kept while unsaved, for a resume)
    live.markers.push(segment);
    $("#marker-log").prepend(el("li", {}, `${clock(segment.time_s)}–${clock(segment.end_s)} ${segment.label}`));
  } catch (exc) {
    $("#marker-log").prepend(el("li", { class: "error" }, t("segment not saved: ") + exc.message));
  }
}

export function showOpenSegment(live) {
  const note = $("#segment-open");
  const open = live && live.openSegment;
  note.hidden = !open;
  note.textContent = open
    ? t("Segment open since {time}: {label}. Press s to close it, Escape to cancel.", { time: clock(open.start), label: open.label })
    : "";
}

let hatch = null;

// A diagonal red-brown hatch, as the report draws excluded stretches.
function excludedFill(ctx) {
  if (!hatch) {
    const tile = document.createElement("canvas");
    tile.width = tile.height = 8;
    const c = tile.getContext("2d");
    c.fillStyle = "#fbe9e2";
    c.fillRect(0, 0, 8, 8);
    c.strokeStyle = "#A63D17";
    c.lineWidth = 2;
    c.beginPath(); c.moveTo(0, 8); c.lineTo(8, 0); c.stroke();
    hatch = tile;
  }
  return ctx.createPattern(hatch, "repeat");
}

const ROW_PX = 13, MAX_ROWS = 3;

function marksOf(live, now) {
  const marks = (live.markers || []).map((m) => ({ ...m }));
  if (live.openSegment) marks.push({ time_s: live.openSegment.start, end_s: now, label: live.openSegment.label + " …" });
  return marks.sort((a, b) => a.time_s - b.time_s);
}

// Markers (dashed lines), segments (bands; the open one up to now) and excluded stretches
// (hatched), under the lines.
export function drawMarks(ctx, live, x, area, now) {
  const { start, left, right, top, bottom } = area;
  const marks = marksOf(live, now);
  ctx.save();
  for (const m of marks) {
    if ((m.end_s ?? m.time_s) < start) continue;
    const x0 = Math.max(left, x(m.time_s));
    if (m.end_s === null || m.end_s === undefined) {
      ctx.strokeStyle = "#767676"; // --marker: 4.5:1 on white
      ctx.setLineDash([3, 3]);
      ctx.beginPath(); ctx.moveTo(x0, top); ctx.lineTo(x0, bottom); ctx.stroke();
      ctx.setLineDash([]);
    } else {
      const x1 = Math.min(right, x(m.end_s));
      ctx.fillStyle = m.excluded ? excludedFill(ctx) : "rgba(0, 114, 178, 0.12)";
      ctx.fillRect(x0, top, Math.max(1, x1 - x0), bottom - top);
    }
  }
  ctx.restore();
}

// Their labels, over the lines, in up to three rows at the top: a label that finds no free row
// is shortened to the room it has ("…"), never drawn over another.
export function drawMarkLabels(ctx, live, x, area, now) {
  const { start, left, right, top } = area;
  const marks = marksOf(live, now);
  ctx.save();
  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "top";
  const ends = new Array(MAX_ROWS).fill(-Infinity);
  for (const m of marks) {
    if ((m.end_s ?? m.time_s) < start) continue;
    const x0 = Math.max(left, x(m.time_s)) + 2;
    const x1 = m.end_s === null || m.end_s === undefined ? x0 : Math.min(right, x(m.end_s));
    let row = ends.findIndex((end) => end + 6 <= x0);
    const free = row >= 0;
    if (!free) row = ends.indexOf(Math.min(...ends));
    const lx = free ? x0 : ends[row] + 6;
    const text = fit(ctx, (m.excluded ? t("excluded") + ": " : "") + m.label, (free ? right : x1) - lx);
    ends[row] = Math.max(ends[row], x1, lx + (text ? ctx.measureText(text).width : 0));
    if (!text) continue;
    const y = top + 1 + row * ROW_PX;
    ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
    ctx.fillRect(lx - 1, y - 1, ctx.measureText(text).width + 2, ROW_PX - 1);
    ctx.fillStyle = "#1f2328";
    ctx.fillText(text, lx, y);
  }
  ctx.restore();
}

function fit(ctx, text, room) {
  if (ctx.measureText(text).width <= room) return text;
  let cut = text.length - 1;
  while (cut > 0 && ctx.measureText(text.slice(0, cut) + "…").width > room) cut--;
  return cut > 0 ? text.slice(0, cut) + "…" : "";
}
