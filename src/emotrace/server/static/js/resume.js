// Sessions this tab does not stream into: the banner after a reload, the live view of a session as
// the server has it (a reload, a link, a session another tab records or took over), Resume, Take
// over and Finish from there, the sessions list and the review.
//
// Such a live view is "parked" (state.parked): it shows the stored timeline and markers, refreshed
// every PARKED_POLL_MS, and every control says what it does here: markers are saved (the server
// stamps its clock), Pause says there is nothing to pause, Stop finishes the session.

import { t } from "./i18n.js";
import { TIMELINE_S, drawBars, drawTimeline } from "./live_draw.js";
import { addMarker, clearLiveView, releaseMedia, setStatus, startLive, stopLive, togglePause } from "./live.js";
import { openSource } from "./new_session.js";
import { describeTimeline } from "./timeline_text.js";
import { $, api, clock, el, remember, remembered, state } from "./util.js";

export const PARKED_POLL_MS = 2000;

// Frames asked for when a parked view opens: at most 15 frames/s, so more than TIMELINE_S.
export const SERIES_FRAMES = 5000;

// A reloaded page's old socket closes a moment after the new page asks: ask again before
// calling the session recorded elsewhere.
export const RELOAD_GRACE_MS = 1500;

export function offerResume(session, text) {
  const banner = $("#banner");
  $("#banner-text").textContent = t("{text} Session {name} ({patient}).", { text, name: session.name, patient: session.patient });
  banner.hidden = false;
  banner.dataset.session = JSON.stringify(session);
}

export function hideBanner() {
  $("#banner").hidden = true;
}

// A message about resuming where the clinician is looking (banner, live view, list, review).
export function say(text) {
  for (const node of document.querySelectorAll(".resume-say")) node.textContent = text;
  if (!$("#banner").hidden) $("#banner-text").textContent = text;
}

// Resume (or take over) a session in this tab: asks the server first, so a complete session
// never opens the camera and one recorded elsewhere is taken over only when the clinician agrees.
export async function resume(sessionArg) {
  const session = sessionArg || JSON.parse($("#banner").dataset.session || "null");
  if (!session) return;
  say("");
  let s;
  try {
    s = await api("GET", `/sessions/${session.id}`);
  } catch (exc) {
    say(t("Could not resume: {message}", { message: exc.message }));
    return;
  }
  if (s.status === "complete") {
    say(t("Session {name} is complete: a complete session cannot be resumed.", { name: s.name }));
    remember(null);
    if (!location.hash.startsWith("#/review/")) location.hash = `#/review/${s.id}`;
    return;
  }
  const source = (s.settings && s.settings.source) || session.source || "camera";
  if (source === "file") {
    say(t("A video file cannot be resumed where it stopped: finish this session, then start a new one with the file."));
    return;
  }
  if (s.streaming && !confirm(takeOverQuestion(s))) return;
  const info = { id: s.id, name: s.name, patient: s.patient, source };
  try {
    if (state.live && !state.live.stopped) { releaseMedia(state.live); state.live.stopped = true; }
    const media = await openSource(source);
    unpark();
    remember(info);
    state.takeOver = s.streaming ? s.id : null; // read by connect()
    startLive(info, source, media);
    seedLive(state.live, s);
    hideBanner();
    location.hash = `#/live/${s.id}`;
  } catch (exc) {
    say(t("Could not resume: {message}", { message: exc.message }));
  }
}

// A resumed live view goes on from what the server has, not from an empty view: the stored
// timeline (as far back as it shows) and every marker.
async function seedLive(live, s) {
  if (!live || live.id !== s.id) return;
  live.markers.unshift(...s.marker_list);
  $("#marker-log").replaceChildren(...live.markers.slice().reverse()
    .map((m) => el("li", {}, `${clock(m.time_s)} ${m.label}`)));
  const stored = { id: s.id, history: [], total: 0 };
  try {
    await loadSeries(stored, s.frames);
  } catch {
    return; // the timeline fills from the results that arrive
  }
  if (state.live !== live) return;
  const first = live.history.length ? live.history[0].t : Infinity;
  live.history.unshift(...stored.history.filter((p) => p.t < first));
  if (live.history.length) drawTimeline(live, live.history[live.history.length - 1].t);
}

