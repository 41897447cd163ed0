"""The session report in Spanish (issue 35 §4): every text, number, date and emotion name in the
language asked for, from the Python API, ``emotrace report --lang``, the API's ``?lang=`` and
the PDF.

One patient's sessions are recorded into a real SQLite workspace so that every section of the
report is drawn: a resting start that the model reads as sad (set as the baseline, so calibrated
labels show), a stretch without the face, a head turned away, a break in the recording, a
segment, an excluded stretch, a point marker, notes, an earlier session for the trend, and a
session without any face. The page's own report frame in Spanish is checked in
``test_i18n.py`` (Chromium with ``--lang=es``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error
from conftest import run_emotrace_in_process as emotrace
from emotrace import __version__
from emotrace.i18n import LANGUAGES, catalog
from emotrace.runtime.loading import default_model_path
from emotrace.sessions.analytics import SessionSummary
from emotrace.sessions.report import find_chromium, render_report
from emotrace.sessions.rules import report_summaries
from emotrace.sessions.store import SessionStore
from emotrace.sessions.types import ModelInfo
from session_streams import CLASSES, onehot
from test_i18n import english_words

PATIENT = "P-035"
#: What the clinician typed or chose (names, labels, notes) and the model's name: data, shown as
#: entered in any language.
DATA = (PATIENT, "semana-0", "semana-1", "sin-rostro", "cambio de tema", "ejercicio",
        "problema técnico", "notas privadas", "default")  # fmt: skip
#: A few texts of each section of the Spanish report (semana-1 with its trend and notes).
SPANISH = (
    "Informe de la sesión:", "Calidad de los datos", "10,4", "enfado 28 %",
    "tristeza 42 %", "alegría 21 %", "neutral 10 %", "Línea de tiempo de las emociones",
    "Relativo a la línea base del paciente", "fijada el", "rostro visible 30,0 s (300 imágenes)",
    "Atención (orientación de la cabeza)", "Evolución entre sesiones", "proporción de alegría (%)",
    "Tramos excluidos", "excluido:", "Segmentos", "Notas", "valencia media",
)  # fmt: skip
FPS = 10
_WORD = re.compile(r"[A-Za-zÀ-ÿ]{4,}")

#: (seconds, what the face shows: an emotion, "rest", or None for no face, yaw in degrees).
Piece = tuple[float, str | None, float]


def _rows(pieces: Sequence[Piece], start_s: float = 0.0, first: int = 0) -> list[tuple]:
    """Frame rows (with head orientation) for ``pieces`` at 10 frames/s from ``start_s``."""
    rng = np.random.default_rng(3)
    rows: list[tuple] = []
    i, t = first, start_s
    for seconds, shown, yaw in pieces:
        end = t + seconds
        while t < end - 1e-9:
            if shown is None:
                rows.append((i, t, 0, *[None] * 10))
            else:
                if shown == "rest":  # a resting face this model reads as mostly sad
                    p = onehot("sad", 0.4) * rng.uniform(0.85, 1.15, len(CLASSES))
                    p[CLASSES.index("neutral")] += 0.2
                    p /= p.sum()
                else:
                    p = onehot(shown, 0.8)
                probs = p.astype("<f4").tobytes()
                rows.append((i, t, 1, 1, 10, 10, 80, 80, 0.9, probs, yaw, 2.0, 1.0))
            i += 1
            t = round(t + 1 / FPS, 6)
    return rows


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report-i18n") / "ws.sqlite"
    sha = hashlib.sha256(default_model_path("default").read_bytes()).hexdigest()
    model = ModelInfo("default", "1", sha)  # the bundled model: calibrated labels are drawn
    with SessionStore(path, create=True) as store:
        earlier = store.create_session("semana-0", PATIENT, CLASSES, model=model)
        store.append(earlier, _rows([(30, "rest", 0.0), (30, "happy", 0.0)]))
        store.finish(earlier)
        sid = store.create_session("semana-1", PATIENT, CLASSES, model=model)
        first = _rows([(30, "rest", 0.0), (5, None, 0.0), (5, "happy", 0.0), (5, "happy", 40.0),
                       (5, "happy", 0.0)])  # fmt: skip
        # Ten seconds not recorded (a pause), then anger and a calm end.
        then = _rows([(20, "angry", 0.0), (10, "neutral", 0.0)], start_s=60.0, first=len(first))
        store.append(sid, first + then)
        store.finish(sid)
        store.add_marker(sid, "cambio de tema", 37.0)
        store.add_marker(sid, "ejercicio", 60.0, end_s=80.0)
        store.add_marker(sid, "problema técnico", 82.0, end_s=85.0, excluded=True)
        store.update(sid, notes="notas privadas")
        store.set_baseline(sid, 0.0, 30.0)
        empty = store.create_session("sin-rostro", PATIENT, CLASSES, model=model)
        store.append(empty, _rows([(10, None, 0.0)]))
        store.finish(empty, "interrupted")
    return path


class _Text(HTMLParser):
    """What a reader sees or hears: text (the page's title and the charts' too) and labels,
    less a command (``<code>``) and a citation (``<cite>``), written as they are in any
    language."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("style", "code", "cite")
        self.parts += [value for name, value in attrs if name == "aria-label" and value]

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "code", "cite")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _text(html: str) -> str:
    """The report's readable text less the user's data and emotrace's version."""
    parser = _Text()
    parser.feed(html)
    text = " ".join(" ".join(parser.parts).split())
    for data in (*DATA, f"emotrace {__version__}"):
        text = text.replace(data, " ")
    return text


