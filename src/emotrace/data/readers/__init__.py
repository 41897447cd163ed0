"""Dataset readers. :func:`open_dataset` picks one from the layout (or the ``format`` given)."""

from emotrace.data.readers.affectnet import read_affectnet_csv, read_affectnet_folders
from emotrace.data.readers.detect import FORMATS, detect_format, open_dataset
from emotrace.data.readers.expw import read_expw
from emotrace.data.readers.fer2013_csv import read_fer2013_csv
from emotrace.data.readers.ferplus import read_ferplus
from emotrace.data.readers.folder import read_class_folders
from emotrace.data.readers.jaffe import read_jaffe
from emotrace.data.readers.rafdb import read_rafdb, read_rafdb_folders
from emotrace.data.readers.roboflow import read_roboflow_csv

__all__ = [
    "FORMATS",
    "detect_format",
    "open_dataset",
    "read_affectnet_csv",
    "read_affectnet_folders",
    "read_class_folders",
    "read_expw",
    "read_fer2013_csv",
    "read_ferplus",
    "read_jaffe",
    "read_rafdb",
    "read_rafdb_folders",
    "read_roboflow_csv",
]
