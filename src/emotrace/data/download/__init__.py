"""``emotrace data download``: fetch from Roboflow, Hugging Face or Kaggle, unpack safely.

Each service module resolves its dataset to one archive and downloads it (resumably, with size and
checksum checks where the service gives them); :mod:`._install` unpacks it with the checks of
:mod:`.archive`, finds the dataset with emotrace's readers and moves it into place atomically with a
completion marker, so a second run does nothing. This is the only code in emotrace that uses the
network, and only when asked to.
"""

from emotrace.data.download._http import ProgressFactory
from emotrace.data.download._install import MARKER, DownloadResult, Source, read_marker
from emotrace.data.download.archive import DEFAULT_MAX_BYTES, unpack
from emotrace.data.download.hf import download_hf
from emotrace.data.download.kaggle import download_kaggle
from emotrace.data.download.roboflow import download_roboflow

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MARKER",
    "DownloadResult",
    "ProgressFactory",
    "Source",
    "download_hf",
    "download_kaggle",
    "download_roboflow",
    "read_marker",
    "unpack",
]
