"""Hugging Face: one archive from a dataset repository, through ``huggingface_hub``.

``huggingface_hub`` is light, well kept, and already does what the Hub needs: ``HF_TOKEN`` (or
the token ``hf auth login`` stored), ``HF_ENDPOINT`` for mirrors, its shared cache (``HF_HOME``,
``HF_HUB_CACHE``) with resumable ``.incomplete`` files and a size check. emotrace adds the SHA-256
check of the cached blob (LFS files are stored under their SHA-256) and unpacks from the cache,
so a second dataset folder made from the same file costs no second download.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from emotrace.data.download._http import ProgressFactory
from emotrace.data.download._install import DownloadResult, Fetched, Source, install
from emotrace.data.download.archive import DEFAULT_MAX_BYTES
from emotrace.errors import DownloadError, require

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REPO = re.compile(r"^[\w.-]+/[\w.-]+$")


def download_hf(
    repo_id: str,
    out: Path | str,
    *,
    filename: str | None = None,
    revision: str | None = None,
    progress: ProgressFactory | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> DownloadResult:
    """Download ``filename`` of dataset repository ``repo_id`` and unpack it into ``out``.

    Without ``filename`` the repository's only archive is taken. A finished ``out`` stays as it is.
    """
    repo_id = repo_id.strip().removeprefix("datasets/").strip("/")
    if not _REPO.match(repo_id):
        raise DownloadError(f"{repo_id!r}: expected a dataset repository OWNER/NAME")
    source = Source("hf", repo_id, filename, revision)

    def fetch(work: Path) -> Fetched:
        require("huggingface_hub", "download")
        import huggingface_hub  # noqa: F401  (configures its loggers before _quiet_hub adjusts them)

        with _quiet_hub():
            name = filename or _only_archive(repo_id, revision)
            path, commit = _hub_download(repo_id, name, revision, progress)
        blob = path.resolve()
        details: dict[str, Any] = {"file": name, "commit": commit}
        if _SHA256.match(blob.name):
            _check_sha256(blob, name)
            details["sha256_checked"] = True
        return Fetched(path=path, name=Path(name).name, discard=blob.unlink, details=details)

    return install(source, Path(out), fetch, max_bytes=max_bytes)


@contextlib.contextmanager
def _quiet_hub() -> Iterator[None]:
    """Silence huggingface_hub's own log lines and warnings: emotrace reports in one line."""
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _only_archive(repo_id: str, revision: str | None) -> str:
    from huggingface_hub import HfApi

    try:
        files = HfApi().list_repo_files(repo_id, repo_type="dataset", revision=revision)
    except Exception as exc:
        raise _explain(exc, repo_id, None, revision) from None
    archives = [f for f in files if f.lower().endswith(ARCHIVE_SUFFIXES)]
    if len(archives) != 1:
        found = ", ".join(archives[:8]) if archives else "none"
        raise DownloadError(
            f"give --file: {repo_id} has {len(archives)} archives ({found}); "
            "e.g. --file affectnet.zip"
        )
    return archives[0]


def _hub_download(
    repo_id: str, name: str, revision: str | None, progress: ProgressFactory | None
) -> tuple[Path, str | None]:
    from huggingface_hub import constants, hf_hub_download

    if not constants.HF_HUB_OFFLINE:
        cached = _probe(repo_id, name, revision)
        if cached is not None:
            return cached, None
    try:
        path = hf_hub_download(
            repo_id,
            name,
            repo_type="dataset",
            revision=revision,
            tqdm_class=_bar_class(progress, name) if progress else None,
        )
    except Exception as exc:
        raise _explain(exc, repo_id, name, revision) from None
    # The cache keeps files under snapshots/<commit>/<name>.
    snapshot = Path(path)
    commit = snapshot.parents[len(Path(name).parts) - 1].name if "snapshots" in path else None
    return snapshot, commit


def _probe(repo_id: str, name: str, revision: str | None) -> Path | None:
    """One HEAD without retries, so an unreachable Hub fails at once (hf_hub_download retries
    connection errors for half a minute); when it is unreachable, a cached copy is used."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url, try_to_load_from_cache

    url = hf_hub_url(repo_id, name, repo_type="dataset", revision=revision)
    try:
        get_hf_file_metadata(url)
    except Exception as exc:
        if not _is_connection_error(exc):
            raise _explain(exc, repo_id, name, revision) from None
        cached = try_to_load_from_cache(repo_id, name, revision=revision, repo_type="dataset")
        if isinstance(cached, str):
            return Path(cached)
        raise _explain(exc, repo_id, name, revision) from None
    return None


def _bar_class(progress: ProgressFactory, label: str) -> Any:
    """A class huggingface_hub can use as its ``tqdm_class``, feeding emotrace's progress bars."""

    class Bar:
        def __init__(self, *args: Any, total: int | None = None, initial: int = 0, **kw: Any):
            self._advance: Callable[[int], None] = progress(label, total)
            if initial:
                self._advance(initial)

        def update(self, n: int | float | None = 1) -> None:
            self._advance(int(n or 0))

        def close(self) -> None:
            """Nothing to release; the CLI's progress context owns the bars."""

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

    return Bar


def _check_sha256(blob: Path, name: str) -> None:
    digest = hashlib.sha256()
    with blob.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != blob.name:
        blob.unlink(missing_ok=True)
        raise DownloadError(
            f"{name}: checksum mismatch (SHA-256 differs from the Hub's); the cached copy was "
            "removed, run the command again"
        )


def _explain(exc: Exception, repo_id: str, name: str | None, revision: str | None) -> Exception:
    """One line for each way huggingface_hub fails; unexpected errors pass through unchanged."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, GatedRepoError):
        return DownloadError(
            f"{repo_id} is gated: accept its conditions on the Hub and set HF_TOKEN to a token "
            "of that account"
        )
    if isinstance(exc, RepositoryNotFoundError):
        return DownloadError(
            f"Hugging Face has no dataset repository {repo_id} (or it is private: set HF_TOKEN "
            "to a token that can read it)"
        )
    if isinstance(exc, RevisionNotFoundError):
        return DownloadError(f"{repo_id} has no revision {revision!r}")
    if isinstance(exc, LocalEntryNotFoundError | OfflineModeIsEnabled):
        return DownloadError(
            f"cannot reach {constants.ENDPOINT} and {name or 'the file'} is not in the Hugging "
            "Face cache; check the network connection (or HF_ENDPOINT, HF_HUB_OFFLINE)"
        )
    if isinstance(exc, EntryNotFoundError):
        return DownloadError(f"{repo_id} has no file {name!r} (try --file with a listed name)")
    if isinstance(exc, HfHubHTTPError) and status in (401, 403):
        return DownloadError(
            f"Hugging Face rejected the token (HTTP {status}); set HF_TOKEN to a valid token "
            "or unset it for public datasets"
        )
    if isinstance(exc, HfHubHTTPError):
        return DownloadError(f"Hugging Face answered HTTP {status} for {repo_id}")
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        return DownloadError(f"{name}: size differs from the Hub's; run the command again")
    if _is_connection_error(exc):
        return DownloadError(
            f"cannot reach {constants.ENDPOINT}: {exc}; check the network connection"
        )
    return exc


def _is_connection_error(exc: BaseException) -> bool:
    """httpx's transport errors, without importing httpx's name (huggingface_hub vendors it)."""
    return any(cls.__name__ in ("TransportError", "ConnectError") for cls in type(exc).__mro__)
