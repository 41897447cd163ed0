"""``emotrace serve``: the clinician's web app and the REST API (see :mod:`emotrace.server`)."""

from __future__ import annotations

import argparse
from typing import Any

from emotrace.cli._common import add_workspace_option, positive_float, positive_int
from emotrace.cli._pipeline import (
    add_crowd_options,
    add_pipeline_options,
    crowd_options_from,
    pipeline_options_from,
)
from emotrace.video.defaults import DEFAULT_FILE_MODEL

DEFAULT_PORT = 8765


def _port(text: str) -> int:
    value = int(text)
    # Out of range, the socket's bind() raises OverflowError, which reads as a crash.
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, got {value}")
    return value


def add_server_options(p: argparse.ArgumentParser) -> None:
    """``--host --port --allow-remote --max-upload-mb --max-video-mb``, shared with ``live``'s
    web fallback."""
    g = p.add_argument_group("web server")
    g.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    g.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    g.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other machines can reach (plain HTTP; the token still applies)",
    )
    g.add_argument(
        "--max-upload-mb",
        type=positive_float,
        default=10.0,
        metavar="MB",
        help="largest upload, request body or frame (default 10)",
    )
    g.add_argument(
        "--max-video-mb",
        type=positive_float,
        default=16 * 1024.0,
        metavar="MB",
        help="largest video file a file session may upload (default 16384, 16 GB); it is kept "
        "in a private temporary folder only while it is analysed",
    )


def add_parser(sub: Any) -> None:
    """Register ``serve``."""
    p = sub.add_parser(
        "serve", help="the clinician's web app and REST API in your browser (Ctrl+C stops)"
    )
    add_server_options(p)
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="inference worker threads, each with its own face detector "
        "(default: one per core, at most 4)",
    )
    add_pipeline_options(p)
    p.add_argument(
        "--file-model",
        default=DEFAULT_FILE_MODEL,
        metavar="MODEL",
        help=f"the model uploaded videos (file sessions) are analysed with (default "
        f"{DEFAULT_FILE_MODEL}; --model is for live sessions)",
    )
    add_crowd_options(p)
    add_workspace_option(p)
    p.set_defaults(handler=run)


def config_from(args: argparse.Namespace) -> Any:
    """The :class:`~emotrace.server.ServerConfig` for parsed ``serve``/``live`` options."""
    from emotrace.errors import require

    require("fastapi", "serve")
    require("uvicorn", "serve")
    from emotrace.server.state import ServerConfig

    # `live` opening the page has no --workers; and its --max-frames, --every belong to files.
    pipeline = pipeline_options_from(args, every=1, max_frames=None)
    return ServerConfig(
        host=args.host,
        port=args.port,
        workspace=args.workspace,
        pipeline=pipeline,
        crowd=crowd_options_from(args),
        # `live` opening the page has no --file-model: its file sessions get the same default.
        file_model=getattr(args, "file_model", DEFAULT_FILE_MODEL),
        workers=getattr(args, "workers", None),
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_video_bytes=int(args.max_video_mb * 1024 * 1024),
        allow_remote=args.allow_remote,
    )


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl+C."""
    config = config_from(args)
    from emotrace.server.runner import serve

    serve(config, open_browser=args.open)
    return 0
