"""``emotrace demo``: the main job on built-in defaults (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emotrace.cli._common import console


def add_parser(sub: Any) -> None:
    """Register ``demo``."""
    p = sub.add_parser("demo", help="run the bundled model on a built-in photo")
    p.add_argument("-o", "--output", type=Path, default=Path("demo-out"), help="output folder")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Until the bundled model exists this says so and exits cleanly."""
    from importlib import resources

    assets = resources.files("emotrace") / "assets"
    model = assets / "emotrace_default.onnx"
    if not model.is_file():
        console.print(
            "no model yet: the bundled default model arrives with the inference engine. "
            "Meanwhile try: emotrace models, emotrace data inspect DATASET -o eda-out"
        )
        return 0
    raise NotImplementedError  # replaced when the bundled model lands
