// emotrace's page: sessions, new session, live view, review. Plain JavaScript modules, no build
// step, nothing loaded from outside this server (the Content-Security-Policy enforces it).
//
// This module routes between the views and wires the page's buttons and keys.

import { PRESETS, choosePatient, followTrack, showLive, stopLive } from "./live.js";
import { cancelFile, showFile } from "./file_session.js";
import { chooseFile, showNew, startNew } from "./new_session.js";
import { checkInterrupted, finishHere, hideBanner, mark, pause, resume, resumeHere, stop } from "./resume.js";
import { showReview } from "./review.js";
import { cancelSegment, toggleSegment } from "./segments.js";
import { renderSessions, showSessions } from "./sessions.js";
import { LANGUAGES, language, loadLanguage, setLanguage, t } from "./i18n.js";
import { $, api, el, remember, state } from "./util.js";

export async function route() {
  const hash = location.hash || "#/";
  const [path, query] = hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean);
  const live = state.live;
  if (live && !live.stopped && !(parts[0] === "live" && Number(parts[1]) === live.id)) {
    // The video and the socket live in the live view: leaving it ends the session.
    if (!confirm(t("Stop the live session? It is saved as it is now."))) {
      location.hash = `#/live/${live.id}`;
      return;
    }
    await stopLive(true);
  }
  if (parts[0] === "new") return showNew(new URLSearchParams(query || ""));
  if (parts[0] === "live") return showLive(Number(parts[1]));
  if (parts[0] === "review") return showReview(Number(parts[1]));
  if (parts[0] === "file") return showFile(Number(parts[1]));
  return showSessions();
}

export function onKey(event) {
  // A parked live view (a session this tab does not stream into) answers the keys too.
  if (!(state.live || state.parked) || $("#view-live").hidden) return;
  const target = event.target;
  if (target && ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName)) return;
  const preset = PRESETS.find(([key]) => key === event.key);
  if (preset) { event.preventDefault(); mark(t(preset[1])); }
  else if (event.key === "m") { event.preventDefault(); $("#marker-text").focus(); }
  else if (event.key === " ") { event.preventDefault(); pause(); }
  else if (event.key === "s") { event.preventDefault(); toggleSegment(); }
  else if (event.key === "Escape") cancelSegment();
}

export async function init() {
  await loadLanguage(); // before the first view, so nothing shows in the wrong language
  const choice = $("#lang");
  choice.replaceChildren(...Object.entries(LANGUAGES).map(([code, name]) => el("option", { value: code, lang: code }, name)));
  choice.value = language();
  choice.addEventListener("change", () => {
    if (state.live && !state.live.stopped) {
      alert(t("Change the language after the live session: changing it reloads the page."));
      choice.value = language();
      return;
    }
    setLanguage(choice.value);
  });
  const buttons = $("#marker-buttons");
  for (const [key, preset] of PRESETS) {
    // The marker is stored as the clinician reads it: in the page's language.
    const label = t(preset);
    buttons.append(el("button", { type: "button", class: "marker-btn", "data-label": preset, onclick: () => mark(label) },
      el("kbd", {}, key), label));
  }
  $("#marker-form").addEventListener("submit", (event) => {
    event.preventDefault();
    mark($("#marker-text").value);
    $("#marker-text").value = "";
    $("#marker-text").blur(); // back to the page: 1-4, m and space act again
  });
  $("#marker-text").addEventListener("keydown", (event) => {
    if (event.key === "Escape") { event.preventDefault(); event.target.blur(); }
  });
  $("#new-form").addEventListener("submit", startNew);
  $("#video-file").addEventListener("change", chooseFile);
  $("#file-cancel").addEventListener("click", cancelFile);
  $("#filter").addEventListener("input", renderSessions);
  $("#pause").addEventListener("click", pause);
  $("#segment-toggle").addEventListener("click", toggleSegment);
  $("#stop").addEventListener("click", stop);
  $("#overlay").addEventListener("click", choosePatient);
  $("#patient-select").addEventListener("change", (event) => {
    followTrack(event.target.value === "" ? null : Number(event.target.value), t("chosen"));
  });
  $("#resume-btn").addEventListener("click", () => resume());
  $("#resume-here").addEventListener("click", resumeHere);
  $("#finish-here").addEventListener("click", finishHere);
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
