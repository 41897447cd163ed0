// emotrace's page: sessions, new session, live view, review. Plain JavaScript, no build step,
// nothing loaded from outside this server (the Content-Security-Policy enforces it).
//
// Frames go to the server over a WebSocket as ~640 px JPEG; the next frame is sent only when the
// previous result has come back, so nothing queues and latency stays one round trip.
"use strict";

const $ = (selector) => document.querySelector(selector);
const FRAME_WIDTH = 640;
const JPEG_QUALITY = 0.8;
const MIN_FRAME_INTERVAL_MS = 66; // at most ~15 frames/s: enough for emotions, spares the CPU
const FILE_STEP_S = 0.1; // a video file is analysed every 0.1 s of its own time
const TIMELINE_S = 300;
const PRESETS = [
  ["1", "topic change"],
  ["2", "exercise start"],
  ["3", "exercise end"],
  ["4", "strong reaction"],
];
const ACTIVE_KEY = "emotrace.active"; // the session this tab streams into, to offer a resume
// The page tells the server it is there even while paused (every "heartbeat_s" of the server's
// "ready"): a session that gets no frame and no message for 2 minutes ends as interrupted.
const HEARTBEAT_S = 20;
// The fields of the API, as a person reads them in an error.
const FIELD_NAMES = {
  time_s: "Time", label: "Label", notes: "Notes", patient: "Pseudonym", name: "Session name",
  consent: "Consent", source: "Source",
};

// Tests and curious users can look at the live state here.
const state = { live: null, lastResult: null, sessions: [], review: null };
window.emotraceState = state;

// -- helpers ----------------------------------------------------------------------------------

async function api(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch("/api/v1" + path, options);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(describeError(data.detail) || data.error || response.statusText);
  return data;
}

