"""Entry point: builds the parser from the sub-command modules and maps errors to exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from emotrace import __version__
from emotrace._interrupts import interrupted, watch_interrupts
from emotrace.cli import (
    batch_cmd,
    compare_cmd,
    data_cmd,
    demo_cmd,
    evaluate_cmd,
    export_cmd,
    models_cmd,
    predict_cmd,
    serve_cmd,
    sessions_cmd,
    train_cmd,
    video_cmd,
)
from emotrace.errors import EmotraceError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

COMMANDS = (
    data_cmd,
    models_cmd,
    train_cmd,
    evaluate_cmd,
    compare_cmd,
    export_cmd,
    predict_cmd,
    demo_cmd,
    video_cmd,
    batch_cmd,
    sessions_cmd,
    serve_cmd,
)


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage mistakes end in one line, as every other error does, instead of the usage block.

    Sub-command parsers are made of the same class (``add_subparsers`` uses the parent's type).
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """As argparse's, remembering the innermost sub-command for the ``--help`` hint."""
        parsed, extras = super().parse_known_args(args, namespace)
        # Sub-command parsers finish first, so the innermost one names itself.
        if not hasattr(parsed, "help_prog"):
            parsed.help_prog = self.prog
        return parsed, extras

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """As argparse's; unknown arguments point at the sub-command's ``--help``."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.exit(
                EXIT_BAD_INPUT,
                f"emotrace: error: unrecognized arguments: {' '.join(extras)} "
                f"(see {parsed.help_prog} --help)\n",
            )
        return parsed

    def error(self, message: str) -> NoReturn:
        """Print ``emotrace: error: MESSAGE (see emotrace CMD --help)`` and exit with 2."""
        self.exit(EXIT_BAD_INPUT, f"emotrace: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full ``emotrace`` parser."""
    parser = OneLineErrorParser(
        prog="emotrace",
        description="Facial emotion recognition: datasets, training, inference, video, sessions.",
    )
    parser.add_argument("--version", action="version", version=f"emotrace {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 for bad input, 130 for Ctrl+C)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with watch_interrupts():
            code: int = args.handler(args)
            if interrupted():  # received, but its exception was swallowed on the way
                raise KeyboardInterrupt
        return code
    except EmotraceError as exc:
        print(f"emotrace: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("emotrace: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except OSError as exc:
        # A path the system refuses (a file where a folder must go, no permission, a full disk):
        # the user's to fix, so one line like any other bad input, not a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"emotrace: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def entry() -> None:
    """Console-script wrapper."""
    sys.exit(main())
