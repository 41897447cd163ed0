"""Spanish and English (issue 35 §4): one catalog per language, nothing shown untranslated.

English is the source text (``t("...")`` in the page, ``tr("...")`` in the reports); each other
language has one catalog, ``src/emotrace/locales/<lang>.json``. The static checks read every
text the code can show; the browser check opens every page in Chromium with ``--lang=es`` and
looks for text the catalog does not cover.
"""

from __future__ import annotations

import ast
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from emotrace.i18n import LANGUAGES, catalog, translator
from emotrace.labels import CANONICAL

SRC = Path(__file__).resolve().parents[1] / "src" / "emotrace"
STATIC = SRC / "server" / "static"
#: t("...") and N_("...") in the page's modules; adjacent literals joined by + count as one.
_JS_CALL = re.compile(r"\b(?:t|N_)\(\s*((?:\"(?:[^\"\\\n]|\\.)*\"\s*\+?\s*)+)[,)]")
_JS_LITERAL = re.compile(r"\"((?:[^\"\\\n]|\\.)*)\"")
#: Attributes people read or hear (the page's i18n.js translates the same ones).
_ATTRIBUTES = {"placeholder", "aria-label", "title", "alt"}
#: Text that is the same in every language.
_UNTRANSLATED = re.compile(r"^[\s\d–·:%()/.,+\-#…]*$")
#: The Python modules whose tr("...") text reaches a clinician (reports, HTML and PDF).
REPORT_MODULES = sorted((SRC / "sessions").glob("*.py"))


class _PageText(HTMLParser):
    """The text and readable attributes of index.html, as the page's translateTree sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: set[str] = set()
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "kbd", "title"):
            self._skip += 1
        for name, value in attrs:
            if name in _ATTRIBUTES and value:
                self.texts.add(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "kbd", "title"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if text and not self._skip and not _UNTRANSLATED.match(text):
            self.texts.add(text)


def page_texts() -> set[str]:
    """Every English text the page can show: index.html and the modules' t()/N_() calls."""
    parser = _PageText()
    parser.feed((STATIC / "index.html").read_text("utf-8"))
    texts = set(parser.texts)
    for module in sorted((STATIC / "js").glob("*.js")):
        for call in _JS_CALL.finditer(module.read_text("utf-8")):
            parts = _JS_LITERAL.findall(call.group(1))
            texts.add(json.loads('"' + "".join(parts) + '"'))
    return texts | set(CANONICAL)


