"""Which face detectors there are, and every default of their settings, written once.

Imports nothing heavy (no OpenCV): the command line reads these to build its parser, so
``emotrace --help`` stays instant, and the detectors, the settings and the factory all take their
defaults from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from emotrace.errors import ConfigError

DetectorKind = Literal["haar", "yunet"]
DETECTOR_KINDS: tuple[DetectorKind, ...] = ("yunet", "haar")
#: Defaults of the settings that tune one detector only, by detector. YuNet: least score of a
#: reported face, and the overlap above which two are merged (OpenCV Zoo's defaults would be
#: 0.9 / 0.3; 0.7 keeps grimacing and turned faces, still no false face on the real photos we
#: test with). Haar: the image-pyramid step.
TUNING_DEFAULTS: dict[str, dict[str, float]] = {
    "yunet": {"score_threshold": 0.7, "nms_threshold": 0.3},
    "haar": {"scale_factor": 1.1},
}
#: Smallest face side each detector reports by default, in the pixels it sees (after
#: downscaling). YuNet is trained on faces from about 10 px; Haar's cascade window is 24 px and
#: its false faces are mostly small, so it starts higher.
DEFAULT_MIN_SIZE: dict[str, int] = {"yunet": 10, "haar": 30}
#: Frames are detected at most this large on their longer side: YuNet is trained for faces of
#: roughly 10-300 px, and a 4K frame costs 27x a 640x480 one for faces that are large anyway.
#: Crowded frames lose nothing to it: a 5x5 video-call gallery at 1080p keeps every face
#: (``benchmarks/bench_gallery.py``).
DEFAULT_MAX_SIDE = 640


def detector_kind(kind: str | None = None, model: str | Path | None = None) -> DetectorKind:
    """Which detector ``kind`` and ``model`` name: ``kind`` when given, else Haar for a cascade
    ``.xml`` and YuNet otherwise. An unknown ``kind`` is a :class:`ConfigError`."""
    if kind is None:
        return "haar" if model is not None and str(model).lower().endswith(".xml") else "yunet"
    if kind in DETECTOR_KINDS:
        return kind
    raise ConfigError(f"unknown face detector {kind!r}; use 'yunet' or 'haar'")
