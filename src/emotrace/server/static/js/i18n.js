// The page in the clinician's language. English is the source text (the key, gettext-style), so
// the code reads as the page does; other languages come from the catalog the server serves at
// /i18n/<lang>.json (one file per language, src/emotrace/locales/, shared with the reports).
// The language is the one chosen in the page (remembered), else the browser's, else English.

const STORED_KEY = "emotrace.lang";
export const LANGUAGES = { en: "English", es: "Español" };
// Attributes people read or hear: translated with the text.
const ATTRIBUTES = ["placeholder", "aria-label", "title", "alt"];

let lang = "en";
let catalog = {};
// Text shown through t() without a translation: tests read it (window.emotraceUntranslated).
const missing = new Set();
window.emotraceUntranslated = missing;

export function language() {
  return lang;
}

function chosen() {
  const stored = localStorage.getItem(STORED_KEY);
  if (stored in LANGUAGES) return stored;
  const wanted = (navigator.languages || [navigator.language]).map((l) => String(l).slice(0, 2));
  return wanted.find((l) => l in LANGUAGES) || "en";
}

// Load the catalog and translate the page's own HTML; call once, before the first view.
export async function loadLanguage() {
  lang = chosen();
  catalog = {};
  if (lang !== "en") {
    try {
      const response = await fetch(`/i18n/${lang}.json`, { credentials: "same-origin" });
      if (response.ok) catalog = await response.json();
    } catch { /* the page stays readable in English */ }
  }
  document.documentElement.lang = lang;
  translateTree(document.body);
}

// Remember the language and show the page in it (a reload: every view is rebuilt in it).
export function setLanguage(next) {
  if (!(next in LANGUAGES) || next === lang) return;
  localStorage.setItem(STORED_KEY, next);
  location.reload();
}

// The text in the page's language; "{name}" placeholders are filled from params.
export function t(text, params) {
  let out = text;
  if (lang !== "en") {
    if (Object.prototype.hasOwnProperty.call(catalog, text)) out = catalog[text];
    else missing.add(text);
  }
  if (params) out = out.replace(/\{(\w+)\}/g, (whole, key) => (key in params ? String(params[key]) : whole));
  return out;
}

// The page's static text and attributes, translated in place (index.html stays plain English).
export function translateTree(root) {
  if (lang === "en") return;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue.trim().replace(/\s+/g, " ");
    if (!text || /^[\s\d–·:%()/.,-]*$/.test(text)) continue;
    if (node.parentElement && node.parentElement.closest("[data-no-translate], kbd")) continue;
    const lead = node.nodeValue.match(/^\s*/)[0], trail = node.nodeValue.match(/\s*$/)[0];
    node.nodeValue = lead + t(text) + trail;
  }
  for (const element of root.querySelectorAll("*")) {
    for (const name of ATTRIBUTES) {
      if (element.hasAttribute(name)) element.setAttribute(name, t(element.getAttribute(name)));
    }
  }
}

// Marks text for the catalog without translating it yet (lists built before the language loads:
// translate each entry with t() where it is shown).
export const N_ = (text) => text;

// Numbers, dates and times the way the language writes them.
export function number(value, digits = 0) {
  return new Intl.NumberFormat(lang, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
}

export function dateTime(unix) {
  const d = new Date(unix * 1000);
  return d.toLocaleDateString(lang) + " " + d.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
}
