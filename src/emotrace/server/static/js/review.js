// The review page: one session's report, downloads, notes and markers.

import { showReviewBaseline } from "./baseline.js";
import { isFileSession } from "./file_session.js";
import { language, t } from "./i18n.js";
import { showReviewTimeline, updateReviewTimeline } from "./review_timeline.js";
import { finishQuestion, finishSession, resume } from "./resume.js";
import { $, api, clock, el, faceVisible, show, state, when } from "./util.js";

// The review page shows exactly one session, or an error: every field, link and button is
// cleared when it opens and filled only with the session it names. Answers that arrive after
// the page moved on (another review, another view) are dropped.
export let reviewVisit = 0;

export function clearReview() {
  state.review = null;
  $("#review-title").textContent = t("Session");
  $("#review-meta").textContent = "";
  $("#review-body").hidden = true;
  $("#review-downloads").hidden = true;
  for (const link of document.querySelectorAll("#review-downloads a")) link.removeAttribute("href");
  showInReportFrame(null);
  $("#notes").value = "";
  $("#notes-saved").textContent = "";
  $("#save-notes").textContent = t("Save notes");
  $("#save-notes").onclick = null;
  $("#review-marker-form").onsubmit = (event) => event.preventDefault();
  $("#markers-table tbody").replaceChildren();
  $("#review-marker-end").value = "";
  $("#review-marker-excluded").checked = false;
  $("#review-pick").textContent = t("Drag across the timeline to pick a segment's start and end.");
  $("#review-error").textContent = "";
  $("#review-live").hidden = true;
  $("#compare").checked = false;
  $("#report-notes").checked = false;
}

export async function showReview(id) {
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
  const visible = faceVisible(s);
  const meta = [
    when(s.started_at), clock(s.duration_s), t(s.status),
    t("{frames} frames, face visible {visible}", { frames: s.frames, visible }),
  ];
  if (s.not_recorded_s >= 1) meta.push(t("not recorded (paused or interrupted) {time}", { time: clock(s.not_recorded_s) }));
  meta.push(t("consent: {answer}", { answer: s.consent ? t("yes") : t("no") }));
  $("#review-meta").textContent = meta.join(" · ");
  showRecovery(s);
  for (const format of ["csv", "jsonl", "parquet"]) $(`#dl-${format}`).href = `/api/v1/sessions/${s.id}/export?format=${format}`;
  $("#notes").value = s.notes;
  $("#save-notes").textContent = t("Save notes to {name}", { name: s.name });
  $("#save-notes").onclick = async () => {
    const notes = $("#notes").value;
    try {
      await api("PATCH", `/sessions/${review.id}`, { notes });
      if (state.review !== review) return;
      $("#notes-saved").textContent = t("saved to {session}", { session: review.label });
      loadReport(review);
    } catch (exc) {
      if (state.review === review) $("#notes-saved").textContent = t("Not saved: {error}", { error: exc.message });
    }
  };
  $("#compare-wrap").hidden = others.length === 0;
  $("#compare-patient").textContent = `${s.patient} (${others.length})`;
  $("#compare").onchange = () => loadReport(review);
  $("#report-notes").onchange = () => loadReport(review);
  renderMarkers(review, s.marker_list);
  showReviewTimeline(review, s.marker_list).catch(() => { /* the form works without it */ });
  showReviewBaseline(review, s, () => loadReport(review));
  $("#review-marker-form").onsubmit = async (event) => {
    event.preventDefault();
    try {
      const end = $("#review-marker-end").value;
      await api("POST", `/sessions/${review.id}/markers`, {
        label: $("#review-marker-label").value, time_s: Number($("#review-marker-time").value),
        // With an end it is a segment; ticked "exclude", left out of every figure.
        end_s: end === "" ? null : Number(end), excluded: $("#review-marker-excluded").checked,
      });
      if (state.review !== review) return;
      $("#review-marker-label").value = "";
      $("#review-marker-end").value = "";
      $("#review-marker-excluded").checked = false;
      $("#review-error").textContent = "";
      refreshMarkers(review);
    } catch (exc) {
      if (state.review === review) $("#review-error").textContent = t("Marker not added: {error}", { error: exc.message });
    }
  };
  $("#review-body").hidden = false;
  $("#review-downloads").hidden = false;
  loadReport(review);
}

