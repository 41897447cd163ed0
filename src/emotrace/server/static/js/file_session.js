// File sessions: the page uploads the video and the server analyses it (any codec OpenCV/FFmpeg
// reads, HEVC from phones included); this view shows the upload, then the analysis's progress,
// speed, time left and the patient's valence and arousal so far, with Cancel; at the end, the
// review. The analysis runs on the server, so a reload (or another tab) just follows it again.

import { number, t } from "./i18n.js";
import { $, api, clock, describeError, show, state } from "./util.js";

export const POLL_MS = 500;

// A session made from a video file: analysed by the server, never resumed.
export const isFileSession = (s) => Boolean(s.settings && s.settings.source === "file");

export const isAnalysing = (s) => isFileSession(s) && s.status === "recording";

// The view follows one session at a time; a newer visit (or another view) ends the older poll.
let visit = 0;
const timeline = { id: null, points: [], duration: null, last: -1 };

function setStatus(text, kind) {
  const pill = $("#file-status");
  pill.textContent = text;
  pill.className = "pill " + (kind || "");
}

function clearFileView(title) {
  $("#file-title").textContent = title;
  setStatus(t("analysing"), "on");
  $("#file-progress").value = 0;
  $("#file-progress").removeAttribute("max");
  $("#file-done").textContent = "";
  $("#file-speed").textContent = "";
  $("#file-face").textContent = "";
  $("#file-error").textContent = "";
  $("#file-after").hidden = true;
  $("#file-cancel").hidden = false;
  $("#file-cancel").disabled = false;
  Object.assign(timeline, { id: null, points: [], duration: null, last: -1 });
  drawFileTimeline();
}

// Upload the file as the request body (XMLHttpRequest: fetch reports no upload progress), with
// onProgress(fraction sent); the created session, or an Error with the server's one sentence.
export function uploadFile(fields, file, onProgress) {
  const query = new URLSearchParams({ patient: fields.patient, consent: String(fields.consent) });
  if (fields.name) query.set("name", fields.name);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1/file-sessions?${query}`);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      let data = {};
      try { data = JSON.parse(xhr.responseText); } catch { /* not JSON: the status says it */ }
      if (xhr.status === 201) resolve(data);
      else reject(new Error(describeError(data.detail) || data.error || `HTTP ${xhr.status}`));
    };
    xhr.onerror = () => reject(new Error(t("The upload failed: the server could not be reached.")));
    xhr.send(file);
  });
}

// An analysis this view cannot follow: one sentence.
function showError(message) {
  setStatus(t("not analysed"), "off");
  $("#file-error").textContent = message;
  $("#file-cancel").hidden = true;
  $("#file-done").textContent = "";
}

export async function showFile(id) {
  show("view-file");
  const mine = ++visit;
  const current = () => mine === visit && !$("#view-file").hidden;
  if (timeline.id !== id) clearFileView(t("Video file"));
  timeline.id = id;
  try {
    const s = await api("GET", `/sessions/${id}`);
    if (current()) $("#file-title").textContent = `${s.patient} · ${s.name}`;
  } catch (exc) {
    if (current()) showError(exc.message);
    return;
  }
  while (current()) {
    let progress;
    try {
      progress = await api("GET", `/sessions/${id}/analysis?since=${timeline.last}`);
    } catch (exc) {
      if (!current()) return;
      // Not analysed by this server since it started (a restart): the session says the rest.
      const s = await api("GET", `/sessions/${id}`).catch(() => null);
      if (s && s.status !== "recording") location.hash = `#/review/${id}`;
      else showError(exc.message);
      return;
    }
    if (!current()) return;
    render(progress);
    if (progress.state === "complete") {
      location.hash = `#/review/${id}`;
      return;
    }
    if (progress.state !== "analysing") return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function render(p) {
  state.fileProgress = p; // the last progress shown: for tests and curious users
  for (const point of p.points) {
    if (point.frame <= timeline.last) continue; // a cancel's answer repeats every point
    timeline.points.push(point);
    timeline.last = point.frame;
  }
  timeline.duration = p.duration_s;
  const bar = $("#file-progress");
  if (p.fraction === null) bar.removeAttribute("value");
  else { bar.max = 1; bar.value = p.fraction; }
  const pct = p.fraction === null ? "" : ` (${Math.floor(100 * p.fraction)}%)`;
  const of = p.duration_s === null ? "" : " " + t("of {total}", { total: clock(p.duration_s) });
  const frames = p.frames_total === null ? number(p.frames_done) : `${number(p.frames_done)} / ${number(p.frames_total)}`;
  $("#file-done").textContent = t("{done}{of} of video analysed{pct} · {frames} frames",
    { done: clock(p.video_s), of, pct, frames });
  const left = p.eta_s === null ? "" : " · " + t("about {left} left", { left: clock(p.eta_s) });
  $("#file-speed").textContent = `${number(p.fps, 1)} ${t("frames/s")}${left}`;
  const seen = timeline.points.filter((q) => q.valence !== null).length;
  if (timeline.points.length) {
    $("#file-face").textContent = t("Face visible in {pct}% of the frames so far",
      { pct: Math.round((100 * seen) / timeline.points.length) });
  }
  drawFileTimeline();
  if (p.state === "analysing") return;
  $("#file-cancel").hidden = true;
  $("#file-after").hidden = false;
  $("#file-review").href = `#/review/${p.session_id}`;
  if (p.state === "complete") setStatus(t("complete"), "on");
  else if (p.state === "cancelled") {
    setStatus(t("cancelled"), "warn");
    $("#file-error").textContent = t("Cancelled: the frames analysed until then are kept.");
  } else {
    setStatus(t("failed"), "off");
    $("#file-error").textContent = p.error || t("The analysis failed; the frames analysed until then are kept.");
  }
}

export async function cancelFile() {
  const id = timeline.id;
  if (id === null) return;
  $("#file-cancel").disabled = true;
  setStatus(t("cancelling"), "warn");
  try {
    render(await api("POST", `/sessions/${id}/analysis/cancel`));
  } catch (exc) {
    $("#file-error").textContent = exc.message;
    $("#file-cancel").disabled = false;
  }
}

// Valence (blue) and arousal (amber) over the whole video, -1..1; gaps where no face was seen.
export function drawFileTimeline() {
  const canvas = $("#file-timeline");
  const width = canvas.clientWidth || 600, height = canvas.height;
  if (canvas.width !== width) canvas.width = width;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  ctx.strokeStyle = "#e3e6ea";
  ctx.beginPath();
  ctx.moveTo(0, height / 2);
  ctx.lineTo(width, height / 2);
  ctx.stroke();
  const points = timeline.points;
  const end = timeline.duration || (points.length ? points[points.length - 1].time_s : 0) || 1;
  for (const [key, color] of [["valence", "#0072B2"], ["arousal", "#B87700"]]) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let drawing = false;
    for (const point of points) {
      if (point[key] === null) { drawing = false; continue; }
      const x = (point.time_s / end) * width, y = height / 2 - (point[key] * (height - 10)) / 2;
      if (drawing) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      drawing = true;
    }
    ctx.stroke();
  }
}
