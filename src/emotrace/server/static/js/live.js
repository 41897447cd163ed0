// The live view: frames go to the server over a WebSocket as ~640 px JPEG; the next frame is sent
// only when the previous result has come back, so nothing queues and latency stays one round trip.

import { N_, number, t } from "./i18n.js";
import { describeTimeline } from "./timeline_text.js";
import { relativeFace, startLiveBaseline } from "./baseline.js";
import { TIMELINE_S, drawBars, drawOverlay, drawTimeline } from "./live_draw.js";
import { closeSegment, restoreOpenSegment } from "./segments.js";
import { listFaces } from "./patient_select.js";
import { hideBanner, lostLive, showParked, takeOverQuestion } from "./resume.js";
import { $, api, clock, el, remember, show, state } from "./util.js";
import { WorkerSocket, canCaptureInWorker } from "./worker_socket.js";

export const FRAME_WIDTH = 640;

export const JPEG_QUALITY = 0.8;

export const MIN_FRAME_INTERVAL_MS = 66; // at most ~15 frames/s: enough for emotions, spares the CPU

// Stored in the page's language (t() where the buttons are made).
export const PRESETS = [
  ["1", N_("topic change")],
  ["2", N_("exercise start")],
  ["3", N_("exercise end")],
  ["4", N_("strong reaction")],
];

// The page tells the server it is there even while paused (every "heartbeat_s" of the server's
// "ready"): a session that gets no frame and no message for 2 minutes ends as interrupted.
export const HEARTBEAT_S = 20;

export function startLive(session, source, media) {
  const video = $("#video");
  const live = {
    id: session.id, name: session.name, patient: session.patient, source,
    stream: media.stream, video, ws: null,
    inflight: false, paused: false, stopped: false, sentAt: 0, lastSend: 0,
    ticks: [], history: [], markers: [], patientTrack: null, heartbeat: null,
  };
  state.live = live;
  clearLiveView();
  startLiveBaseline(live);
  // Video files are analysed by the server (file_session.js), not streamed from here.
  video.removeAttribute("src");
  video.autoplay = true;
  video.srcObject = live.stream;
  // A shared window that the user stops sharing ends the session like Stop.
  live.stream.getVideoTracks()[0].addEventListener("ended", () => { if (!live.stopped) stopLive(false); });
  connect(live);
  video.play().catch(() => {});
}

// A live view shows one session: nothing of the previous one (box, bars, face, frames/s,
// timeline, markers) until this one's results arrive.
export function clearLiveView() {
  state.lastResult = null;
  $("#marker-log").replaceChildren();
  $("#marker-text").value = ""; // text left there (Escape) belonged to the previous session
  restoreOpenSegment(state.live);
  $("#fps").textContent = t("– frames/s");
  const indicator = $("#face-ind");
  indicator.textContent = t("No face yet");
  indicator.className = "pill";
  $("#patient-label").textContent = "";
  describeTimeline([], [], true);
  $("#bars").replaceChildren();
  $("#patient-choice").textContent = t("patient: largest face");
  listFaces(null, null);
  $("#pause").textContent = t("Pause");
  for (const canvas of [$("#overlay"), $("#timeline")]) {
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  }
}

// Close codes of the server's live socket (server/websocket.py).
export const LIVE_ELSEWHERE = 4409, TAKEN_OVER = 4410;

export function connect(live) {
  setStatus(t("connecting"), "");
  // A take-over the clinician agreed to (resume.js) is asked for once, by this connection.
  const takeOver = state.takeOver === live.id;
  state.takeOver = null;
  const query = takeOver ? "?take_over=1" : "";
  const url = `ws://${location.host}/api/v1/sessions/${live.id}/live${query}`;
  // A camera or a shared screen is captured, encoded and sent by a worker where the browser can
  // (capture_worker.js): the page of a background tab is throttled, a worker is not.
  live.inWorker = canCaptureInWorker(live.stream);
  const ws = live.inWorker
    ? new WorkerSocket(url, live.stream.getVideoTracks()[0],
      { maxWidth: FRAME_WIDTH, quality: JPEG_QUALITY, minIntervalMs: MIN_FRAME_INTERVAL_MS })
    : new WebSocket(url);
  ws.binaryType = "arraybuffer";
  if (live.inWorker) ws.onsent = () => { live.lastSend = performance.now(); };
  live.ws = ws;
  live.ready = false;
  ws.onmessage = (event) => onMessage(live, JSON.parse(event.data));
  ws.onclose = (event) => {
    clearInterval(live.heartbeat);
    if (live.ws !== ws || live.stopped) return;
    live.inflight = false;
    setStatus(t("disconnected"), "off");
    if (event.code === LIVE_ELSEWHERE) {
      // Another page streams into it (its state changed since this tab looked): ask first.
      if (confirm(takeOverQuestion(live))) {
        state.takeOver = live.id;
        connect(live);
      } else {
        lostLive(live, "");
      }
    } else if (event.code === TAKEN_OVER) {
      lostLive(live, "taken_over");
    } else {
      // The server kept everything received and marked the session interrupted (or refused the
      // socket: the parked view finds out why, e.g. complete, or a server with a new token).
      lostLive(live, live.ready ? "lost" : "");
    }
  };
}

