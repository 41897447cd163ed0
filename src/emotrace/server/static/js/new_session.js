// The New session form: pseudonym, name, consent and the source (camera, screen, video file).

import { startLive } from "./live.js";
import { $, api, remember, show } from "./util.js";

export function showNew(params) {
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

export async function openSource(source, file) {
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

export async function startNew(event) {
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
