"""``emotrace models``: the registered architectures with their size and cost."""

from __future__ import annotations

import argparse
from typing import Any

from emotrace.cli._common import console


def add_parser(sub: Any) -> None:
    """Register ``models``."""
    p = sub.add_parser(
        "models", help="list model architectures with parameters and multiply-adds (MMACs)"
    )
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'mobilevit*'")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the table."""
    from emotrace.errors import ModelError, require

    require("torch", "train")
    from rich.table import Table

    from emotrace.models import list_models, model_info
    from emotrace.models.profile import profile

    names = list_models(args.pattern)
    if not names:
        raise ModelError(
            f"no model architecture matches {args.pattern!r}; "
            f"registered: {', '.join(list_models())}"
        )
    table = Table("model", "input", "params (M)", "MMACs", "description")
    for name in names:
        info = model_info(name)
        params, mmacs = profile(name)
        geometry = f"{info.default_channels}x{info.default_input_size}x{info.default_input_size}"
        table.add_row(name, geometry, f"{params / 1e6:.2f}", f"{mmacs:.1f}", info.summary)
    console.print(table)
    return 0
