"""Datasets: readers for common layouts, preprocessing cache, EDA report, batched augmentation."""

from emotrace.data.cache import PreparedDataset, SplitArrays, load, prepare, save
from emotrace.data.readers import open_dataset
from emotrace.data.types import DatasetIndex, Entry, Sample, Skipped

__all__ = [
    "DatasetIndex",
    "Entry",
    "PreparedDataset",
    "Sample",
    "Skipped",
    "SplitArrays",
    "load",
    "open_dataset",
    "prepare",
    "save",
]