export function setStatus(text, kind) {
  const pill = $("#live-status");
  pill.textContent = text;
  pill.className = "pill " + (kind || "");
}

export function onMessage(live, message) {
  if (message.type === "ready") {
    live.ready = true;
    clearInterval(live.heartbeat);
    const ws = live.ws;
    // The worker beats itself: a background page's timers may fire once a minute.
    if (!live.inWorker) live.heartbeat = setInterval(() => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "heartbeat" }));
    }, 1000 * (message.heartbeat_s || HEARTBEAT_S));
    setStatus(message.resumed ? t("recording (resumed)") : t("recording"), "on");
    hideBanner();
    sendFrame(live);
  } else if (message.type === "result" || message.type === "error") {
    live.inflight = false;
    if (message.type === "result") onResult(live, message);
    scheduleNext(live);
  } else if (message.type === "finished") {
    finishLive(live);
  }
}

export function scheduleNext(live) {
  if (live.paused || live.stopped || live.inWorker) return;
  const wait = Math.max(0, MIN_FRAME_INTERVAL_MS - (performance.now() - live.lastSend));
  setTimeout(() => sendFrame(live), wait);
}

export const grab = document.createElement("canvas");

export function sendFrame(live) {
  if (live.inWorker || live !== state.live || live.paused || live.stopped || live.inflight) return;
  if (!live.ws || live.ws.readyState !== WebSocket.OPEN) return;
  const video = live.video;
  if (!video.videoWidth) {
    setTimeout(() => sendFrame(live), 100);
    return;
  }
  const width = Math.min(FRAME_WIDTH, video.videoWidth);
  const height = Math.round((video.videoHeight * width) / video.videoWidth);
  grab.width = width;
  grab.height = height;
  grab.getContext("2d").drawImage(video, 0, 0, width, height);
  live.inflight = true;
  live.lastSend = performance.now();
  const time = NaN; // cameras and screens
  grab.toBlob((jpeg) => {
    const header = new ArrayBuffer(8);
    new DataView(header).setFloat64(0, time, true); // NaN: "now" on the server's clock
    if (live.ws.readyState === WebSocket.OPEN) live.ws.send(new Blob([header, jpeg]));
    else live.inflight = false;
  }, "image/jpeg", JPEG_QUALITY);
}

export function onResult(live, result) {
  state.lastResult = result;
  const now = performance.now();
  live.resultAt = now; // the session's clock between results (segments.sessionNow)
  live.ticks.push(now);
  while (live.ticks.length > 20) live.ticks.shift();
  const span = (live.ticks[live.ticks.length - 1] - live.ticks[0]) / 1000;
  const fps = span > 0 ? (live.ticks.length - 1) / span : 0;
  $("#fps").textContent = t("{fps} frames/s · {ms} ms", { fps: number(fps, 1), ms: Math.round(now - live.lastSend) });
  // A crowded frame was classified by the cheaper model: say so while it lasts (a live region,
  // so set only when the text changes).
  const crowd = $("#crowd-note");
  const crowdText = result.crowd_model
    ? t("{n} faces: the {model} model is classifying", { n: result.faces.length, model: result.crowd_model })
    : "";
  if (crowd.textContent !== crowdText) crowd.textContent = crowdText;
  crowd.hidden = !crowdText;
  const patient = result.patient === null ? null : result.faces[result.patient];
  const indicator = $("#face-ind");
  // Both are live regions: announced when they change, so set only then, not every frame.
  const seen = patient ? t("Face visible") : t("No face");
  if (indicator.textContent !== seen) indicator.textContent = seen;
  indicator.className = "pill " + (patient ? "on" : "off");
  const shown = relativeFace(patient); // calibrated to the baseline when switched so
  const label = shown ? shown.label : "";
  if ($("#patient-label").textContent !== t(label)) $("#patient-label").textContent = t(label);
  drawBars(shown);
  drawOverlay(result);
  listFaces(result, live.patientTrack);
  live.history.push({ t: result.time_s, v: result.valence, a: result.arousal, label: patient ? patient.label : null });
  while (live.history.length && live.history[0].t < result.time_s - TIMELINE_S) live.history.shift();
  drawTimeline(live, result.time_s);
  describeTimeline(live.history, live.markers);
}

