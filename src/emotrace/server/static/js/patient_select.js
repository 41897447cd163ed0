// The "Follow" list: the faces in view, so the patient can be chosen from the keyboard as well as
// by a click on the video (WCAG 2.1.1). Rebuilt only when the faces in view change, so a keyboard
// or screen-reader user is not interrupted while choosing.

import { t } from "./i18n.js";
import { $, el } from "./util.js";

let shown = "";

export function listFaces(result, chosen) {
  const select = $("#patient-select");
  const tracks = result ? result.faces.map((f) => f.track_id).filter((t) => t >= 0) : [];
  if (chosen !== null && chosen !== undefined && !tracks.includes(chosen)) tracks.push(chosen);
  tracks.sort((a, b) => a - b);
  const key = tracks.join(",");
  if (key === shown && select.options.length === tracks.length + 1) return;
  shown = key;
  select.replaceChildren(
    el("option", { value: "" }, t("the largest face")),
    ...tracks.map((track) => el("option", { value: String(track) }, t("face #{track}", { track }))));
  select.value = chosen === null || chosen === undefined ? "" : String(chosen);
}