def report_texts() -> set[str]:
    """Every tr("...") text of the report modules (the first argument, a literal)."""
    texts: set[str] = set()
    for module in REPORT_MODULES:
        for node in ast.walk(ast.parse(module.read_text("utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("tr", "N_")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                texts.add(node.args[0].value)
    return texts


def _fields(text: str) -> set[str]:
    return set(re.findall(r"\{(\w*)\}", text))


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_text_has_a_translation_with_the_same_placeholders(lang: str) -> None:
    translations = catalog(lang)
    needed = page_texts() | report_texts()
    missing = sorted(needed - set(translations))
    assert not missing, f"{len(missing)} texts lack a {lang} translation: {missing[:20]}"
    wrong = [k for k in needed if _fields(k) != _fields(translations[k])]
    assert not wrong, f"placeholders differ in {lang}: {wrong[:10]}"
    blank = [k for k in needed if not translations[k].strip()]
    assert not blank, blank[:10]


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_the_catalog_holds_no_text_nothing_shows(lang: str) -> None:
    stale = sorted(set(catalog(lang)) - page_texts() - report_texts())
    assert not stale, f"{lang} catalog entries no code shows (remove them): {stale[:20]}"


def test_spanish_names_the_emotions_as_clinicians_do() -> None:
    tr = translator("es")
    names = [tr(name) for name in ("angry", "disgust", "fear", "happy", "sad", "surprise")]
    assert names == ["enfado", "asco", "miedo", "alegría", "tristeza", "sorpresa"]
    assert tr("neutral") == "neutral" and not tr.missing
    assert tr.number(0.4251, 2) == "0,43" and tr.number(-0.5, 1, signed=True) == "-0,5"
    assert translator("en").number(0.4251, 2) == "0.43"


def test_an_unknown_language_is_one_line() -> None:
    with pytest.raises(ValueError, match=r"unknown language 'fr': choose one of en, es"):
        translator("fr")


# -- the page in Chromium with --lang=es ------------------------------------------------------

_WORD = re.compile(r"[A-Za-zÀ-ÿ]{4,}")


def english_words() -> set[str]:
    """Words of the English texts that no Spanish translation uses: seen in a Spanish page,
    they are text that escaped the catalog."""

    def words(text: str) -> set[str]:
        return {w.lower() for w in _WORD.findall(re.sub(r"\{\w*\}", " ", text))}

    spanish = set().union(*map(words, catalog("es").values()))
    english = set().union(*map(words, catalog("es")))
    return english - spanish - {"emotrace", "jsonl", "parquet", "html", "token", "serve"}


def test_english_words_are_a_useful_net() -> None:
    words = english_words()
    assert {"session", "face", "markers", "pause", "stop", "notes"} <= words
    assert "neutral" not in words  # the same word in both languages


def _visible_english(page: Any, words: set[str]) -> list[str]:
    """Visible lines of the page that hold English words (pseudonyms and names excluded)."""
    text: str = page.evaluate("() => document.body.innerText")
    found = []
    for line in text.splitlines():
        hits = {w.lower() for w in _WORD.findall(line)} & words
        if hits:
            found.append(f"{line.strip()[:90]!r} ({', '.join(sorted(hits))})")
    return found


@pytest.mark.slow
@pytest.mark.browser
def test_every_page_shows_spanish_with_chromium_in_spanish(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    sync_api = pytest.importorskip("playwright.sync_api")
    from serve_helpers import face_frames, running_server, write_y4m
    from test_serve_browser import BINARY, TIMEOUT_MS, fake_camera_args, wait_for_face

    if not Path(BINARY).is_file():
        pytest.skip("needs Chromium (Debian: apt-get install chromium chromium-driver)")
    words = english_words()
    camera = write_y4m(tmp_path / "face.y4m", face_frames(30))
    problems: dict[str, list[str]] = {}
    with running_server(tmp_path / "ws") as server, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=BINARY, headless=True, args=[*fake_camera_args(camera), "--lang=es"]
        )
        context = browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(server.url)
        page.wait_for_selector("#view-sessions:not([hidden])")
        assert page.evaluate("() => document.documentElement.lang") == "es"
        problems["sessions (empty)"] = _visible_english(page, words)
        page.click("#nav-new")
        problems["new session"] = _visible_english(page, words)
        page.fill("#patient", "P-035")
        page.fill("#session-name", "uno")
        page.check("#consent")
        page.check("input[name=source][value=camera]")
        page.click("#start")
        page.wait_for_selector("#view-live:not([hidden])")
        wait_for_face(page)
        page.keyboard.press("1")  # a preset marker, stored in Spanish
        page.wait_for_selector("#marker-log li")
        page.wait_for_function("() => document.querySelectorAll('#timeline-table tbody tr').length")
        page.click("#timeline-details summary")
        problems["live view"] = _visible_english(page, words)
        page.click("#stop")
        page.wait_for_selector("#view-review:not([hidden])")
        problems["review"] = _visible_english(page, words)
        # The review's report and its downloads are in the page's language too.
        page.frame_locator("#report").locator("html[lang=es] #method").wait_for()
        for link, attribute in (("#report", "src"), ("#dl-html", "href"), ("#dl-pdf", "href")):
            assert "lang=es" in (page.get_attribute(link, attribute) or ""), link
        session = page.evaluate("async () => (await (await fetch('/api/v1/sessions/1')).json())")
        model = {w.lower() for w in _WORD.findall(session["model"]["name"] or "")}  # data
        frame = page.locator("#report").element_handle().content_frame()
        # A command (<code>) and a citation (<cite>) are written as they are in any language.
        frame.evaluate("() => document.querySelectorAll('code, cite').forEach((e) => e.remove())")
        problems["report"] = _visible_english(frame, words - model)
        page.click("#nav-sessions")
        page.wait_for_selector("#sessions-table tbody tr")
        problems["sessions"] = _visible_english(page, words)
        untranslated = page.evaluate("() => [...window.emotraceUntranslated]")
        markers = page.evaluate("async () => (await (await fetch('/api/v1/sessions/1')).json())")
        context.close()
        browser.close()
    assert [m["label"] for m in markers["marker_list"]] == ["cambio de tema"]
    assert not untranslated, f"shown without a translation: {untranslated}"
    bad = {name: found for name, found in problems.items() if found}
    assert not bad, "\n".join(f"{name}: {line}" for name, lines in bad.items() for line in lines)
