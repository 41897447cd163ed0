"""The ``emotrace`` command line: thin wrappers over the Python API."""

from emotrace.cli.main import main

__all__ = ["main"]