// The API's error detail as sentences: a message, or one sentence per invalid field
// ([{"loc": ["body", "time_s"], "msg": "Input should be greater than or equal to 0"}] reads
// "Time must be greater than or equal to 0.").
function describeError(detail) {
  if (typeof detail === "string") return detail;
  if (!Array.isArray(detail)) return "";
  return detail.map((item) => {
    const loc = Array.isArray(item.loc) ? item.loc.filter((part) => part !== "body") : [];
    const key = loc.length ? String(loc[loc.length - 1]) : "";
    const field = FIELD_NAMES[key] || (key ? key.replace(/_/g, " ") : "The request");
    let text = String(item.msg || "is not valid");
    if (item.type === "string_pattern_mismatch") text = key === "label" ? "must not be blank" : "has characters that are not allowed";
    text = text.replace(/^Value error, /, "").replace(/^(Input|String|Value) should /, "must ");
    text = text.charAt(0).toLowerCase() + text.slice(1);
    return `${field} ${text}${/[.!?]$/.test(text) ? "" : "."}`;
  }).join(" ");
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(r).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function when(unix) {
  const d = new Date(unix * 1000);
  return d.toLocaleDateString() + " " + d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function remember(session) {
  if (session) localStorage.setItem(ACTIVE_KEY, JSON.stringify(session));
  else localStorage.removeItem(ACTIVE_KEY);
}

function remembered() {
  try {
    return JSON.parse(localStorage.getItem(ACTIVE_KEY) || "null");
  } catch {
    return null;
  }
}

// -- routing ----------------------------------------------------------------------------------

function show(view) {
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== view;
}

async function route() {
  const hash = location.hash || "#/";
  const [path, query] = hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean);
  const live = state.live;
  if (live && !live.stopped && !(parts[0] === "live" && Number(parts[1]) === live.id)) {
    // The video and the socket live in the live view: leaving it ends the session.
    if (!confirm("Stop the live session? It is saved as it is now.")) {
      location.hash = `#/live/${live.id}`;
      return;
    }
    await stopLive(true);
  }
  if (parts[0] === "new") return showNew(new URLSearchParams(query || ""));
  if (parts[0] === "live") return showLive(Number(parts[1]));
  if (parts[0] === "review") return showReview(Number(parts[1]));
  return showSessions();
}

// -- sessions list ----------------------------------------------------------------------------

async function showSessions() {
  show("view-sessions");
  const error = $("#sessions-error");
  error.hidden = true;
  try {
    state.sessions = await api("GET", "/sessions");
  } catch (exc) {
    error.textContent = "Could not load the sessions: " + exc.message;
    error.hidden = false;
    return;
  }
  renderSessions();
}

function renderSessions() {
  const filter = $("#filter").value.trim().toLowerCase();
  const body = $("#sessions-table tbody");
  body.replaceChildren();
  const rows = state.sessions
    .filter((s) => !filter || s.patient.toLowerCase().includes(filter))
    .sort((a, b) => b.started_at - a.started_at);
  for (const s of rows) {
    const visible = s.frames ? Math.round((100 * s.visible_frames) / s.frames) + "%" : "–";
    const exports = el("td");
    for (const format of ["csv", "jsonl", "parquet"]) {
      exports.append(el("a", { href: `/api/v1/sessions/${s.id}/export?format=${format}`, download: "" }, format.toUpperCase()));
    }
    const remove = el("button", { class: "secondary", type: "button", onclick: () => deleteSession(s) }, "Delete");
    if (s.live) remove.disabled = true;
    body.append(
      el("tr", { "data-id": String(s.id) },
        el("td", {}, s.patient),
        el("td", {}, el("a", { href: s.live ? `#/live/${s.id}` : `#/review/${s.id}` }, s.name)),
        el("td", {}, when(s.started_at)),
        el("td", {}, clock(s.duration_s)),
        el("td", { class: "status-" + s.status }, s.status + (s.live ? " (live)" : "")),
        el("td", {}, visible),
        exports,
        el("td", {}, remove)));
  }
  const empty = $("#sessions-empty");
  empty.textContent = state.sessions.length
    ? `No sessions match “${$("#filter").value.trim()}”.`
    : "No sessions yet. Start one with “New session”.";
  empty.hidden = rows.length > 0;
}

async function deleteSession(s) {
  const sure = confirm(`Delete session ${s.name} of ${s.patient}? Its numbers, markers and notes are erased for good.`);
  if (!sure) return;
  try {
    await api("DELETE", `/sessions/${s.id}`);
  } catch (exc) {
    alert("Not deleted: " + exc.message);
  }
  showSessions();
}

// -- new session ------------------------------------------------------------------------------

function showNew(params) {
  show("view-new");
  if (params.get("patient")) $("#patient").value = params.get("patient");
  if (params.get("name")) $("#session-name").value = params.get("name");
  if (params.get("source")) {
    const radio = document.querySelector(`input[name=source][value="${params.get("source")}"]`);
    if (radio) radio.checked = true;
  }
  // Consent is given for one recording: it is asked again every time, never carried over.
  $("#consent").checked = false;
  $("#new-error").textContent = "";
}

async function openSource(source, file) {
  // Ask for the camera or the screen first: the browser wants that right after the click.
  if (source === "camera") {
    return { stream: await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: false }) };
  }
  if (source === "screen") {
    return { stream: await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false }) };
  }
  if (!file) throw new Error("choose a video file");
  return { file };
}

async function startNew(event) {
  event.preventDefault();
  const error = $("#new-error");
  error.textContent = "";
  const source = document.querySelector("input[name=source]:checked").value;
  const file = $("#video-file").files[0];
  const button = $("#start");
  button.disabled = true;
  let media = null;
  try {
    media = await openSource(source, file);
    const body = { patient: $("#patient").value.trim(), consent: $("#consent").checked, source };
    const name = $("#session-name").value.trim();
    if (name) body.name = name;
    const session = await api("POST", "/sessions", body);
    remember({ id: session.id, source, name: session.name, patient: session.patient });
    startLive(session, source, media);
    location.hash = `#/live/${session.id}`;
  } catch (exc) {
    if (media && media.stream) media.stream.getTracks().forEach((t) => t.stop());
    error.textContent = exc.message || String(exc);
  } finally {
    button.disabled = false;
  }
}

// -- live view --------------------------------------------------------------------------------

