// The New session form: pseudonym, name, consent and the source (camera, screen, video file).

import { uploadFile } from "./file_session.js";
import { N_, t } from "./i18n.js";
import { startLive } from "./live.js";
import { $, api, remember, show } from "./util.js";

export const NAME_RULE = N_("Use 1-64 letters (accents allowed), digits, \".\", \"_\" or \"-\", " +
  "starting with a letter or digit, without spaces (e.g. P-017).");

export function showNew(params) {
  show("view-new");
  if (params.get("patient")) $("#patient").value = params.get("patient");
  if (params.get("name")) $("#session-name").value = params.get("name");
  if (params.get("source")) {
    const radio = document.querySelector(`input[name=source][value="${params.get("source")}"]`);
    if (radio) radio.checked = true;
  }
  // The browser's own "Please match the requested format" tells nobody what the format is.
  for (const input of [$("#patient"), $("#session-name")]) {
    input.oninput = () => {
      input.setCustomValidity("");
      if (input.validity.patternMismatch) input.setCustomValidity(t(NAME_RULE));
    };
    input.oninput();
  }
  // Consent is given for one recording: it is asked again every time, never carried over.
  $("#consent").checked = false;
  $("#new-error").textContent = "";
  $("#upload-status").textContent = "";
}

// Choosing a file means the file is the source (the radio alone is easy to miss).
export function chooseFile() {
  if ($("#video-file").files.length) document.querySelector("input[name=source][value=file]").checked = true;
}

export async function openSource(source) {
  // Ask for the camera or the screen first: the browser wants that right after the click.
  if (source === "camera") {
    return { stream: await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: false }) };
  }
  if (source === "screen") {
    return { stream: await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false }) };
  }
  // Video files are not played here: the server analyses them (startFile).
  throw new Error(t("A video file is analysed by the server: start a new session with it."));
}

// Upload the chosen file; the server analyses it and the file view follows the analysis.
async function startFile(fields) {
  const file = $("#video-file").files[0];
  if (!file) throw new Error(t("Choose a video file first."));
  const status = $("#upload-status");
  const session = await uploadFile(fields, file, (fraction) => {
    status.textContent = t("Uploading the video to emotrace on this computer: {pct}%",
      { pct: Math.floor(100 * fraction) });
  });
  status.textContent = "";
  location.hash = `#/file/${session.id}`;
}

export async function startNew(event) {
  event.preventDefault();
  const error = $("#new-error");
  error.textContent = "";
  const source = document.querySelector("input[name=source]:checked").value;
  const button = $("#start");
  button.disabled = true;
  let media = null;
  try {
    const body = { patient: $("#patient").value.trim(), consent: $("#consent").checked, source };
    const name = $("#session-name").value.trim();
    if (name) body.name = name;
    if (source === "file") {
      await startFile(body);
      return;
    }
    media = await openSource(source);
    const session = await api("POST", "/sessions", body);
    remember({ id: session.id, source, name: session.name, patient: session.patient });
    startLive(session, source, media);
    location.hash = `#/live/${session.id}`;
  } catch (exc) {
    if (media && media.stream) media.stream.getTracks().forEach((t) => t.stop());
    error.textContent = exc.message || String(exc);
    $("#upload-status").textContent = "";
  } finally {
    button.disabled = false;
  }
}
