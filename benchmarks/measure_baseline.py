"""Measure what the per-patient baseline correction (calibrated labels) does on real faces.

    python benchmarks/measure_baseline.py ../shared

Two measures, nothing fitted (the only constant, ``baseline.PROB_FLOOR``, was fixed beforehand):

1. **Real footage.** ``emotrace analyze --session`` records ``media/single_face.mp4`` (one person,
   at rest for its first 20 frames, then smiling) into a throw-away workspace. The baseline is the
   resting stretch's even frames; the figures are the resting stretch's odd frames (held out) and
   the smiling stretch: how often each reads neutral / keeps its label, raw and calibrated. The
   clip is 2.4 s, so the 10 s rule of a stored baseline is bypassed here (the statistics are taken
   directly); ``face_noface.mov`` holds the same footage and is not counted twice.
2. **FER2013 valid, many people.** Resting faces the model misreads: for each emotion E, the
   neutral faces the default model reads as E stand for a patient whose resting face reads E.
   Half of them (every other file) make the baseline, the other half is measured: share read
   neutral, raw and calibrated. The expressive faces (the model's correct reads of every other
   class) are calibrated with the same baseline: the share that keeps its label.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from emotrace.runtime.classifier import EmotionClassifier
from emotrace.sessions.baseline import calibrate, neutral_reference
from emotrace.sessions.store import SessionStore
from emotrace.sessions.types import file_checksum


def share(labels: np.ndarray, k: int) -> str:
    return f"{(labels == k).mean():.0%}" if len(labels) else "-"


def real_footage(shared: Path, reference: np.ndarray) -> None:
    video = shared / "media" / "single_face.mp4"
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [sys.executable, "-m", "emotrace", "analyze", str(video), "--session", "clip",
             "--patient", "P-CLIP", "--consent", "--workspace", folder, "-o", folder,
             "--detect-every", "1"],
            check=True, capture_output=True,
        )  # fmt: skip
        with SessionStore(folder, readonly=True) as store:
            data = store.load("clip")
    classes = data.classes
    neutral, happy = classes.index("neutral"), classes.index("happy")
    p = data.probabilities[data.visible].astype(np.float64)
    rest, smile = p[:20], p[20:]
    base = rest[0::2].mean(axis=0)
    held = rest[1::2]
    cal_rest = calibrate(held, base, reference).argmax(axis=1)
    smiling = smile[smile.argmax(axis=1) == happy]
    cal_smile = calibrate(smiling, base, reference).argmax(axis=1)
    print(f"## {video.name}: {len(p)} frames with the face (rest 20, then smiling)")
    print(f"rest (held out, {len(held)} frames): neutral raw {share(held.argmax(1), neutral)}, "
          f"calibrated {share(cal_rest, neutral)}")  # fmt: skip
    print(f"smiling frames read happy ({len(smiling)}): still happy calibrated "
          f"{share(cal_smile, happy)}")  # fmt: skip


def fer2013(shared: Path, clf: EmotionClassifier, reference: np.ndarray) -> None:
    root = shared / "datasets" / "fer2013" / "valid"
    classes = clf.classes
    neutral = classes.index("neutral")
    probs = {}
    for c in classes:
        files = sorted((root / c).iterdir())
        faces = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]
        probs[c] = np.concatenate(
            [clf.predict(faces[i : i + 128]) for i in range(0, len(faces), 128)]
        ).astype(np.float64)
    resting = probs["neutral"]
    read = resting.argmax(axis=1)
    print("\n## FER2013 valid: neutral faces the model misreads, as resting faces")
    header = "| resting face reads | faces | neutral raw | neutral calibrated | "
    header += " | ".join(f"{c} kept" for c in classes if c != "neutral") + " |"
    print(header)
    print("|" + "---|" * (4 + len(classes) - 1))
    for k, c in enumerate(classes):
        group = resting[read == k]
        if k == neutral or len(group) < 10:
            continue
        base, held = group[0::2].mean(axis=0), group[1::2]
        cal = calibrate(held, base, reference).argmax(axis=1)
        kept = []
        for j, e in enumerate(classes):
            if j == neutral:
                continue
            correct = probs[e][probs[e].argmax(axis=1) == j]
            kept.append(share(calibrate(correct, base, reference).argmax(axis=1), j))
        print(f"| {c} | {len(group)} | {share(held.argmax(1), neutral)} | "
              f"{share(cal, neutral)} | " + " | ".join(kept) + " |")  # fmt: skip
    # All neutral faces as one "population baseline": the reference itself, as a check.
    cal = calibrate(resting[1::2], resting[0::2].mean(axis=0), reference).argmax(axis=1)
    print(f"\nall neutral faces, half as baseline: neutral raw {share(read[1::2], neutral)}, "
          f"calibrated {share(cal, neutral)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared", type=Path, help="the shared folder (media/, datasets/fer2013/)")
    args = parser.parse_args()
    clf = EmotionClassifier("default")
    from emotrace.runtime.loading import default_model_path

    found = neutral_reference(file_checksum(default_model_path("default")))
    assert found is not None
    reference = np.array(found.mean_probabilities)
    real_footage(args.shared, reference)
    fer2013(args.shared, clf, reference)


if __name__ == "__main__":
    main()