function startLive(session, source, media) {
  const video = $("#video");
  const live = {
    id: session.id, name: session.name, patient: session.patient, source,
    fileMode: source === "file", stream: media.stream || null, video, ws: null,
    inflight: false, paused: false, stopped: false, sentAt: 0, lastSend: 0,
    ticks: [], history: [], markers: [], patientTrack: null, objectUrl: null, heartbeat: null,
  };
  state.live = live;
  clearLiveView();
  $("#progress").hidden = !live.fileMode;
  if (live.fileMode) {
    live.objectUrl = URL.createObjectURL(media.file);
    video.srcObject = null;
    video.autoplay = false;
    video.src = live.objectUrl;
    video.addEventListener("loadeddata", () => { video.pause(); connect(live); }, { once: true });
  } else {
    video.removeAttribute("src");
    video.autoplay = true;
    video.srcObject = live.stream;
    // A shared window that the user stops sharing ends the session like Stop.
    live.stream.getVideoTracks()[0].addEventListener("ended", () => { if (!live.stopped) stopLive(false); });
    connect(live);
  }
  video.play().catch(() => {});
}

// A live view shows one session: nothing of the previous one (box, bars, face, frames/s,
// timeline, markers) until this one's results arrive.
function clearLiveView() {
  state.lastResult = null;
  $("#marker-log").replaceChildren();
  $("#marker-text").value = ""; // text left there (Escape) belonged to the previous session
  $("#fps").textContent = "– frames/s";
  const indicator = $("#face-ind");
  indicator.textContent = "No face yet";
  indicator.className = "pill";
  $("#patient-label").textContent = "";
  $("#bars").replaceChildren();
  $("#patient-choice").textContent = "patient: largest face";
  $("#progress").value = 0;
  $("#pause").textContent = "Pause";
  for (const canvas of [$("#overlay"), $("#timeline")]) {
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  }
}

function connect(live) {
  setStatus("connecting", "");
  const ws = new WebSocket(`ws://${location.host}/api/v1/sessions/${live.id}/live`);
  ws.binaryType = "arraybuffer";
  live.ws = ws;
  ws.onmessage = (event) => onMessage(live, JSON.parse(event.data));
  ws.onclose = () => {
    clearInterval(live.heartbeat);
    if (live.ws !== ws || live.stopped) return;
    live.inflight = false;
    setStatus("disconnected", "off");
    // The server kept everything received and marked the session interrupted.
    offerResume({ id: live.id, name: live.name, patient: live.patient, source: live.source },
      "The connection to the server was lost. Everything received is kept.");
  };
}

function setStatus(text, kind) {
  const pill = $("#live-status");
  pill.textContent = text;
  pill.className = "pill " + (kind || "");
}

function onMessage(live, message) {
  if (message.type === "ready") {
    clearInterval(live.heartbeat);
    const ws = live.ws;
    live.heartbeat = setInterval(() => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "heartbeat" }));
    }, 1000 * (message.heartbeat_s || HEARTBEAT_S));
    setStatus(message.resumed ? "recording (resumed)" : "recording", "on");
    hideBanner();
    if (live.fileMode) seekAndSend(live, 0);
    else sendFrame(live);
  } else if (message.type === "result" || message.type === "error") {
    live.inflight = false;
    if (message.type === "result") onResult(live, message);
    scheduleNext(live);
  } else if (message.type === "finished") {
    finishLive(live);
  }
}

function scheduleNext(live) {
  if (live.paused || live.stopped) return;
  if (live.fileMode) {
    const next = live.video.currentTime + FILE_STEP_S;
    if (next >= live.video.duration) stopLive(false);
    else seekAndSend(live, next);
    return;
  }
  const wait = Math.max(0, MIN_FRAME_INTERVAL_MS - (performance.now() - live.lastSend));
  setTimeout(() => sendFrame(live), wait);
}

function seekAndSend(live, time) {
  live.video.addEventListener("seeked", () => sendFrame(live), { once: true });
  live.video.currentTime = time;
}

const grab = document.createElement("canvas");

function sendFrame(live) {
  if (live !== state.live || live.paused || live.stopped || live.inflight) return;
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
  const time = live.fileMode ? video.currentTime : NaN;
  grab.toBlob((jpeg) => {
    const header = new ArrayBuffer(8);
    new DataView(header).setFloat64(0, time, true); // NaN: "now" on the server's clock
    if (live.ws.readyState === WebSocket.OPEN) live.ws.send(new Blob([header, jpeg]));
    else live.inflight = false;
  }, "image/jpeg", JPEG_QUALITY);
}

