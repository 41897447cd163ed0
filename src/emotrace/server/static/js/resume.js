// Resuming an interrupted session: the banner, Resume and Finish it.

import { releaseMedia, startLive } from "./live.js";
import { openSource } from "./new_session.js";
import { $, api, remember, remembered, state } from "./util.js";

export function offerResume(session, text) {
  const banner = $("#banner");
  $("#banner-text").textContent = `${text} Session ${session.name} (${session.patient}).`;
  banner.hidden = false;
  banner.dataset.session = JSON.stringify(session);
}

export function hideBanner() {
  $("#banner").hidden = true;
}

export async function resume(sessionArg) {
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

export async function checkInterrupted() {
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