export function takeOverQuestion(s) {
  return t("Session {name} ({patient}) is being recorded in another tab or window. Take it over here? That tab stops recording.",
    { name: s.name, patient: s.patient });
}

export async function finishSession(id) {
  try {
    await api("POST", `/sessions/${id}/finish`);
  } catch (exc) {
    say(t("Not finished: {message}", { message: exc.message }));
    return false;
  }
  if (remembered() && remembered().id === id) remember(null);
  unpark();
  hideBanner();
  location.hash = `#/review/${id}`;
  return true;
}

export async function checkInterrupted() {
  const active = remembered();
  if (!active) return;
  try {
    let s = await api("GET", `/sessions/${active.id}`);
    if (s.streaming) { // perhaps this page's own socket, from before the reload: ask again
      await new Promise((resolve) => setTimeout(resolve, RELOAD_GRACE_MS));
      s = await api("GET", `/sessions/${active.id}`);
    }
    if (s.status === "complete") remember(null);
    else if (!s.streaming && !(state.live && state.live.id === s.id)) {
      offerResume(active, t("The last session was interrupted (the page was closed or reloaded)."));
    }
  } catch {
    remember(null);
  }
}

// -- the controls of the live view, here or parked ------------------------------------------

export function mark(label) {
  if (state.live) return addMarker(label);
  if (state.parked) return markParked(state.parked, label);
}

export function pause() {
  if (state.live) return togglePause();
  const parked = state.parked;
  if (!parked) return;
  say(parked.session && parked.session.streaming
    ? t("Another tab or window records this session: pause it there, or take it over here.")
    : t("Not recording: nothing to pause. Resume to record."));
}

export function stop() {
  if (state.live) return stopLive(false);
  const parked = state.parked;
  if (!parked || !parked.session) return;
  const s = parked.session;
  const question = s.streaming
    ? t("Another tab or window records session {name}. Stop it there and finish the session?", { name: s.name })
    : finishQuestion(s);
  if (confirm(question)) finishSession(s.id);
}

export function finishQuestion(s) {
  return t("Finish session {name}? It is kept as it is now and cannot be resumed afterwards.", { name: s.name });
}

export function resumeHere() {
  const parked = state.parked;
  if (parked && parked.session) resume({ id: parked.id, name: parked.session.name, patient: parked.session.patient });
}

export function finishHere() {
  if (state.parked) stop();
}

async function markParked(parked, label) {
  if (!label.trim()) return;
  try {
    // No time: the server stamps the session's clock (now), live elsewhere or interrupted.
    const marker = await api("POST", `/sessions/${parked.id}/markers`, { label: label.trim() });
    if (state.parked !== parked) return;
    parked.markers.push(marker);
    $("#marker-log").prepend(el("li", {}, `${clock(marker.time_s)} ${marker.label}`));
    say(t("Marker saved at {time}.", { time: clock(marker.time_s) }));
    drawParked(parked);
  } catch (exc) {
    $("#marker-log").prepend(el("li", { class: "error" }, t("Marker not saved: {message}", { message: exc.message })));
  }
}

// -- the parked live view -------------------------------------------------------------------

// Why this tab shows a session it does not stream into, in the clinician's words.
const REASONS = {
  taken_over: () => t("Another tab or window took this session over; this tab no longer records it."),
  lost: () => t("The connection to the server was lost. Everything received is kept."),
};

function reasonText(reason) {
  return REASONS[reason] ? REASONS[reason]() : "";
}

export function unpark() {
  const parked = state.parked;
  if (parked) clearTimeout(parked.timer);
  state.parked = null;
  $("#resume-hint").hidden = true;
  say("");
}

// Show session `id` as the server has it; `reason` ("taken_over", "lost") says why this tab
// stopped streaming into it.
export function showParked(id, reason = "") {
  unpark();
  const parked = { id, reason, session: null, markers: [], history: [], total: 0, timer: null, first: true };
  state.parked = parked;
  drawBars(null);
  setStatus(t("not recording"), "warn");
  $("#resume-text").textContent = reasonText(reason) || t("Loading the session…");
  $("#resume-here").hidden = true;
  $("#finish-here").hidden = true;
  $("#resume-hint").hidden = false;
  drawParked(parked); // sizes the timeline: an undrawn canvas stretches to its default 2:1
  refreshParked(parked);
  return parked;
}