function onResult(live, result) {
  state.lastResult = result;
  const now = performance.now();
  live.ticks.push(now);
  while (live.ticks.length > 20) live.ticks.shift();
  const span = (live.ticks[live.ticks.length - 1] - live.ticks[0]) / 1000;
  const fps = span > 0 ? (live.ticks.length - 1) / span : 0;
  $("#fps").textContent = `${fps.toFixed(1)} frames/s · ${Math.round(now - live.lastSend)} ms`;
  const patient = result.patient === null ? null : result.faces[result.patient];
  const indicator = $("#face-ind");
  indicator.textContent = patient ? "Face visible" : "No face";
  indicator.className = "pill " + (patient ? "on" : "off");
  $("#patient-label").textContent = patient ? patient.label : "";
  drawBars(patient);
  drawOverlay(result);
  live.history.push({ t: result.time_s, v: result.valence, a: result.arousal });
  while (live.history.length && live.history[0].t < result.time_s - TIMELINE_S) live.history.shift();
  drawTimeline(live, result.time_s);
  if (live.fileMode && live.video.duration) $("#progress").value = live.video.currentTime / live.video.duration;
}

function drawBars(face) {
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
        el("span", {}, name), el("div", { class: "track" }, el("div", { class: "fill" })),
        el("span", { class: "pct" }, ""))));
  }
  for (const [name, p] of entries) {
    const bar = bars.querySelector(`[data-class="${name}"]`);
    bar.classList.toggle("top", name === face.label);
    bar.querySelector(".fill").style.width = (100 * p).toFixed(1) + "%";
    bar.querySelector(".pct").textContent = Math.round(100 * p) + "%";
  }
}

function drawOverlay(result) {
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
    const text = `${face.label} ${Math.round(100 * face.confidence)}%`;
    const tw = ctx.measureText(text).width + 10;
    const ty = Math.max(20, y * scale);
    ctx.fillStyle = color;
    ctx.fillRect(x * scale - 1, ty - 20, tw, 20);
    ctx.fillStyle = "#0d1117";
    ctx.fillText(text, x * scale + 4, ty - 2);
  }
}

function drawTimeline(live, now) {
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
  for (const v of [-1, 0, 1]) {
    ctx.beginPath(); ctx.moveTo(left, y(v)); ctx.lineTo(right, y(v)); ctx.stroke();
    ctx.fillText(String(v), 4, y(v) + 4);
  }
  ctx.fillText(clock(start), left, height - 4);
  ctx.fillText(clock(end), right - 34, height - 4);
  ctx.strokeStyle = "#999";
  for (const m of live.markers) {
    if (m.time_s < start) continue;
    ctx.beginPath(); ctx.moveTo(x(m.time_s), top); ctx.lineTo(x(m.time_s), bottom); ctx.stroke();
  }
  for (const [key, color] of [["v", "#0072B2"], ["a", "#E69F00"]]) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let drawing = false;
    for (const point of live.history) {
      const value = point[key];
      if (value === null || value === undefined) { drawing = false; continue; }
      if (drawing) ctx.lineTo(x(point.t), y(value));
      else ctx.moveTo(x(point.t), y(value));
      drawing = true;
    }
    ctx.stroke();
  }
  ctx.lineWidth = 1;
}

function choosePatient(event) {
  const live = state.live, result = state.lastResult;
  if (!live || !result || !live.ws) return;
  const canvas = $("#overlay");
  const rect = canvas.getBoundingClientRect();
  const scale = canvas.width / result.width;
  const px = (event.clientX - rect.left) / scale, py = (event.clientY - rect.top) / scale;
  const hit = result.faces.find((f) => px >= f.box.x && px <= f.box.x + f.box.w && py >= f.box.y && py <= f.box.y + f.box.h);
  const track = hit && hit.track_id >= 0 ? hit.track_id : null;
  live.patientTrack = track;
  live.ws.send(JSON.stringify({ type: "patient", track_id: track }));
  $("#patient-choice").textContent = track === null ? "patient: largest face" : `patient: face #${track} (clicked)`;
}

