// Small helpers every view uses: the API client, DOM building, clocks, the shared state.

export const $ = (selector) => document.querySelector(selector);

export const ACTIVE_KEY = "emotrace.active"; // the session this tab streams into, to offer a resume

// The fields of the API, as a person reads them in an error.
export const FIELD_NAMES = {
  time_s: "Time", label: "Label", notes: "Notes", patient: "Pseudonym", name: "Session name",
  consent: "Consent", source: "Source",
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
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(describeError(data.detail) || data.error || response.statusText);
  return data;
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
    const field = FIELD_NAMES[key] || (key ? key.replace(/_/g, " ") : "The request");
    let text = String(item.msg || "is not valid");
    if (item.type === "string_pattern_mismatch") text = key === "label" ? "must not be blank" : "has characters that are not allowed";
    text = text.replace(/^Value error, /, "").replace(/^(Input|String|Value) should /, "must ");
    text = text.charAt(0).toLowerCase() + text.slice(1);
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

export function when(unix) {
  const d = new Date(unix * 1000);
  return d.toLocaleDateString() + " " + d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
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
