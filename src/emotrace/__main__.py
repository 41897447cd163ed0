"""``python -m emotrace`` runs the CLI."""

from emotrace.cli.main import entry

entry()
