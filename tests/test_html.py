"""emotrace._html: the one page shell of the dataset, evaluation and session reports."""

from __future__ import annotations

import inspect

import pytest

from emotrace import _html
from emotrace.data import _report_html
from emotrace.evaluation import report as evaluation_report
from emotrace.sessions import report as session_report


def test_page_is_self_contained_and_escapes_its_title() -> None:
    html = _html.page("a <b> & 'c'", "<p>body</p>", "p{color:red}")
    assert html.startswith("<!DOCTYPE html>") and html.endswith("</html>\n")
    assert "<title>a &lt;b&gt; &amp; &#x27;c&#x27;</title>" in html
    assert f'content="{_html.CSP}"' in html and "default-src 'none'" in html
    # The report's own rules come after the shared ones, so they win.
    assert html.index(_html.BASE_CSS) < html.index("p{color:red}") < html.index("<p>body</p>")


@pytest.mark.parametrize("module", [_report_html, evaluation_report, session_report])
def test_reports_build_their_page_with_the_shared_shell(module: object) -> None:
    source = inspect.getsource(module)  # type: ignore[arg-type]
    assert "from emotrace._html import page" in source
    assert "<!DOCTYPE" not in source.upper() and "<head>" not in source
