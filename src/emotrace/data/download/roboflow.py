"""Roboflow: a dataset version's classification export in folder layout, over Roboflow's REST API.

Plain HTTP rather than the ``roboflow`` package: that package requires matplotlib, Pillow, pinned
``opencv-python-headless``, pi-heif, requests, tqdm and more, all to make two calls. The REST API
is documented and small: ``GET {API}/{workspace}/{project}/{version}/folder?api_key=KEY`` answers
``202`` with ``{"progress": ...}`` while Roboflow builds the export, then ``200`` with
``{"export": {"link": URL}}``; the link is a zip with ``train/ valid/ test/`` class folders.
``ROBOFLOW_API_URL`` points elsewhere (a mirror, or the tests' local server).
"""

from __future__ import annotations

import os
import re
import time
import urllib.parse
from pathlib import Path

from emotrace.data.download._http import HTTPFailure, ProgressFactory, download, get_json
from emotrace.data.download._install import (
    DownloadResult,
    Fetched,
    Source,
    install,
)
from emotrace.data.download.archive import DEFAULT_MAX_BYTES
from emotrace.errors import DownloadError

API_URL = "https://api.roboflow.com"
KEY_VARIABLE = "ROBOFLOW_API_KEY"
#: Roboflow's export format for single-label classification as class folders.
EXPORT_FORMAT = "folder"
POLL_S = 1.0
EXPORT_TIMEOUT_S = 30 * 60
_REF = re.compile(r"^([\w.-]+)/([\w.-]+)/(\d+)$")


def parse_ref(ref: str) -> tuple[str, str, int]:
    """``WORKSPACE/PROJECT/VERSION`` -> its parts; a one-line error for anything else."""
    match = _REF.match(ref.strip().strip("/"))
    if not match:
        raise DownloadError(
            f"{ref!r}: expected WORKSPACE/PROJECT/VERSION, e.g. my-team/fer-faces/3 "
            "(the last parts of the dataset's URL on roboflow.com)"
        )
    return match[1], match[2], int(match[3])


def download_roboflow(
    ref: str,
    out: Path | str,
    *,
    api_key: str | None = None,
    progress: ProgressFactory | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> DownloadResult:
    """Download Roboflow dataset version ``ref`` (``WORKSPACE/PROJECT/VERSION``) into ``out``.

    The key is ``api_key`` or ``$ROBOFLOW_API_KEY``. A finished ``out`` is left as it is.
    """
    workspace, project, version = parse_ref(ref)
    source = Source("roboflow", f"{workspace}/{project}/{version}")
    key_from = "--api-key" if api_key else KEY_VARIABLE
    key = api_key or os.environ.get(KEY_VARIABLE, "")

    def fetch(work: Path) -> Fetched:
        if not key.strip():
            raise DownloadError(
                f"Roboflow needs an API key: set {KEY_VARIABLE} or pass --api-key "
                "(roboflow.com > Settings > API Keys)"
            )
        link = _export_link(source.ref, key.strip(), key_from, progress)
        part = work / "roboflow.zip.part"
        done = download(link, part, label=f"{source.ref}.zip", progress=progress)
        return Fetched(
            path=done.path,
            name=f"{project}-{version}.zip",
            discard=lambda: part.unlink(missing_ok=True),
            details={"md5_checked": done.md5_checked},
        )

    return install(source, Path(out), fetch, max_bytes=max_bytes)


def _export_link(ref: str, key: str, key_from: str, progress: ProgressFactory | None) -> str:
    base = os.environ.get("ROBOFLOW_API_URL", API_URL).rstrip("/")
    query = urllib.parse.urlencode({"api_key": key, "nocache": "true"})
    url = f"{base}/{ref}/{EXPORT_FORMAT}?{query}"
    deadline = time.monotonic() + EXPORT_TIMEOUT_S
    waiting = False
    while True:
        try:
            status, payload = get_json(url)
        except HTTPFailure as failure:
            raise _explain(failure, ref, key_from) from None
        if status != 202:
            break
        # Roboflow is still building this export (its "progress" is coarse): a pulsing bar.
        if not waiting and progress is not None:
            progress("Roboflow is preparing the export", None)
        waiting = True
        if time.monotonic() > deadline:
            raise DownloadError(f"Roboflow is still preparing the export of {ref}; try again later")
        time.sleep(POLL_S)
    export = payload.get("export") if isinstance(payload, dict) else None
    link = export.get("link") if isinstance(export, dict) else None
    if not isinstance(link, str) or not link.startswith(("http://", "https://")):
        raise DownloadError(f"Roboflow gave no download link for {ref} in {EXPORT_FORMAT} format")
    return link


def _explain(failure: HTTPFailure, ref: str, key_from: str) -> DownloadError:
    reason = failure.message()
    if failure.status in (401, 403):
        return DownloadError(
            f"Roboflow rejected the API key from {key_from} ({reason}); "
            f"set {KEY_VARIABLE} to a key of a workspace that can read {ref}"
        )
    if failure.status == 404:
        return DownloadError(f"Roboflow has no dataset version {ref} ({reason})")
    return DownloadError(f"Roboflow answered HTTP {failure.status} for {ref}: {reason}")