def _words(text: str) -> set[str]:
    """Words of four letters or more, less the user's data (a label shortened on the marker
    track, "probl…", is data too)."""
    words = {w.lower() for w in _WORD.findall(re.sub(r"\{\w*\}", " ", text))}
    data = {w.lower() for w in _WORD.findall(" ".join(DATA))}
    return {w for w in words if not any(d.startswith(w) for d in data)}


def _reports(workspace: Path, lang: str) -> dict[str, str]:
    """Every kind of report: with the trend and notes, with a baseline only, without a
    baseline (the earlier session), without any face."""
    with SessionStore(workspace, readonly=True) as store:
        out = {}
        for ref, trend in (("semana-1", True), ("semana-1", False), ("semana-0", False),
                           ("sin-rostro", False)):  # fmt: skip
            summary, others = report_summaries(store, f"{PATIENT}/{ref}", trend=trend)
            out[f"{ref} trend={trend}"] = render_report(summary, others, notes=True, lang=lang)
    return out


def test_the_spanish_report_has_no_english_and_writes_numbers_dates_and_emotions_in_spanish(
    workspace: Path,
) -> None:
    english, spanish = _reports(workspace, "en"), _reports(workspace, "es")
    vocabulary = set().union(*map(_words, catalog("es").values()))  # words Spanish text uses
    net = english_words()
    for name, html in spanish.items():
        assert html.startswith('<!DOCTYPE html>\n<html lang="es">'), name
        text = _text(html)
        words = _words(text)
        assert not words & net, f"{name}: English words {sorted(words & net)}"
        # Words the English report of the same session shows that no Spanish text uses.
        leaked = (words & _words(_text(english[name]))) - vocabulary
        assert not leaked, f"{name}: English words {sorted(leaked)}"
        assert not re.search(r"\d\.\d", text), f"{name}: a decimal point in Spanish"
        assert not re.search(r"\d{4}-\d\d-\d\d", text), f"{name}: a date written in English"
        assert re.search(r"\d{2}/\d{2}/\d{4} \d\d:\d\d", text), name  # the session's date
    full = _text(spanish["semana-1 trend=True"])
    missing = [expected for expected in SPANISH if expected not in full]
    assert not missing, missing
    assert re.search(r"Valencia media [+-]?0,\d\d, activación media [+-]?0,\d\d", full)
    no_face = _text(spanish["sin-rostro trend=False"])
    assert "No se detectó ningún rostro" in no_face and "interrumpida" in no_face
    # The English report keeps English: no word that only the Spanish text uses.
    only_spanish = vocabulary - set().union(*map(_words, catalog("es")))
    for name, html in english.items():
        assert html.startswith('<!DOCTYPE html>\n<html lang="en">'), name
        found = _words(_text(html)) & only_spanish
        assert not found, f"{name}: Spanish words {sorted(found)}"


