// The review's timeline of the whole session: valence as stored, the segments and excluded
// stretches with their labels, and a stretch picked by dragging across it, which fills in the
// marker form's start and end (then a label, "exclude" if it should be left out, and Add).

import { t } from "./i18n.js";
import { drawMarkLabels, drawMarks } from "./segments.js";
import { $, api, clock, state } from "./util.js";

const PAGE = 10000; // frames per request (the API's largest page)

// Loads the session's stored valence once per review; markers are redrawn as they change.
export async function showReviewTimeline(review, markers) {
  const canvas = $("#review-timeline");
  const view = { times: [], valence: [], markers, drag: null };
  review.timeline = view;
  draw(view);
  let offset = 0, total = 1;
  while (offset < total) {
    const page = await api("GET", `/sessions/${review.id}/series?offset=${offset}&limit=${PAGE}`);
    if (state.review !== review) return;
    total = page.total;
    view.times.push(...page.time_s);
    view.valence.push(...page.valence);
    offset += PAGE;
  }
  draw(view);
  canvas.onpointerdown = (event) => {
    canvas.setPointerCapture(event.pointerId);
    view.drag = { from: timeAt(view, event), to: timeAt(view, event) };
    draw(view);
  };
  canvas.onpointermove = (event) => {
    if (!view.drag) return;
    view.drag.to = timeAt(view, event);
    draw(view);
  };
  canvas.onpointerup = () => {
    const drag = view.drag;
    if (!drag) return;
    const start = Math.min(drag.from, drag.to), end = Math.max(drag.from, drag.to);
    if (end - start >= 0.2) { // a click is not a stretch
      $("#review-marker-time").value = start.toFixed(1);
      $("#review-marker-end").value = end.toFixed(1);
      $("#review-pick").textContent = t("Picked {from}–{to}: give it a label, then Add.", { from: clock(start), to: clock(end) });
      $("#review-marker-label").focus();
    }
    draw(view);
  };
}

export function updateReviewTimeline(review, markers) {
  if (!review.timeline) return;
  review.timeline.markers = markers;
  draw(review.timeline);
}

function span(view) {
  const last = view.times.length ? view.times[view.times.length - 1] : 0;
  const ends = view.markers.map((m) => m.end_s ?? m.time_s);
  return Math.max(1, last, ...ends);
}

function area(canvas) {
  return { left: 4, right: canvas.width - 4, top: 2, bottom: canvas.height - 14 };
}

function timeAt(view, event) {
  const canvas = $("#review-timeline");
  const rect = canvas.getBoundingClientRect();
  const { left, right } = area(canvas);
  const px = ((event.clientX - rect.left) / rect.width) * canvas.width;
  return Math.min(span(view), Math.max(0, ((px - left) / (right - left)) * span(view)));
}

function draw(view) {
  const canvas = $("#review-timeline");
  const width = canvas.clientWidth || 300;
  if (canvas.width !== width) canvas.width = width;
  const ctx = canvas.getContext("2d");
  const { left, right, top, bottom } = area(canvas);
  const end = span(view);
  const x = (s) => left + (s / end) * (right - left);
  const y = (v) => top + ((1 - v) / 2) * (bottom - top);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const marks = { markers: view.markers };
  const box = { start: 0, left, right, top, bottom };
  drawMarks(ctx, marks, x, box, end);
  ctx.strokeStyle = "#0072B2";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  let drawing = false, previous = -Infinity;
  view.times.forEach((time, i) => {
    const v = view.valence[i];
    // No face, or more than a second without frames (a break): the line stops.
    if (v === null || time - previous > 1) drawing = false;
    previous = time;
    if (v === null) return;
    if (drawing) ctx.lineTo(x(time), y(v));
    else ctx.moveTo(x(time), y(v));
    drawing = true;
  });
  ctx.stroke();
  if (view.drag) {
    const a = x(Math.min(view.drag.from, view.drag.to)), b = x(Math.max(view.drag.from, view.drag.to));
    ctx.fillStyle = "rgba(230, 159, 0, 0.35)";
    ctx.fillRect(a, top, Math.max(1, b - a), bottom - top);
  }
  drawMarkLabels(ctx, marks, x, box, end);
  ctx.fillStyle = "#667085";
  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "alphabetic";
  ctx.fillText("0:00", left, canvas.height - 2);
  const label = clock(end);
  ctx.fillText(label, right - ctx.measureText(label).width, canvas.height - 2);
}
