"""Dataset readers. :func:`emotrace.data.open_dataset` picks one from the layout."""

from emotrace.data.readers.folder import read_class_folders

__all__ = ["read_class_folders"]
