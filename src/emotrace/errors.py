"""Exceptions emotrace raises for bad input. The CLI turns each into one line and exit code 2."""

from __future__ import annotations


class EmotraceError(Exception):
    """Base class: a problem with the user's input or environment, explained in one line."""


class UnknownLabelError(EmotraceError, ValueError):
    """A class name or code that is not in the emotion taxonomy."""


class DatasetError(EmotraceError, ValueError):
    """A dataset that cannot be read as asked (layout, empty class, bad row, missing split)."""


class UnreadableImageError(EmotraceError, OSError):
    """A file that is not a decodable image. Readers skip these and report them."""


class CacheError(EmotraceError, OSError):
    """A cache file that is missing, corrupted or written by something else."""


class ConfigError(EmotraceError, ValueError):
    """An unknown configuration key or an invalid value."""


class ModelError(EmotraceError, ValueError):
    """An unknown model name, or a model file that cannot be loaded or does not fit the data."""


class MissingDependencyError(EmotraceError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require(module: str, extra: str) -> None:
    """Raise :class:`MissingDependencyError` naming the extra when ``module`` cannot be imported."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(
            f"this needs {module}; install it with: pip install 'emotrace[{extra}]'"
        )


class InputError(EmotraceError, ValueError):
    """Images or arrays passed to the API that cannot be interpreted."""


class VideoError(EmotraceError, OSError):
    """A camera, video file, image folder or stream that cannot be opened or read to the end."""


class SessionError(EmotraceError, ValueError):
    """A session that does not exist, a bad session name or pseudonym, or an invalid record."""


class SessionExists(SessionError):
    """A new session's name is taken in its workspace."""


class SessionBusy(SessionError):
    """A session being recorded (by this process or another) cannot be changed this way."""


class StoreError(EmotraceError, OSError):
    """A session workspace that is not emotrace's, is newer than this version, or is corrupted."""


class DownloadError(EmotraceError, OSError):
    """A dataset download that cannot be done: credentials, a missing dataset, the network, disk."""


class ArchiveError(DownloadError):
    """A downloaded archive that is corrupt, or unsafe to unpack (escaping paths, links, a bomb)."""
