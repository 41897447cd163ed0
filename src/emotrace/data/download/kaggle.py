"""Kaggle: a dataset's zip from Kaggle's public API, with the user's API credentials.

Plain HTTP rather than the ``kaggle`` package: that package pulls in kagglesdk, protobuf, requests,
bleach, python-slugify and tqdm, and creates ``~/.kaggle`` on import. The API call is one
documented GET: ``{endpoint}/api/v1/datasets/download/OWNER/DATASET`` with HTTP basic auth
(username, key), answered by a redirect to the zip on Cloud Storage, whose ``X-Goog-Hash`` gives
its MD5. Credentials are read as the kaggle client reads them: ``KAGGLE_USERNAME`` and
``KAGGLE_KEY``, else ``kaggle.json`` in ``$KAGGLE_CONFIG_DIR``, ``~/.kaggle`` or
``$XDG_CONFIG_HOME/kaggle``. ``KAGGLE_API_ENDPOINT`` points elsewhere, as it does for kagglehub.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

from emotrace.data.download._http import HTTPFailure, ProgressFactory, download
from emotrace.data.download._install import DownloadResult, Fetched, Source, install
from emotrace.data.download.archive import DEFAULT_MAX_BYTES
from emotrace.errors import DownloadError

ENDPOINT = "https://www.kaggle.com"
_REF = re.compile(r"^([\w.-]+)/([\w.-]+)$")
_URL_PREFIX = re.compile(r"^https?://(www\.)?kaggle\.com/datasets/")
_TOKEN_HINT = "kaggle.com > Settings > API > Create New Token"


def parse_ref(ref: str) -> tuple[str, str]:
    """``OWNER/DATASET`` (or the dataset's kaggle.com URL) -> its two parts."""
    match = _REF.match(_URL_PREFIX.sub("", ref.strip()).strip("/"))
    if not match:
        raise DownloadError(f"{ref!r}: expected OWNER/DATASET, e.g. msambare/fer2013")
    return match[1], match[2]


def credentials() -> tuple[str, str, str]:
    """``(username, key, where they came from)``; a one-line error naming what to set."""
    user, key = os.environ.get("KAGGLE_USERNAME", ""), os.environ.get("KAGGLE_KEY", "")
    if user and key:
        return user, key, "KAGGLE_USERNAME/KAGGLE_KEY"
    if user or key:
        missing = "KAGGLE_KEY" if user else "KAGGLE_USERNAME"
        raise DownloadError(f"Kaggle credentials incomplete: {missing} is not set")
    path = config_file()
    if not path.is_file():
        raise DownloadError(
            f"Kaggle needs credentials: set KAGGLE_USERNAME and KAGGLE_KEY, or save kaggle.json "
            f"({_TOKEN_HINT}) as {path}"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        user, key = str(config["username"]), str(config["key"])
    except (OSError, ValueError, KeyError, TypeError):
        raise DownloadError(
            f'{path}: expected {{"username": ..., "key": ...}} ({_TOKEN_HINT})'
        ) from None
    return user, key, str(path)


def config_file() -> Path:
    """Where the kaggle client looks for ``kaggle.json``."""
    folder = os.environ.get("KAGGLE_CONFIG_DIR")
    if folder:
        return Path(folder) / "kaggle.json"
    home = Path.home() / ".kaggle"
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kaggle"
    if not home.exists() and (xdg / "kaggle.json").is_file():
        return xdg / "kaggle.json"
    return home / "kaggle.json"


def download_kaggle(
    ref: str,
    out: Path | str,
    *,
    progress: ProgressFactory | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> DownloadResult:
    """Download Kaggle dataset ``ref`` (``OWNER/DATASET``) into ``out``; a finished one stays."""
    owner, name = parse_ref(ref)
    source = Source("kaggle", f"{owner}/{name}")

    def fetch(work: Path) -> Fetched:
        user, key, where = credentials()
        token = base64.b64encode(f"{user}:{key}".encode()).decode()
        base = os.environ.get("KAGGLE_API_ENDPOINT", ENDPOINT).rstrip("/").removesuffix("/api/v1")
        part = work / "kaggle.zip.part"
        done = download(
            f"{base}/api/v1/datasets/download/{owner}/{name}",
            part,
            label=f"{owner}/{name}.zip",
            progress=progress,
            secret_headers={"Authorization": f"Basic {token}"},
            on_failure=lambda failure: _explain(failure, source.ref, where),
        )
        return Fetched(
            path=done.path,
            name=f"{name}.zip",
            discard=lambda: part.unlink(missing_ok=True),
            details={"md5_checked": done.md5_checked},
        )

    return install(source, Path(out), fetch, max_bytes=max_bytes)


def _explain(failure: HTTPFailure, ref: str, where: str) -> DownloadError:
    reason = failure.message()
    if failure.status == 401:
        return DownloadError(
            f"Kaggle rejected the credentials from {where} ({reason}); {_TOKEN_HINT} gives new ones"
        )
    if failure.status == 403:
        return DownloadError(
            f"Kaggle refused {ref} ({reason}); accept the dataset's rules on kaggle.com first"
        )
    if failure.status == 404:
        return DownloadError(f"Kaggle has no dataset {ref} ({reason})")
    return DownloadError(f"Kaggle answered HTTP {failure.status} for {ref}: {reason}")
