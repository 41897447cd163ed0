"""Measure each bundled model's mean output on neutral faces, for calibrated labels.

    python scripts/measure_neutral_reference.py ../shared/datasets/fer2013/valid/neutral

Runs ``emotrace.runtime.EmotionClassifier`` (the same preprocessing and temperature as a session)
over every image of the folder and writes ``src/emotrace/assets/neutral_reference.json``: per model
sha256, the class order and the mean probabilities. ``emotrace.sessions.baseline`` maps a
patient's resting face to this distribution (see its docstring). Kept beside the models rather
than in their ONNX metadata, so the model files, and the sha256 every stored session names,
stay unchanged; a test checks the entries match the bundled files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np

from emotrace.runtime.classifier import EmotionClassifier
from emotrace.runtime.loading import BUNDLED_MODELS, default_model_path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "emotrace" / "assets" / "neutral_reference.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="FER2013 valid/neutral (48x48 gray faces)")
    args = parser.parse_args()
    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".png", ".jpg"))
    faces = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]
    models = {}
    for name in BUNDLED_MODELS:
        clf = EmotionClassifier(name)
        probs = np.concatenate([clf.predict(faces[i : i + 64]) for i in range(0, len(faces), 64)])
        mean = probs.mean(axis=0)
        neutral = clf.classes.index("neutral")
        sha = hashlib.sha256(default_model_path(name).read_bytes()).hexdigest()
        models[sha] = {
            "name": name,
            "classes": list(clf.classes),
            "mean_probabilities": {
                c: round(float(m), 6) for c, m in zip(clf.classes, mean, strict=True)
            },
            "faces": len(faces),
            "neutral_top1": round(float((probs.argmax(1) == neutral).mean()), 4),
        }
    data = {
        "dataset": f"FER2013 valid/neutral ({len(faces)} faces)",
        "script": "scripts/measure_neutral_reference.py",
        "models": models,
    }
    OUT.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
