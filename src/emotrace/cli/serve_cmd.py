"""``emotrace serve``: the clinician's web app and the REST API (see :mod:`emotrace.server`)."""

from __future__ import annotations

import argparse
from typing import Any

from emotrace.cli._common import (
    add_detector_options,
    add_workspace_option,
    detector_tuning,
    positive_float,
    positive_int,
)

DEFAULT_PORT = 8765


def _port(text: str) -> int:
    value = int(text)
    # Out of range, the socket's bind() raises OverflowError, which reads as a crash.
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, got {value}")
    return value


def add_server_options(p: argparse.ArgumentParser) -> None:
    """``--host --port --allow-remote --max-upload-mb``, shared with ``live``'s web fallback."""
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


def add_parser(sub: Any) -> None:
    """Register ``serve``."""
    p = sub.add_parser(
        "serve", help="the clinician's web app and REST API in your browser (Ctrl+C stops)"
    )
    add_server_options(p)
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument(
        "--model", default="default", help="default, default-int8, an .onnx file or a run folder"
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="onnxruntime/OpenCV threads inside each inference worker (default 1)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="inference worker threads, each with its own face detector "
        "(default: one per core, at most 4)",
    )
    add_detector_options(p.add_argument_group("face detection"), max_side=False)
    add_workspace_option(p)
    p.set_defaults(handler=run)


def config_from(args: argparse.Namespace) -> Any:
    """The :class:`~emotrace.server.ServerConfig` for parsed ``serve``/``live`` options."""
    from emotrace.errors import require

    require("fastapi", "serve")
    require("uvicorn", "serve")
    from emotrace.server.app import ServerConfig

    tuning = detector_tuning(args)
    return ServerConfig(
        host=args.host,
        port=args.port,
        workspace=args.workspace,
        model=args.model,
        detector=args.detector,
        detector_model=args.detector_model,
        min_face=args.min_face,
        threads=args.threads,
        workers=getattr(args, "workers", None),  # `live` opening the page has no --workers
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        allow_remote=args.allow_remote,
        score_threshold=tuning["score_threshold"],
        nms_threshold=tuning["nms_threshold"],
        scale_factor=tuning["scale_factor"],
    )


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl+C."""
    config = config_from(args)
    from emotrace.server.runner import serve

    serve(config, open_browser=args.open)
    return 0
