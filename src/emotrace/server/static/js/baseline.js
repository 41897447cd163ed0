// The patient's baseline in the page: the live view's "relative to baseline" switch (the bars as
// calibrated labels, the timeline in baseline SDs), marking a baseline live, and setting one from
// a range in the review. The math is emotrace.sessions.baseline's, on the probabilities the
// server sends: softmax(log p - log baseline mean + log neutral reference).

import { t } from "./i18n.js";
import { $, api, clock, el, state } from "./util.js";

export const Z_RANGE = 3; // the relative timeline spans ±3 baseline SDs
const PROB_FLOOR = 1e-3; // PROB_FLOOR in sessions/baseline.py
const MIN_SD = 0.01; // MIN_SD there: below it, no SD units

// The baseline the live session is analysed against (the server's answer), and the switch.
export const relative = { baseline: null, on: false, start: null, sessionId: null };

export function calibrate(probabilities, baseline) {
  const mean = baseline.stats.mean_probabilities, reference = baseline.reference;
  const logits = {};
  let top = -Infinity;
  for (const [name, p] of Object.entries(probabilities)) {
    logits[name] = Math.log(Math.max(p, 1e-12)) - Math.log(Math.max(mean[name], PROB_FLOOR)) + Math.log(reference[name]);
    top = Math.max(top, logits[name]);
  }
  let total = 0;
  for (const name in logits) total += (logits[name] = Math.exp(logits[name] - top));
  for (const name in logits) logits[name] /= total;
  return logits;
}

function usable() {
  return relative.on && relative.baseline !== null;
}

// The patient's face as the bars show it: calibrated when the switch is on.
export function relativeFace(face) {
  if (!face || !usable() || !relative.baseline.reference) return face;
  const probabilities = calibrate(face.probabilities, relative.baseline);
  const label = Object.keys(probabilities).reduce((a, b) => (probabilities[b] > probabilities[a] ? b : a));
  return { ...face, probabilities, label };
}

// A timeline value ("v" valence, "a" arousal) as drawn: raw in [-1, 1], or in baseline SDs
// scaled so that ±Z_RANGE fills the chart.
export function timelineValue(key, value) {
  if (!usable() || value === null || value === undefined) return value;
  const spread = relative.baseline.stats[key === "v" ? "valence" : "arousal"];
  if (spread.sd < MIN_SD) return null;
  return Math.max(-1, Math.min(1, (value - spread.mean) / spread.sd / Z_RANGE));
}

export function timelineTicks() {
  if (!usable()) return [["-1", -1], ["0", 0], ["1", 1]];
  return [[`-${Z_RANGE} SD`, -1], ["0", 0], [`+${Z_RANGE} SD`, 1]];
}

function describe(b) {
  const where = b.session_name || t("a deleted session");
  return `${where} ${clock(b.start_s)}–${clock(b.end_s)} · ${t("face visible")} ${b.visible_s.toFixed(1)} s`;
}

function showLiveBaseline(message) {
  const box = $("#relative");
  box.disabled = relative.baseline === null;
  if (box.disabled) box.checked = false;
  relative.on = box.checked;
  $("#baseline-note").textContent = message !== undefined ? message
    : relative.baseline ? describe(relative.baseline) : t("No baseline yet: mark a resting stretch.");
}

// A new live view: the baseline its session is analysed against, if any.
export async function startLiveBaseline(live) {
  relative.baseline = null;
  relative.start = null;
  relative.sessionId = live.id;
  $("#baseline-end").disabled = true;
  showLiveBaseline();
  try {
    const found = await api("GET", `/sessions/${live.id}/baseline`);
    if (relative.sessionId === live.id) relative.baseline = found;
  } catch { /* 404: none yet */ }
  if (relative.sessionId === live.id) showLiveBaseline();
}

function liveTime() {
  const result = state.lastResult;
  return result ? result.time_s : null;
}

async function markBaseline(end) {
  const live = state.live;
  const now = liveTime();
  if (!live || now === null) return;
  if (!end) {
    relative.start = now;
    $("#baseline-end").disabled = false;
    showLiveBaseline(`${t("Baseline from")} ${clock(now)}…`);
    return;
  }
  if (relative.start === null) return;
  try {
    const made = await api("POST", `/sessions/${live.id}/baseline`, { start_s: relative.start, end_s: now });
    if (relative.sessionId !== live.id) return;
    relative.baseline = made;
    relative.start = null;
    $("#baseline-end").disabled = true;
    showLiveBaseline();
  } catch (exc) {
    showLiveBaseline(t("Baseline not set:") + " " + exc.message);
  }
}

// The review: which baseline the session is measured against, and a form to set one from a
// range (typed, or taken from one of the session's segments).
export async function showReviewBaseline(review, session, changed) {
  const info = $("#review-baseline-info");
  const error = $("#review-baseline-error");
  info.textContent = "";
  error.textContent = "";
  const choose = $("#review-baseline-segment");
  const segments = (session.marker_list || []).filter((m) => m.end_s !== null && m.end_s !== undefined && !m.excluded);
  choose.replaceChildren(el("option", { value: "" }, t("type the times, or take a segment")),
    ...segments.map((m) => el("option", { value: `${m.time_s} ${m.end_s}` }, `${m.label} ${clock(m.time_s)}–${clock(m.end_s)}`)));
  choose.hidden = segments.length === 0;
  choose.onchange = () => {
    if (!choose.value) return;
    const [from, to] = choose.value.split(" ");
    $("#review-baseline-start").value = Number(from).toFixed(1);
    $("#review-baseline-end").value = Number(to).toFixed(1);
  };
  // The range dragged on the review's timeline (it fills the segment form's start and end).
  $("#review-baseline-pick").onclick = () => {
    const from = $("#review-marker-time"), to = $("#review-marker-end");
    if (!from || !to || from.value === "" || to.value === "") {
      error.textContent = t("Drag across the timeline first.");
      return;
    }
    error.textContent = "";
    $("#review-baseline-start").value = from.value;
    $("#review-baseline-end").value = to.value;
  };
  $("#review-baseline-form").onsubmit = async (event) => {
    event.preventDefault();
    try {
      await api("POST", `/sessions/${review.id}/baseline`, {
        start_s: Number($("#review-baseline-start").value), end_s: Number($("#review-baseline-end").value),
      });
      if (state.review !== review) return;
      error.textContent = "";
      showReviewBaseline(review, session, changed);
      changed();
    } catch (exc) {
      if (state.review === review) error.textContent = t("Baseline not set:") + " " + exc.message;
    }
  };
  try {
    const b = await api("GET", `/sessions/${review.id}/baseline`);
    if (state.review === review) info.textContent = `${t("Measured against the baseline")}: ${describe(b)}${b.active ? "" : " (" + t("replaced since") + ")"}`;
  } catch {
    if (state.review === review) info.textContent = t("No baseline: the figures are raw.");
  }
}

function wireBaseline() {
  $("#relative").addEventListener("change", () => { relative.on = $("#relative").checked; });
  $("#baseline-start").addEventListener("click", () => markBaseline(false));
  $("#baseline-end").addEventListener("click", () => markBaseline(true));
}

if ($("#relative")) wireBaseline();