def test_emotrace_report_lang_es_writes_the_spanish_report(workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "informe.html"
    args = ("report", f"{PATIENT}/semana-1", "--trend", "--workspace", workspace)
    result = emotrace(*args, "--lang", "es", "-o", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    html = out.read_text("utf-8")
    assert '<html lang="es">' in html and "Informe de la sesión: P-035" in html
    assert "Evolución entre sesiones" in html and "tristeza" in html
    default = emotrace(*args, "-o", tmp_path / "report.html", cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    assert '<html lang="en">' in (tmp_path / "report.html").read_text("utf-8")


def test_an_unknown_report_language_is_one_line_and_writes_nothing(
    workspace: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.html"
    result = emotrace("report", f"{PATIENT}/semana-1", "--lang", "fr", "-o", out,
                      "--workspace", workspace, cwd=tmp_path)  # fmt: skip
    assert_one_line_error(result, "--lang", "'fr'", "en", "es")
    assert not out.exists()
    with pytest.raises(ValueError, match=r"unknown language 'fr': choose one of en, es"):
        render_report(_summary(workspace), lang="fr")


def _summary(workspace: Path) -> SessionSummary:
    with SessionStore(workspace, readonly=True) as store:
        return report_summaries(store, f"{PATIENT}/semana-1")[0]


@pytest.mark.slow
def test_the_api_reports_in_the_language_asked_for(workspace: Path) -> None:
    """``?lang=es`` for the HTML and the PDF (printed from the Spanish HTML: the PDF says
    ``/Lang (es)`` and carries the Spanish title), a language emotrace lacks is a JSON 422."""
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from serve_helpers import running_server

    with (
        running_server(workspace) as server,
        httpx.Client(base_url=server.base, headers=server.auth, timeout=120) as client,
    ):
        sid = client.get("/api/v1/sessions").json()
        sid = next(s["id"] for s in sid if s["name"] == "semana-1")
        base = f"/api/v1/sessions/{sid}"
        spanish = client.get(f"{base}/report", params={"lang": "es", "compare": True})
        assert spanish.status_code == 200
        assert '<html lang="es">' in spanish.text and "Evolución entre sesiones" in spanish.text
        english = client.get(f"{base}/report")
        assert '<html lang="en">' in english.text and "Session report: P-035" in english.text
        for path in ("report", "report.pdf"):
            bad = client.get(f"{base}/{path}", params={"lang": "fr"})
            assert bad.status_code == 422, (path, bad.text)
            assert bad.json() == {
                "error": "invalid request",
                "detail": "unknown language 'fr': choose one of en, es",
            }
        schema = client.get("/api/v1/openapi.json").json()
        for path in ("report", "report.pdf"):
            params = schema["paths"][f"/api/v1/sessions/{{session_id}}/{path}"]["get"]
            lang = next(p for p in params["parameters"] if p["name"] == "lang")
            assert lang["schema"]["enum"] == list(LANGUAGES)
        if find_chromium() is None:
            return  # the PDF needs Chromium; the HTML is checked above
        pdf = client.get(f"{base}/report.pdf", params={"lang": "es"})
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert b"/Lang (es)" in pdf.content
    title = re.search(rb"/Title <FEFF([0-9A-F]+)>", pdf.content)
    assert title and bytes.fromhex(title.group(1).decode()).decode("utf-16-be") == (
        "informe de sesión de emotrace P-035"
    )
