"""Fuzz the whole OpenAPI schema of a real ``emotrace serve`` with schemathesis.

Checks: no server error, every status, content type, header and body as documented, invalid
input rejected, auth not ignored, ``Allow`` on 405. ``positive_data_acceptance`` is left out on
purpose: a schema-valid upload need not be an image, and a schema-valid id need not exist.

The server has no Chromium, so ``report.pdf`` answers its documented 503 at once (the one 5xx
allowed, and only there): printing a PDF for every fuzzed call took half of this test's time. Its
200 answer is checked in test_serve_api.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("schemathesis")

from serve_helpers import running_server

pytestmark = pytest.mark.slow
#: Examples per operation: enough to reach every error branch, small enough for < 1 minute.
EXAMPLES = 8
#: schemathesis.toml: without Chromium, report.pdf's documented 503 is its expected answer.
PDF_WITHOUT_CHROMIUM = """
[[operations]]
include-operation-id = "report_pdf"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]
"""


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    no_chromium = {"EMOTRACE_CHROMIUM": str(tmp_path / "no-chromium-here")}
    config = tmp_path / "schemathesis.toml"
    config.write_text(PDF_WITHOUT_CHROMIUM)
    with running_server(tmp_path / "workspace", env=no_chromium) as server:
        result = subprocess.run(
            [
                cli, "--config-file", str(config), "run", f"{server.base}/api/v1/openapi.json",
                "--header", f"Authorization: Bearer {server.token}",
                "--checks", "all", "--exclude-checks", "positive_data_acceptance",
                "--max-examples", str(EXAMPLES), "--workers", "1", "--seed", "1",
                "--report", "junit", "--report-dir", str(tmp_path / "report"),
            ],
            capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
        )  # fmt: skip
        log = "".join(server.output)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
    assert "Traceback" not in log and "Exception in ASGI" not in log, log[-4000:]
