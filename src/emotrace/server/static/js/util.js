// Small helpers every view uses: the API client, DOM building, clocks, the shared state.

import { N_, dateTime, t } from "./i18n.js";

export const $ = (selector) => document.querySelector(selector);

export const ACTIVE_KEY = "emotrace.active"; // the session this tab streams into, to offer a resume

// The fields of the API, as a person reads them in an error (translated when shown).
export const FIELD_NAMES = {
  time_s: N_("Time"), label: N_("Label"), notes: N_("Notes"), patient: N_("Pseudonym"),
  name: N_("Session name"), consent: N_("Consent"), source: N_("Source"),
  end_s: N_("End"), excluded: N_("Exclude"),
};
// Pydantic's common refusals, as sentences in the page's language; others keep the API's text.
const REFUSALS = {
  missing: N_("is required"),
  greater_than_equal: N_("must be at least {ge}"),
  greater_than: N_("must be greater than {gt}"),
  less_than_equal: N_("must be at most {le}"),
  less_than: N_("must be less than {lt}"),
  string_too_long: N_("must be at most {max_length} characters long"),
  string_too_short: N_("must not be blank"),
  float_parsing: N_("must be a number"),
  float_type: N_("must be a number"),
  int_parsing: N_("must be a whole number"),
  bool_parsing: N_("must be true or false"),
  string_pattern_mismatch: N_("has characters that are not allowed"),
};

// Tests and curious users can look at the live state here.
export const state = { live: null, lastResult: null, sessions: [], review: null };
window.emotraceState = state;

export async function api(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch("/api/v1" + path, options);
  if (response.status === 401) signedOut();
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(describeError(data.detail) || data.error || response.statusText);
  return data;
}

// The server no longer knows this page's token: a restarted server has a new one. Say so, and
// where the new address is; nothing recorded is lost.
export function signedOut() {
  const banner = $("#signed-out");
  if (!banner) return;
  banner.textContent = t("This page is no longer signed in to emotrace: the server was restarted " +
    "(every start has a new access token) or this address is an old one. Open the address that " +
    "emotrace serve printed in its terminal (it ends with ?token=…); emotrace serve --open " +
    "opens it in the browser for you. Everything recorded is kept.");
  banner.hidden = false;
}

// The API's error detail as sentences: a message, or one sentence per invalid field
// ([{"loc": ["body", "time_s"], "msg": "Input should be greater than or equal to 0"}] reads
// "Time must be greater than or equal to 0.").
export function describeError(detail) {
  if (typeof detail === "string") return detail;
  if (!Array.isArray(detail)) return "";
  return detail.map((item) => {
    const loc = Array.isArray(item.loc) ? item.loc.filter((part) => part !== "body") : [];
    const key = loc.length ? String(loc[loc.length - 1]) : "";
    const field = FIELD_NAMES[key] ? t(FIELD_NAMES[key]) : (key ? key.replace(/_/g, " ") : t("The request"));
    let text;
    if (item.type === "string_pattern_mismatch" && key === "label") text = t("must not be blank");
    else if (REFUSALS[item.type] && !/\{\w+\}/.test(t(REFUSALS[item.type], item.ctx || {}))) {
      text = t(REFUSALS[item.type], item.ctx || {});
    }
    else {
      text = String(item.msg || t("is not valid"));
      text = text.replace(/^Value error, /, "").replace(/^(Input|String|Value) should /, "must ");
      text = text.charAt(0).toLowerCase() + text.slice(1);
    }
    return `${field} ${text}${/[.!?]$/.test(text) ? "" : "."}`;
  }).join(" ");
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

export function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(r).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

// The session's face-visible figure as the server computes it (share of the recorded time,
// pauses and interruptions left out; the report shows the same): "87%", or "–" without frames.
export function faceVisible(s) {
  return s.visible_ratio === null || s.visible_ratio === undefined
    ? "–" : Math.round(100 * s.visible_ratio) + "%";
}

export function when(unix) {
  return dateTime(unix);
}

export function remember(session) {
  if (session) localStorage.setItem(ACTIVE_KEY, JSON.stringify(session));
  else localStorage.removeItem(ACTIVE_KEY);
}

export function remembered() {
  try {
    return JSON.parse(localStorage.getItem(ACTIVE_KEY) || "null");
  } catch {
    return null;
  }
}

export function show(view) {
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== view;
}
