// The sessions list: filter, exports, delete.

import { isAnalysing, isFileSession } from "./file_session.js";
import { N_, t } from "./i18n.js";
import { finishQuestion, finishSession, resume } from "./resume.js";
import { $, api, clock, el, faceVisible, show, state, when } from "./util.js";

export async function showSessions() {
  show("view-sessions");
  const error = $("#sessions-error");
  error.hidden = true;
  try {
    state.sessions = await api("GET", "/sessions");
  } catch (exc) {
    error.textContent = t("Could not load the sessions: {error}", { error: exc.message });
    error.hidden = false;
    return;
  }
  renderSessions();
}

export function renderSessions() {
  const filter = $("#filter").value.trim().toLowerCase();
  const body = $("#sessions-table tbody");
  body.replaceChildren();
  const rows = state.sessions
    .filter((s) => !filter || s.patient.toLowerCase().includes(filter))
    .sort((a, b) => b.started_at - a.started_at);
  for (const s of rows) {
    const visible = faceVisible(s);
    const exports = el("td");
    for (const format of ["csv", "jsonl", "parquet"]) {
      exports.append(el("a", { href: `/api/v1/sessions/${s.id}/export?format=${format}`, download: "" }, format.toUpperCase()));
    }
    const remove = el("button", { class: "secondary", type: "button", onclick: () => deleteSession(s) }, t("Delete"));
    if (s.live || isAnalysing(s)) remove.disabled = true;
    const actions = el("td", {}, ...recoveryButtons(s), remove);
    body.append(
      el("tr", { "data-id": String(s.id) },
        el("td", {}, s.patient),
        el("td", {}, el("a", { href: isAnalysing(s) ? `#/file/${s.id}` : s.live ? `#/live/${s.id}` : `#/review/${s.id}` }, s.name)),
        el("td", {}, when(s.started_at)),
        el("td", {}, clock(s.duration_s)),
        el("td", { class: "status-" + s.status }, statusText(s)),
        el("td", {}, visible),
        exports,
        actions));
  }
  const empty = $("#sessions-empty");
  empty.textContent = state.sessions.length
    ? t("No sessions match “{filter}”.", { filter: $("#filter").value.trim() })
    : t("No sessions yet. Start one with “New session”.");
  empty.hidden = rows.length > 0;
}

export async function deleteSession(s) {
  const sure = confirm(t("Delete session {name} of {patient}? Its numbers, markers and notes are erased for good.", { name: s.name, patient: s.patient }));
  if (!sure) return;
  try {
    await api("DELETE", `/sessions/${s.id}`);
  } catch (exc) {
    alert(t("Not deleted: {error}", { error: exc.message }));
  }
  showSessions();
}

export function statusText(s) {
  if (isAnalysing(s)) return t("analysing the video");
  if (s.streaming) return t("recording (live in a tab)");
  return s.live ? t("recording (no page streaming)") : t(s.status);
}

// The statuses the API gives, for the catalog (shown through t(s.status)).
export const STATUSES = [N_("recording"), N_("complete"), N_("interrupted")];

// What can be done with a session not complete: resume or take over (which asks first) and
// finish. A complete session offers neither.
export function recoveryButtons(s) {
  if (s.status === "complete") return [];
  const again = el("button", { type: "button", class: "resume", onclick: () => resume({ id: s.id, name: s.name, patient: s.patient }) },
    s.streaming ? t("Take over") : t("Resume"));
  const finish = el("button", { type: "button", class: "secondary finish", onclick: () => {
    if (confirm(finishQuestion(s))) finishSession(s.id);
  } }, t("Finish"));
  return isFileSession(s) ? [finish] : [again, finish]; // a video file is analysed once, never resumed
}
