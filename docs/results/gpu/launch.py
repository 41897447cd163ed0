"""``emotrace`` CLI on a GPU machine where the package cannot be installed (no network): run
from the repository with ``PYTHONPATH=src``.

``EMOTRACE_IMAGENET_WEIGHTS`` names the ImageNet MobileNetV2 backbone rebuilt by
``pack_data.py unpack`` (fp16-rounded, so not the file whose hash torch hub's name carries);
MobileNetV2 is then built from it instead of the verified torch hub file. Everything else is the
plain CLI.
"""

import os
import signal
import sys
from pathlib import Path

# Started in the background by a script, Python would inherit SIGINT ignored; restore Ctrl+C so a
# deadline can stop a run after its last finished epoch (the loop saves nothing partial).
signal.signal(signal.SIGINT, signal.default_int_handler)

weights = os.environ.get("EMOTRACE_IMAGENET_WEIGHTS")
if weights:
    import emotrace.models.mobilenet_v2 as mobilenet_v2

    mobilenet_v2.find_or_fetch_weights = lambda: Path(weights)  # type: ignore[assignment]

from emotrace.cli.main import entry  # noqa: E402

sys.argv[0] = "emotrace"
entry()