async function addMarker(label) {
  const live = state.live;
  if (!live || live.stopped || !label.trim()) return;
  // The server stamps "now" on receipt (the moment of the click, give or take a few ms); a
  // video file's marker is at the position shown.
  const body = { label: label.trim() };
  if (live.fileMode) body.time_s = live.video.currentTime;
  try {
    const marker = await api("POST", `/sessions/${live.id}/markers`, body);
    live.markers.push(marker);
    $("#marker-log").prepend(el("li", {}, `${clock(marker.time_s)} ${marker.label}`));
  } catch (exc) {
    $("#marker-log").prepend(el("li", { class: "error" }, "marker not saved: " + exc.message));
  }
}

function togglePause() {
  const live = state.live;
  if (!live || live.stopped || !live.ws) return;
  live.paused = !live.paused;
  live.ws.send(JSON.stringify({ type: live.paused ? "pause" : "resume" }));
  $("#pause").textContent = live.paused ? "Resume" : "Pause";
  setStatus(live.paused ? "paused" : "recording", live.paused ? "warn" : "on");
  if (!live.paused) scheduleNext(live);
}

async function stopLive(leaving) {
  const live = state.live;
  if (!live || live.stopped) return;
  live.stopped = true;
  if (live.ws && live.ws.readyState === WebSocket.OPEN) {
    live.ws.send(JSON.stringify({ type: "stop" }));
    // finishLive runs when the server confirms; do not wait when navigating away.
    if (!leaving) return;
  } else {
    try { await api("POST", `/sessions/${live.id}/finish`); } catch { /* already finished */ }
  }
  finishLive(live, leaving);
}

function releaseMedia(live) {
  clearInterval(live.heartbeat);
  if (live.stream) live.stream.getTracks().forEach((t) => t.stop());
  if (live.objectUrl) URL.revokeObjectURL(live.objectUrl);
  live.video.srcObject = null;
  live.video.removeAttribute("src");
}

function finishLive(live, leaving) {
  live.stopped = true;
  releaseMedia(live);
  if (live.ws) live.ws.close();
  if (state.live === live) state.live = null;
  remember(null);
  setStatus("finished", "");
  if (!leaving) location.hash = `#/review/${live.id}`;
}

async function showLive(id) {
  show("view-live");
  const live = state.live;
  $("#resume-hint").hidden = Boolean(live && live.id === id);
  if (live && live.id === id) {
    $("#live-title").textContent = `${live.patient} · ${live.name}`;
    $("#pause").textContent = live.paused ? "Resume" : "Pause";
    return;
  }
  // Not streaming here (a reload, a link): offer to resume into the same session.
  if (!live) clearLiveView();
  try {
    const s = await api("GET", `/sessions/${id}`);
    $("#live-title").textContent = `${s.patient} · ${s.name}`;
    if (s.status === "complete") location.hash = `#/review/${id}`;
  } catch (exc) {
    $("#live-title").textContent = exc.message;
  }
}

// -- resume -----------------------------------------------------------------------------------

function offerResume(session, text) {
  const banner = $("#banner");
  $("#banner-text").textContent = `${text} Session ${session.name} (${session.patient}).`;
  banner.hidden = false;
  banner.dataset.session = JSON.stringify(session);
}

function hideBanner() {
  $("#banner").hidden = true;
}

async function resume(sessionArg) {
  const session = sessionArg || JSON.parse($("#banner").dataset.session || "null");
  if (!session) return;
  try {
    if (state.live && !state.live.stopped) { releaseMedia(state.live); state.live.stopped = true; }
    let media;
    if (session.source === "file") {
      alert("A video file cannot be resumed where it stopped; start a new session with it.");
      return;
    }
    media = await openSource(session.source);
    remember(session);
    startLive(session, session.source, media);
    hideBanner();
    location.hash = `#/live/${session.id}`;
    $("#resume-hint").hidden = true;
  } catch (exc) {
    $("#banner-text").textContent = "Could not resume: " + exc.message;
  }
}

