"""Finding, fetching and reading pretrained weight files.

Weights live where torch hub keeps them (``torch.hub.get_dir()/checkpoints``, which follows
``$TORCH_HOME``; by default ``~/.cache/torch/hub/checkpoints``), so a file another PyTorch project
already downloaded is reused and an offline machine only needs the file copied there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch

from emotrace.errors import ModelError

MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"
MOBILENET_V2_URL = "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth"
MOBILENET_V2_SHA256_PREFIX = "b0353104"

# (url, destination, hash_prefix) -> None; raises on failure. Injectable so tests stay offline.
Downloader = Callable[[str, str, str | None], None]


def checkpoint_dir() -> Path:
    """Torch hub's checkpoint cache folder (honours ``$TORCH_HOME``); may not exist yet."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks so large files do not fill memory."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _default_download(url: str, dst: str, hash_prefix: str | None) -> None:
    torch.hub.download_url_to_file(url, dst, hash_prefix=hash_prefix, progress=True)


def find_or_fetch_weights(
    filename: str = MOBILENET_V2_FILE,
    url: str = MOBILENET_V2_URL,
    sha256_prefix: str | None = MOBILENET_V2_SHA256_PREFIX,
    *,
    download: Downloader | None = None,
) -> Path:
    """Path of a verified weights file in the torch hub cache, downloading it when absent.

    A file already in the cache must match ``sha256_prefix`` (the first hex digits of its SHA-256,
    which torch hub puts in the file name); a mismatch means a truncated or foreign file and raises
    :class:`ModelError` rather than loading something wrong. A failed download raises
    :class:`ModelError` saying where to put the file by hand.
    """
    folder = checkpoint_dir()
    path = folder / filename
    if path.is_file():
        _verify(path, sha256_prefix)
        return path
    fetch = download or _default_download
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fetch(url, str(path), sha256_prefix)
    except Exception as exc:  # urllib, OS and hash errors all mean the same thing to the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(
            f"could not download {filename} from {url} ({reason}); "
            f"download it yourself and place it at {path}"
        ) from exc
    if not path.is_file():
        raise ModelError(f"download of {url} left no file at {path}; place {filename} there")
    _verify(path, sha256_prefix)
    return path


def _verify(path: Path, sha256_prefix: str | None) -> None:
    if sha256_prefix is None:
        return
    digest = sha256_of(path)
    if not digest.startswith(sha256_prefix.lower()):
        raise ModelError(
            f"{path} is corrupted or not the expected file (sha256 {digest[:12]}..., expected "
            f"{sha256_prefix}...); delete it and download it again"
        )


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """Read a PyTorch state dict with ``weights_only=True`` (no arbitrary unpickling).

    Anything that is not a readable mapping of names to tensors raises :class:`ModelError`.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and OS errors: the file is unusable either way
        raise ModelError(f"cannot read weights file {path}: {type(exc).__name__}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ModelError(f"{path} is not a PyTorch state dict of tensors")
    return dict(state)