// The tab streamed into `live` and lost it: release the camera, clear every live figure (no
// frozen bars), and show the session as stored, saying why.
export function lostLive(live, reason) {
  live.stopped = true;
  releaseMedia(live);
  if (live.ws) live.ws.close();
  if (state.live === live) state.live = null;
  clearLiveView();
  if (!$("#view-live").hidden && location.hash === `#/live/${live.id}`) showParked(live.id, reason);
  if (reason === "lost") {
    offerResume({ id: live.id, name: live.name, patient: live.patient, source: live.source }, reasonText("lost"));
  }
}

async function refreshParked(parked) {
  try {
    const s = await api("GET", `/sessions/${parked.id}`);
    if (state.parked !== parked) return;
    if (s.status === "complete") {
      unpark();
      location.hash = `#/review/${s.id}`;
      return;
    }
    if (s.streaming && parked.first && !parked.reason) { // this page's own socket before a reload?
      parked.first = false;
      parked.timer = setTimeout(() => refreshParked(parked), RELOAD_GRACE_MS);
      return;
    }
    parked.first = false;
    parked.session = s;
    $("#live-title").textContent = `${s.patient} · ${s.name}`;
    parked.markers = s.marker_list;
    $("#marker-log").replaceChildren(...s.marker_list.slice().reverse()
      .map((m) => el("li", {}, `${clock(m.time_s)} ${m.label}`)));
    await loadSeries(parked, s.frames);
    if (state.parked !== parked) return;
    renderParked(parked);
  } catch (exc) {
    if (state.parked !== parked) return;
    $("#resume-text").textContent = t("Could not load the session: {message}", { message: exc.message });
  }
  if (state.parked === parked && !$("#view-live").hidden) {
    parked.timer = setTimeout(() => refreshParked(parked), PARKED_POLL_MS);
  }
}

async function loadSeries(parked, frames) {
  if (frames <= parked.total) return;
  const offset = parked.total || Math.max(0, frames - SERIES_FRAMES);
  const page = await api("GET", `/sessions/${parked.id}/series?offset=${offset}&limit=${SERIES_FRAMES}`);
  page.time_s.forEach((time, i) => parked.history.push({ t: time, v: page.valence[i], a: page.arousal[i] }));
  parked.total = offset + page.time_s.length;
  const last = parked.history.length ? parked.history[parked.history.length - 1].t : 0;
  while (parked.history.length && parked.history[0].t < last - TIMELINE_S) parked.history.shift();
}

function drawParked(parked) {
  const times = [0, ...parked.history.map((p) => p.t), ...parked.markers.map((m) => m.time_s)];
  drawTimeline(parked, Math.max(...times));
  describeTimeline(parked.history, parked.markers, true);
}

function renderParked(parked) {
  const s = parked.session;
  const elsewhere = s.streaming;
  const parts = [];
  if (elsewhere) {
    parts.push(parked.reason === "taken_over" ? reasonText("taken_over") : t("This session is being recorded in another tab or window."),
      t("Markers set here are saved at the session's time."));
  } else {
    const frames = s.frames;
    parts.push(reasonText(parked.reason),
      s.status === "interrupted" ? t("This session is interrupted ({frames} frames kept).", { frames })
        : t("This session is not streaming ({frames} frames kept).", { frames }),
      t("Resume to record; markers set here are saved anyway, at the session's time."));
  }
  const pill = parked.reason === "taken_over" ? t("taken over")
    : elsewhere ? t("recording elsewhere") : s.status === "interrupted" ? t("interrupted") : t("not recording");
  setStatus(pill, "warn");
  $("#resume-text").textContent = parts.filter(Boolean).join(" ");
  $("#resume-here").textContent = elsewhere ? t("Take over here") : t("Resume");
  $("#resume-here").hidden = false;
  $("#finish-here").hidden = false;
  $("#pause").textContent = t("Pause");
  drawParked(parked);
}