async function checkInterrupted() {
  const active = remembered();
  if (!active) return;
  try {
    const s = await api("GET", `/sessions/${active.id}`);
    if (s.status === "interrupted" || s.status === "recording") {
      offerResume(active, "The last session was interrupted (the page was closed or reloaded).");
    } else {
      remember(null);
    }
  } catch {
    remember(null);
  }
}

// -- review -----------------------------------------------------------------------------------

// The review page shows exactly one session, or an error: every field, link and button is
// cleared when it opens and filled only with the session it names. Answers that arrive after
// the page moved on (another review, another view) are dropped.
let reviewVisit = 0;

function clearReview() {
  state.review = null;
  $("#review-title").textContent = "Session";
  $("#review-meta").textContent = "";
  $("#review-body").hidden = true;
  $("#review-downloads").hidden = true;
  for (const link of document.querySelectorAll("#review-downloads a")) link.removeAttribute("href");
  $("#report").src = "about:blank";
  $("#notes").value = "";
  $("#notes-saved").textContent = "";
  $("#save-notes").textContent = "Save notes";
  $("#save-notes").onclick = null;
  $("#review-marker-form").onsubmit = (event) => event.preventDefault();
  $("#markers-table tbody").replaceChildren();
  $("#review-error").textContent = "";
  $("#compare").checked = false;
  $("#report-notes").checked = false;
}

async function showReview(id) {
  show("view-review");
  const visit = ++reviewVisit;
  const current = () => visit === reviewVisit && !$("#view-review").hidden;
  clearReview();
  let s, others;
  try {
    s = await api("GET", `/sessions/${id}`);
    others = (await api("GET", `/sessions?patient=${encodeURIComponent(s.patient)}`))
      .filter((o) => o.id !== s.id && o.started_at <= s.started_at);
  } catch (exc) {
    if (current()) $("#review-title").textContent = exc.message;
    return;
  }
  if (!current()) return;
  const review = { id: s.id, visit, label: `${s.patient} · ${s.name}` };
  state.review = review;
  $("#review-title").textContent = review.label;
  const visible = s.frames ? Math.round((100 * s.visible_frames) / s.frames) : 0;
  $("#review-meta").textContent =
    `${when(s.started_at)} · ${clock(s.duration_s)} · ${s.status} · ${s.frames} frames, face visible ${visible}% · consent: ${s.consent ? "yes" : "no"}`;
  for (const format of ["csv", "jsonl", "parquet"]) $(`#dl-${format}`).href = `/api/v1/sessions/${s.id}/export?format=${format}`;
  $("#notes").value = s.notes;
  $("#save-notes").textContent = `Save notes to ${s.name}`;
  $("#save-notes").onclick = async () => {
    const notes = $("#notes").value;
    try {
      await api("PATCH", `/sessions/${review.id}`, { notes });
      if (state.review !== review) return;
      $("#notes-saved").textContent = `saved to ${review.label}`;
      loadReport(review);
    } catch (exc) {
      if (state.review === review) $("#notes-saved").textContent = "Not saved: " + exc.message;
    }
  };
  $("#compare-wrap").hidden = others.length === 0;
  $("#compare-patient").textContent = `${s.patient} (${others.length})`;
  $("#compare").onchange = () => loadReport(review);
  $("#report-notes").onchange = () => loadReport(review);
  renderMarkers(review, s.marker_list);
  $("#review-marker-form").onsubmit = async (event) => {
    event.preventDefault();
    try {
      await api("POST", `/sessions/${review.id}/markers`, {
        label: $("#review-marker-label").value, time_s: Number($("#review-marker-time").value),
      });
      if (state.review !== review) return;
      $("#review-marker-label").value = "";
      $("#review-error").textContent = "";
      refreshMarkers(review);
    } catch (exc) {
      if (state.review === review) $("#review-error").textContent = "Marker not added: " + exc.message;
    }
  };
  $("#review-body").hidden = false;
  $("#review-downloads").hidden = false;
  loadReport(review);
}

// The report shown and its downloads: with the comparison and the notes only when ticked.
function loadReport(review) {
  if (state.review !== review) return;
  const query = new URLSearchParams();
  if ($("#compare").checked) query.set("compare", "true");
  if ($("#report-notes").checked) query.set("notes", "true");
  const base = `/api/v1/sessions/${review.id}`;
  const shown = query.toString();
  $("#report").src = `${base}/report${shown ? "?" + shown : ""}`;
  $("#dl-pdf").href = `${base}/report.pdf${shown ? "?" + shown : ""}`;
  query.set("download", "true");
  $("#dl-html").href = `${base}/report?${query}`;
}

