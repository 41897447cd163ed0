// What the live view draws: the emotion bars, the boxes over the video and the timeline.

import { timelineTicks, timelineValue } from "./baseline.js";
import { drawMarkLabels, drawMarks } from "./segments.js";
import { t } from "./i18n.js";
import { $, clock, el, state } from "./util.js";

export const TIMELINE_S = 300;

// More than this between two results is a break in the recording (paused, a reload, a lost
// connection): the timeline shows a band there and never draws a line across it. The same
// 1 s as the server's analytics (emotrace.sessions.coverage.MAX_GAP_S).
export const BREAK_S = 1.0;
export const BREAK_FILL = "#d5dde8";

// [from, to] of each break between consecutive history points.
export function recordingBreaks(history) {
  const breaks = [];
  for (let i = 1; i < history.length; i++) {
    if (history[i].t - history[i - 1].t > BREAK_S) breaks.push([history[i - 1].t, history[i].t]);
  }
  return breaks;
}

export function drawBars(face) {
  const bars = $("#bars");
  if (!face) {
    for (const fill of bars.querySelectorAll(".fill")) fill.style.width = "0";
    for (const pct of bars.querySelectorAll(".pct")) pct.textContent = "–";
    return;
  }
  const entries = Object.entries(face.probabilities);
  if (bars.children.length !== entries.length) {
    bars.replaceChildren(...entries.map(([name]) =>
      el("div", { class: "bar", "data-class": name },
        el("span", {}, t(name)), el("div", { class: "track" }, el("div", { class: "fill" })),
        el("span", { class: "pct" }, ""))));
  }
  for (const [name, p] of entries) {
    const bar = bars.querySelector(`[data-class="${name}"]`);
    bar.classList.toggle("top", name === face.label);
    bar.querySelector(".fill").style.width = (100 * p).toFixed(1) + "%";
    bar.querySelector(".pct").textContent = Math.round(100 * p) + "%";
  }
}

export function drawOverlay(result) {
  const canvas = $("#overlay");
  const video = $("#video");
  const width = video.clientWidth, height = video.clientHeight;
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  const scale = width / result.width;
  ctx.font = "600 15px system-ui, sans-serif";
  ctx.textBaseline = "bottom";
  for (const face of result.faces) {
    const { x, y, w, h } = face.box;
    const color = face.patient ? "#2ecc71" : "#cfd8e3";
    ctx.lineWidth = face.patient ? 3 : 2;
    ctx.strokeStyle = color;
    ctx.strokeRect(x * scale, y * scale, w * scale, h * scale);
    const text = `${t(face.label)} ${Math.round(100 * face.confidence)}%`;
    const tw = ctx.measureText(text).width + 10;
    const ty = Math.max(20, y * scale);
    ctx.fillStyle = color;
    ctx.fillRect(x * scale - 1, ty - 20, tw, 20);
    ctx.fillStyle = "#0d1117";
    ctx.fillText(text, x * scale + 4, ty - 2);
    if (showPose()) drawPose(ctx, face, { x: x * scale, y: y * scale, w: w * scale, h: h * scale });
  }
}

// Head orientation on demand ("Head orientation" in the live view, remembered): the angles under
// each box, and a face turned beyond the analytics' limits (AnalyticsConfig.facing_yaw_deg and
// facing_pitch_deg) marked as too turned for its expression to be trusted.
export const FACING_YAW_DEG = 25;
export const FACING_PITCH_DEG = 20;
const POSE_KEY = "emotrace.pose";

export function showPose() {
  const toggle = $("#show-pose");
  return Boolean(toggle && toggle.checked);
}

export function tooTurned(face) {
  return face.yaw !== null && face.yaw !== undefined && face.pitch !== null &&
    face.pitch !== undefined &&
    (Math.abs(face.yaw) >= FACING_YAW_DEG || Math.abs(face.pitch) >= FACING_PITCH_DEG);
}

