"""``emotrace compare``: is one model really better than another on the same images?"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from emotrace.cli._common import console


def add_parser(sub: Any) -> None:
    """Register ``compare``."""
    p = sub.add_parser(
        "compare",
        help="paired comparison of two evaluations of the same images (accuracy, 95%% intervals, "
        "McNemar)",
    )
    p.add_argument("a", type=Path, metavar="EVAL_A", help="emotrace evaluate -o folder of model A")
    p.add_argument("b", type=Path, metavar="EVAL_B", help="emotrace evaluate -o folder of model B")
    p.add_argument(
        "--tta", action="store_true", help="compare the flip-TTA predictions (evaluate --tta flip)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the comparison."""
    from emotrace.evaluation.compare import compare_evaluations

    c = compare_evaluations(args.a, args.b, tta=args.tta)
    if args.json:
        print(json.dumps(c, indent=2))
        return 0
    flip = ", flip TTA" if c["tta"] else ""
    console.print(f"{c['split']} of {c['dataset']}: {c['images']:,} images, paired{flip}")
    for key in ("a", "b"):
        side = c[key]
        low, high = side["accuracy_ci95"]
        console.print(
            f"  {key.upper()}  {side['accuracy']:.2%}  (95% interval {low:.2%}-{high:.2%})  "
            f"{side['model_name']}  ({side['folder']})"
        )
    low, high = c["difference_ci95"]
    verdict = (
        f"{'B' if c['difference'] > 0 else 'A'} is better (p < 0.05)"
        if c["significant"]
        else "no significant difference (p >= 0.05)"
    )
    console.print(
        f"  B - A  {c['difference'] * 100:+.2f} points (95% interval {low * 100:+.2f} to "
        f"{high * 100:+.2f}); only A right on {c['only_a_right']:,} images, only B on "
        f"{c['only_b_right']:,}; McNemar exact p = {c['p_value']:.3g}: {verdict}"
    )
    return 0