async function refreshMarkers(review) {
  const markers = await api("GET", `/sessions/${review.id}/markers`);
  if (state.review !== review) return;
  renderMarkers(review, markers);
  loadReport(review);
}

function renderMarkers(review, markers) {
  const body = $("#markers-table tbody");
  body.replaceChildren();
  const failed = (what, exc) => {
    if (state.review === review) $("#review-error").textContent = `${what}: ${exc.message}`;
  };
  for (const m of markers) {
    const time = el("input", { type: "number", min: "0", step: "0.1", value: m.time_s.toFixed(1) });
    const label = el("input", { value: m.label, maxlength: "200" });
    const save = el("button", { type: "button", class: "secondary", onclick: async () => {
      try {
        await api("PATCH", `/sessions/${review.id}/markers/${m.id}`, { label: label.value, time_s: Number(time.value) });
        if (state.review !== review) return;
        $("#review-error").textContent = "";
        refreshMarkers(review);
      } catch (exc) {
        // The fields show what is stored, not what was refused.
        time.value = m.time_s.toFixed(1);
        label.value = m.label;
        failed(`Marker “${m.label}” not saved`, exc);
      }
    } }, "Save");
    const remove = el("button", { type: "button", class: "secondary", onclick: async () => {
      if (!confirm(`Delete marker "${m.label}"?`)) return;
      try {
        await api("DELETE", `/sessions/${review.id}/markers/${m.id}`);
        if (state.review !== review) return;
        $("#review-error").textContent = "";
        refreshMarkers(review);
      } catch (exc) {
        failed(`Marker “${m.label}” not deleted`, exc);
      }
    } }, "Delete");
    body.append(el("tr", { "data-id": String(m.id) }, el("td", {}, time), el("td", {}, label), el("td", {}, save, remove)));
  }
}

// -- wiring -----------------------------------------------------------------------------------

function onKey(event) {
  if (!state.live || $("#view-live").hidden) return;
  const target = event.target;
  if (target && ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName)) return;
  const preset = PRESETS.find(([key]) => key === event.key);
  if (preset) { event.preventDefault(); addMarker(preset[1]); }
  else if (event.key === "m") { event.preventDefault(); $("#marker-text").focus(); }
  else if (event.key === " ") { event.preventDefault(); togglePause(); }
}

function init() {
  const buttons = $("#marker-buttons");
  for (const [key, label] of PRESETS) {
    buttons.append(el("button", { type: "button", class: "marker-btn", "data-label": label, onclick: () => addMarker(label) },
      el("kbd", {}, key), label));
  }
  $("#marker-form").addEventListener("submit", (event) => {
    event.preventDefault();
    addMarker($("#marker-text").value);
    $("#marker-text").value = "";
    $("#marker-text").blur(); // back to the page: 1-4, m and space act again
  });
  $("#marker-text").addEventListener("keydown", (event) => {
    if (event.key === "Escape") { event.preventDefault(); event.target.blur(); }
  });
  $("#new-form").addEventListener("submit", startNew);
  $("#filter").addEventListener("input", renderSessions);
  $("#pause").addEventListener("click", togglePause);
  $("#stop").addEventListener("click", () => stopLive(false));
  $("#overlay").addEventListener("click", choosePatient);
  $("#resume-btn").addEventListener("click", () => resume());
  $("#resume-here").addEventListener("click", () => resume(remembered()));
  $("#banner-dismiss").addEventListener("click", () => { hideBanner(); remember(null); });
  $("#banner-finish").addEventListener("click", async () => {
    const session = JSON.parse($("#banner").dataset.session || "null");
    hideBanner();
    remember(null);
    if (session) {
      try { await api("POST", `/sessions/${session.id}/finish`); } catch { /* shown in the list */ }
      location.hash = `#/review/${session.id}`;
    }
  });
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", route);
  route();
  checkInterrupted();
}

init();