function drawPose(ctx, face, box) {
  ctx.save();
  ctx.font = "600 13px system-ui, sans-serif";
  ctx.textBaseline = "top";
  const lines = [];
  if (face.yaw === null || face.yaw === undefined) lines.push(t("head orientation unknown"));
  else {
    const deg = (v) => `${Math.round(v)}°`;
    lines.push(t("yaw {yaw} · pitch {pitch} · roll {roll}", { yaw: deg(face.yaw), pitch: deg(face.pitch), roll: deg(face.roll) }));
    if (tooTurned(face)) lines.push(t("too turned to trust"));
  }
  const turned = tooTurned(face);
  if (turned) { // a dashed amber box over the face's own: visible whatever the face's colour
    ctx.strokeStyle = "#E69F00";
    ctx.lineWidth = 3;
    ctx.setLineDash([6, 4]);
    ctx.strokeRect(box.x - 4, box.y - 4, box.w + 8, box.h + 8);
    ctx.setLineDash([]);
  }
  const left = box.x;
  let y = box.y + box.h + 4;
  for (const line of lines) {
    const tw = ctx.measureText(line).width + 10;
    ctx.fillStyle = turned ? "#E69F00" : "rgba(13, 17, 23, 0.75)";
    ctx.fillRect(left - 1, y, tw, 18);
    ctx.fillStyle = turned ? "#0d1117" : "#ffffff";
    ctx.fillText(line, left + 4, y + 2);
    y += 20;
  }
  ctx.restore();
}

// The toggle redraws the last result at once (no need to wait for the next frame) and is
// remembered for the next session.
const poseToggle = $("#show-pose");
if (poseToggle) {
  poseToggle.checked = localStorage.getItem(POSE_KEY) === "1";
  poseToggle.addEventListener("change", () => {
    localStorage.setItem(POSE_KEY, poseToggle.checked ? "1" : "0");
    if (state.lastResult) drawOverlay(state.lastResult);
  });
}

export function drawTimeline(live, now) {
  const canvas = $("#timeline");
  const width = canvas.clientWidth || 600, height = canvas.height;
  if (canvas.width !== width) canvas.width = width;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  const left = 30, right = width - 8, top = 8, bottom = height - 18;
  const start = Math.max(0, now - TIMELINE_S), end = Math.max(now, start + 10);
  const x = (t) => left + ((t - start) / (end - start)) * (right - left);
  const y = (v) => top + ((1 - v) / 2) * (bottom - top);
  ctx.strokeStyle = "#e3e6ea";
  ctx.fillStyle = "#667085";
  ctx.font = "11px system-ui, sans-serif";
  for (const [text, v] of timelineTicks()) { // raw [-1, 1], or baseline SDs
    ctx.beginPath(); ctx.moveTo(left, y(v)); ctx.lineTo(right, y(v)); ctx.stroke();
    ctx.fillText(text, 2, y(v) + 4);
  }
  ctx.fillText(clock(start), left, height - 4);
  ctx.fillText(clock(end), right - 34, height - 4);
  drawMarks(ctx, live, x, { start, left, right, top, bottom }, now);
  live.breaks = recordingBreaks(live.history);
  ctx.fillStyle = BREAK_FILL;
  for (const [a, b] of live.breaks) {
    if (b < start) continue;
    ctx.fillRect(x(Math.max(a, start)), top, x(b) - x(Math.max(a, start)), bottom - top);
  }
  for (const [key, color] of [["v", "#0072B2"], ["a", "#B87700"]]) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let drawing = false, last = -Infinity;
    for (const point of live.history) {
      const value = timelineValue(key, point[key]);
      const across = point.t - last > BREAK_S;
      last = point.t;
      if (value === null || value === undefined) { drawing = false; continue; }
      if (drawing && !across) ctx.lineTo(x(point.t), y(value));
      else ctx.moveTo(x(point.t), y(value));
      drawing = true;
    }
    ctx.stroke();
  }
  ctx.lineWidth = 1;
  drawMarkLabels(ctx, live, x, { start, left, right, top, bottom }, now);
}
