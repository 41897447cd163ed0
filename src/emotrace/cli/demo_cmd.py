"""``emotrace demo``: the whole inference path on a real photo (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emotrace.cli._common import console


def add_parser(sub: Any) -> None:
    """Register ``demo``."""
    p = sub.add_parser("demo", help="run the bundled model on scikit-image's astronaut photo")
    p.add_argument("-o", "--output", type=Path, default=Path("demo-out"), help="output folder")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Detect, classify, print and write the annotated photo."""
    import cv2
    from rich.text import Text

    from emotrace.annotate import draw_faces
    from emotrace.errors import require
    from emotrace.runtime.recognizer import EmotionRecognizer

    require("skimage", "demo")
    from skimage import data

    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    recognizer = EmotionRecognizer()
    detections = recognizer.detector.detect(image)
    faces = recognizer.classify_faces(image, detections)
    args.output.mkdir(parents=True, exist_ok=True)
    out = args.output / "astronaut_emotrace.png"
    cv2.imwrite(str(out), draw_faces(image, faces))
    spec = recognizer.classifier.spec
    console.print(f"model: {spec.name} ({spec.input_size}px, {', '.join(spec.classes)})")
    if not len(faces):
        console.print("astronaut.png: no face found")
    for record in faces.records():
        box = record["box"]
        top = sorted(record["probabilities"].items(), key=lambda kv: -kv[1])[:3]
        console.print(
            Text.assemble(
                f"astronaut.png: face at x={box['x']} y={box['y']} {box['w']}x{box['h']}: ",
                (record["label"], "bold"),
                f" {record['confidence']:.0%} ({', '.join(f'{k} {v:.0%}' for k, v in top)})",
            )
        )
    console.print(f"wrote {out}")
    if detections:
        # What the model sees: the face cut by the model's own preprocessing (aligned when the
        # model is), enlarged so a person can look at it.
        crop = recognizer.classifier.crop_faces(image, detections[:1])[0]
        model_input = recognizer.classifier.prepare([crop])[0]
        seen = args.output / "astronaut_model_input.png"
        cv2.imwrite(
            str(seen), cv2.resize(model_input, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
        )
        how = "aligned: eyes level, FER2013 framing" if spec.preprocess.align else "box crop"
        console.print(f"wrote {seen} (the {spec.input_size} px model input, {how})")
    return 0