export function choosePatient(event) {
  const live = state.live, result = state.lastResult;
  if (!live || !result || !live.ws) return;
  const canvas = $("#overlay");
  const rect = canvas.getBoundingClientRect();
  const scale = canvas.width / result.width;
  const px = (event.clientX - rect.left) / scale, py = (event.clientY - rect.top) / scale;
  const hit = result.faces.find((f) => px >= f.box.x && px <= f.box.x + f.box.w && py >= f.box.y && py <= f.box.y + f.box.h);
  followTrack(hit && hit.track_id >= 0 ? hit.track_id : null, t("clicked"));
}

// The patient is the face of this track from now on (null: the largest face again); by a click
// on the video or, from the keyboard, the "Follow" list.
export function followTrack(track, how) {
  const live = state.live;
  if (!live || !live.ws) return;
  live.patientTrack = track;
  live.ws.send(JSON.stringify({ type: "patient", track_id: track }));
  $("#patient-choice").textContent = track === null ? t("patient: largest face") : t("patient: face #{track} ({how})", { track, how });
  $("#patient-select").value = track === null ? "" : String(track);
}

export async function addMarker(label) {
  const live = state.live;
  if (!live || live.stopped || !label.trim()) return;
  // The server stamps "now" on receipt (the moment of the click, give or take a few ms).
  const body = { label: label.trim() };
  try {
    const marker = await api("POST", `/sessions/${live.id}/markers`, body);
    live.markers.push(marker);
    $("#marker-log").prepend(el("li", {}, `${clock(marker.time_s)} ${marker.label}`));
  } catch (exc) {
    $("#marker-log").prepend(el("li", { class: "error" }, "marker not saved: " + exc.message));
  }
}

export function togglePause() {
  const live = state.live;
  if (!live || live.stopped || !live.ws) return;
  live.paused = !live.paused;
  live.ws.send(JSON.stringify({ type: live.paused ? "pause" : "resume" }));
  $("#pause").textContent = live.paused ? t("Resume") : t("Pause");
  setStatus(live.paused ? t("paused") : t("recording"), live.paused ? "warn" : "on");
  if (!live.paused) scheduleNext(live);
}

export async function stopLive(leaving) {
  const live = state.live;
  if (!live || live.stopped) return;
  live.stopped = true;
  await closeSegment(live); // a segment open at Stop ends there
  if (live.ws && live.ws.readyState === WebSocket.OPEN) {
    live.ws.send(JSON.stringify({ type: "stop" }));
    // finishLive runs when the server confirms; do not wait when navigating away.
    if (!leaving) return;
  } else {
    try { await api("POST", `/sessions/${live.id}/finish`); } catch { /* already finished */ }
  }
  finishLive(live, leaving);
}

export function releaseMedia(live) {
  clearInterval(live.heartbeat);
  if (live.stream) live.stream.getTracks().forEach((t) => t.stop());
  live.video.srcObject = null;
  live.video.removeAttribute("src");
}

export function finishLive(live, leaving) {
  live.stopped = true;
  releaseMedia(live);
  if (live.ws) live.ws.close();
  if (state.live === live) state.live = null;
  remember(null);
  setStatus(t("finished"), "");
  if (!leaving) location.hash = `#/review/${live.id}`;
}

export async function showLive(id) {
  show("view-live");
  const live = state.live;
  if (live && live.id === id) {
    $("#resume-hint").hidden = true;
    $("#live-title").textContent = `${live.patient} · ${live.name}`;
    $("#pause").textContent = live.paused ? t("Resume") : t("Pause");
    return;
  }
  // Not streaming here (a reload, a link, a session another tab records): the session as the
  // server has it, with Resume (or Take over) and Finish.
  if (!live) clearLiveView();
  showParked(id);
}