// A session that is not complete can be resumed (or taken over from the tab that records it) and
// finished from its review; a complete one offers neither.
export function showRecovery(s) {
  if (s.status === "complete") return;
  $("#review-live-text").textContent = s.streaming
    ? t("This session is being recorded in another tab or window.")
    : s.status === "interrupted"
      ? t("This session is interrupted: everything received is kept. Resume it to record more, or finish it.")
      : t("This session is not streaming: everything received is kept. Resume it to record more, or finish it.");
  $("#review-resume").textContent = s.streaming ? t("Take over here") : t("Resume");
  $("#review-resume").onclick = () => resume({ id: s.id, name: s.name, patient: s.patient });
  // A video file is analysed once, never resumed.
  $("#review-resume").hidden = isFileSession(s);
  if (isFileSession(s)) {
    $("#review-live-text").textContent = s.status === "recording"
      ? t("This video is still being analysed.")
      : t("The analysis of this video stopped before its end: what was analysed is kept. Finish it to keep it as it is.");
  }
  $("#review-finish").onclick = () => {
    if (confirm(finishQuestion(s))) finishSession(s.id).then((done) => { if (done) showReview(s.id); });
  };
  $("#review-live").hidden = false;
}

// Each report goes into a new frame element instead of navigating the one shown: navigating a
// frame adds an entry to the page's history, so Back would step through the report with and
// without the comparison or the notes instead of leaving the review. (A sandboxed frame
// navigated again and again also moves between browser processes, where Playwright 1.65, which
// drives the page in the tests, once lost track of it.) ``url`` null: an empty frame.
function showInReportFrame(url) {
  const shown = $("#report");
  const frame = shown.cloneNode(false);
  frame.removeAttribute("src");
  if (url) frame.src = url;
  shown.replaceWith(frame);
}

// The report shown and its downloads: in the page's language, with the comparison and the notes
// only when ticked.
export function loadReport(review) {
  if (state.review !== review) return;
  const query = new URLSearchParams({ lang: language() });
  if ($("#compare").checked) query.set("compare", "true");
  if ($("#report-notes").checked) query.set("notes", "true");
  const base = `/api/v1/sessions/${review.id}`;
  const shown = query.toString();
  showInReportFrame(`${base}/report${shown ? "?" + shown : ""}`);
  $("#dl-pdf").href = `${base}/report.pdf${shown ? "?" + shown : ""}`;
  query.set("download", "true");
  $("#dl-html").href = `${base}/report?${query}`;
}

export async function refreshMarkers(review) {
  const markers = await api("GET", `/sessions/${review.id}/markers`);
  if (state.review !== review) return;
  renderMarkers(review, markers);
  updateReviewTimeline(review, markers);
  loadReport(review);
}

export function renderMarkers(review, markers) {
  const body = $("#markers-table tbody");
  body.replaceChildren();
  const failed = (what, exc) => {
    if (state.review === review) $("#review-error").textContent = `${what}: ${exc.message}`;
  };
  for (const m of markers) {
    const time = el("input", { type: "number", min: "0", step: "0.1", value: m.time_s.toFixed(1) });
    const label = el("input", { value: m.label, maxlength: "200" });
    const end = el("input", { type: "number", min: "0", step: "0.1", value: m.end_s === null ? "" : m.end_s.toFixed(1), "aria-label": t("End (s), empty for a point marker") });
    const excluded = el("input", { type: "checkbox", "aria-label": t("Exclude from every figure (the label says why)") });
    excluded.checked = m.excluded;
    const save = el("button", { type: "button", class: "secondary", onclick: async () => {
      try {
        await api("PATCH", `/sessions/${review.id}/markers/${m.id}`, {
          label: label.value, time_s: Number(time.value),
          end_s: end.value === "" ? null : Number(end.value), excluded: excluded.checked,
        });
        if (state.review !== review) return;
        $("#review-error").textContent = "";
        refreshMarkers(review);
      } catch (exc) {
        // The fields show what is stored, not what was refused.
        time.value = m.time_s.toFixed(1);
        label.value = m.label;
        end.value = m.end_s === null ? "" : m.end_s.toFixed(1);
        excluded.checked = m.excluded;
        failed(t("Marker “{label}” not saved", { label: m.label }), exc);
      }
    } }, t("Save"));
    const remove = el("button", { type: "button", class: "secondary", onclick: async () => {
      if (!confirm(t("Delete marker “{label}”?", { label: m.label }))) return;
      try {
        await api("DELETE", `/sessions/${review.id}/markers/${m.id}`);
        if (state.review !== review) return;
        $("#review-error").textContent = "";
        refreshMarkers(review);
      } catch (exc) {
        failed(t("Marker “{label}” not deleted", { label: m.label }), exc);
      }
    } }, t("Delete"));
    body.append(el("tr", { "data-id": String(m.id), class: m.excluded ? "excluded" : "" }, el("td", {}, time), el("td", {}, label),
      el("td", {}, end), el("td", {}, excluded), el("td", {}, save, remove)));
  }
}
