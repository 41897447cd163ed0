"""Session names are unique per patient, and pseudonyms follow one stated rule (issue 33, item 11).

P-018 may have its own "week-1" although P-017 has one; a name that several patients use is
refused as a reference with a one-line error that names them, and ``PATIENT/NAME`` or the id
picks one (store, CLI, API). Pseudonyms: letters (accents allowed), digits, '.', '_', '-', no
spaces, in Unicode NFC; the page states the rule beside the field and in the browser's message.
Real SQLite files, the CLI's main, a real server on loopback and Debian's Chromium.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import assert_one_line_error
from conftest import run_emotrace_in_process as emotrace
from emotrace.errors import SessionError, SessionExists
from emotrace.sessions import rules
from emotrace.sessions.recorder import record_session
from emotrace.sessions.store import SessionStore
from emotrace.sessions.types import check_name
from session_streams import CLASSES, stream

NFD_MARIA = unicodedata.normalize("NFD", "María")


def _record(workspace: Path, name: str, patient: str) -> None:
    record_session(stream([(3, "happy"), (2, "sad")]), name, patient, CLASSES, workspace=workspace)


@pytest.fixture
def two_patients(tmp_path: Path) -> Path:
    _record(tmp_path, "week-1", "P-017")
    _record(tmp_path, "week-1", "P-018")  # refused before: names were unique per workspace
    _record(tmp_path, "intake", "P-018")
    return tmp_path


def test_names_are_unique_per_patient_and_a_shared_name_is_ambiguous(two_patients: Path) -> None:
    with SessionStore(two_patients) as store:
        with pytest.raises(SessionError, match=r"used by patients P-017, P-018.*PATIENT/NAME"):
            store.get("week-1")
        first, second = store.get("P-017/week-1"), store.get("P-018/week-1")
        assert (first.patient, second.patient) == ("P-017", "P-018")
        assert store.get(str(second.id)) == second
        assert store.get("intake").patient == "P-018"  # one patient's name needs no prefix
        rules.ensure_name_free(store, "week-2", "P-017")
        with pytest.raises(SessionExists, match="'week-1' already exists for patient P-018"):
            rules.ensure_name_free(store, "week-1", "P-018")
        with pytest.raises(SessionError, match="no session 'P-019/week-1'"):
            store.get("P-019/week-1")
    with pytest.raises(SessionExists):  # creating checks again, atomically
        _record(two_patients, "week-1", "P-018")


def test_pseudonyms_allow_accents_in_nfc_and_never_spaces(tmp_path: Path) -> None:
    assert check_name(NFD_MARIA, "patient pseudonym") == "María"
    assert check_name("Núñez-3", "patient pseudonym") == "Núñez-3"
    for bad in ("Maria Lopez Garcia", "_x", "a/b", "María López"):
        with pytest.raises(SessionError, match=r"accents allowed.*no spaces"):
            check_name(bad, "patient pseudonym")
    _record(tmp_path, "week-1", NFD_MARIA)  # typed with a combining accent: stored in NFC
    with SessionStore(tmp_path) as store:
        assert store.get("María/week-1").patient == "María"
        assert store.get(f"{NFD_MARIA}/week-1").patient == "María"


def test_cli_refuses_an_ambiguous_name_in_one_line_and_takes_patient_slash_name(
    two_patients: Path, tmp_path: Path
) -> None:
    ws = ["--workspace", str(two_patients)]
    for command in (
        ["sessions", "show", "week-1"],
        ["report", "week-1", "-o", str(tmp_path / "r.html")],
        ["sessions", "export", "week-1", "-o", str(tmp_path / "x.csv")],
    ):
        result = emotrace(*command, *ws, cwd=tmp_path)
        assert_one_line_error(result, "week-1", "P-017, P-018", "PATIENT/NAME")
    shown = json.loads(emotrace("sessions", "show", "P-018/week-1", "--json", *ws).stdout)
    assert shown["session"]["patient"] == "P-018"
    report = emotrace("report", "P-017/week-1", "-o", str(tmp_path / "r.html"), *ws, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "P-017" in (tmp_path / "r.html").read_text()
    exported = emotrace("sessions", "export", "P-018/week-1", "-o", str(tmp_path / "x.csv"), *ws)
    assert exported.returncode == 0, exported.stderr
    video = ["analyze", "call.avi", "--session", "s1", "--consent", *ws]
    spaced = emotrace(*video, "--patient", "Maria Lopez Garcia", cwd=tmp_path)
    assert_one_line_error(spaced, "'Maria Lopez Garcia'", "accents allowed", "no spaces")


def test_a_patients_sessions_are_found_however_the_pseudonym_was_typed(tmp_path: Path) -> None:
    _record(tmp_path, "week-1", "María")
    with SessionStore(tmp_path) as store:
        assert [i.name for i in store.sessions(NFD_MARIA)] == ["week-1"]


# -- the real server and page --------------------------------------------------------------

# The store and CLI tests above run without the web extra; these need it (and Chromium).
SERVE = BROWSER = False
try:
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from serve_helpers import Server, running_server

    SERVE = True
    sync_api = pytest.importorskip("playwright.sync_api")
    from test_serve_browser import BINARY, TIMEOUT_MS

    BROWSER = Path(BINARY).is_file()
    WHY = "needs Chromium (Debian: apt-get install chromium chromium-driver)"
except pytest.skip.Exception as missing:
    WHY = f"needs the web extra and Playwright ({missing})"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("serve-names")) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, headers=server.auth, timeout=60) as c:
        yield c


def _create(client: httpx.Client, patient: str, name: str) -> httpx.Response:
    body = {"patient": patient, "name": name, "consent": True}
    created = client.post("/api/v1/sessions", json=body)
    if created.status_code == 201:
        assert client.post(f"/api/v1/sessions/{created.json()['id']}/finish").status_code == 200
    return created


@pytest.mark.slow
@pytest.mark.skipif(not SERVE, reason="needs the web extra (fastapi, httpx)")
def test_api_names_per_patient_and_the_pseudonym_rule(client: httpx.Client) -> None:
    assert _create(client, "P-017", "week-1").status_code == 201
    other = _create(client, "P-018", "week-1")
    assert other.status_code == 201, other.text
    again = _create(client, "P-018", "week-1")
    assert again.status_code == 409
    assert again.json()["detail"] == (
        "session 'week-1' already exists for patient P-018; choose another name"
    )
    spaced = client.post(
        "/api/v1/sessions", json={"patient": "Maria Lopez Garcia", "consent": True}
    )
    assert spaced.status_code == 422
    (error,) = spaced.json()["detail"]
    assert error["loc"] == ["body", "patient"] and "accents allowed" in error["msg"]
    maria = _create(client, NFD_MARIA, "week-1")
    assert maria.status_code == 201, maria.text
    assert maria.json()["patient"] == "María"  # NFC: one pseudonym however it was typed
    assert _create(client, "María", "week-1").status_code == 409
    report = client.get(f"/api/v1/sessions/{maria.json()['id']}/report?download=true")
    assert report.status_code == 200
    disposition = report.headers["content-disposition"]
    assert "filename*=UTF-8''Mar%C3%ADa_session" in disposition


def test_a_pseudonym_in_a_path_or_query_follows_the_same_rule(client: httpx.Client) -> None:
    # The path's rule is the server's (accents and other alphabets), not a JSON-Schema regex
    # whose \w is ASCII: the schema says it in words, and the server answers by the rule.
    assert client.get("/api/v1/patients/María/baselines").status_code == 200
    assert client.get(f"/api/v1/patients/{NFD_MARIA}/baselines").status_code == 200
    spaced = client.get("/api/v1/patients/Maria Lopez/baselines")
    assert spaced.status_code == 422 and "accents allowed" in spaced.text
    schema = client.get("/api/v1/openapi.json").json()
    (param,) = schema["paths"]["/api/v1/patients/{patient}/baselines"]["get"]["parameters"]
    assert "pattern" not in param["schema"] and "accents allowed" in param["schema"]["description"]


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not BROWSER, reason=WHY)
def test_the_page_states_the_pseudonym_rule_and_accepts_accents(server: Server) -> None:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=BINARY, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
        tab: Any = browser.new_page()
        tab.set_default_timeout(TIMEOUT_MS)
        tab.goto(server.url)
        tab.wait_for_selector("#view-sessions:not([hidden])")
        tab.click("#nav-new")
        rules_text = tab.inner_text("#name-rules")
        assert "accents allowed" in rules_text and "unique per patient" in rules_text
        tab.fill("#patient", "Maria Lopez Garcia")
        message = tab.eval_on_selector("#patient", "e => e.validationMessage")
        assert "accents allowed" in message and "without spaces" in message, message
        assert "requested format" not in message
        for good in ("María", "Núñez-3", "P-017"):
            tab.fill("#patient", good)
            assert tab.eval_on_selector("#patient", "e => e.checkValidity()"), good
        tab.fill("#session-name", "week 1")
        assert "accents allowed" in tab.eval_on_selector(
            "#session-name", "e => e.validationMessage"
        )
        browser.close()
