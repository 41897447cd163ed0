"""Measure FER2013's average face framing and each detector's box calibration.

Prints the numbers behind :class:`emotrace.preprocessing.Framing`'s defaults and
:data:`emotrace.faces.align.BOX_CALIBRATIONS`: YuNet's landmarks on FER2013 train faces
(upscaled and padded as ``data prepare --align`` does), the geometry they imply, and for YuNet's
and Haar's boxes of the same faces the ratios that predict that geometry from a box.

    python benchmarks/measure_framing.py ../shared/datasets/fer2013 --images 3000
    python benchmarks/measure_framing.py ../shared/datasets/fer2013 --images 500 --jitter

``--jitter`` measures instead how much YuNet's geometry of one face moves when the same image is
seen at other sizes and offsets (what augmentation jitter has to cover): per face, the spread of
scale, anchor position (in face scales) and eye-line angle over six views.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import cv2
import numpy as np

from emotrace.faces import HaarFaceDetector, YuNetFaceDetector
from emotrace.faces.align import dataset_view, find_dataset_face, landmark_geometry
from emotrace.faces.types import Detection


def haar_on_dataset_image(image: np.ndarray, haar: HaarFaceDetector) -> Detection | None:
    """Haar's largest face on the same upscaled, padded copy YuNet sees, in image pixels."""
    big, factor, pad = dataset_view(image)
    found = haar.detect(big)
    if not found:
        return None
    x, y, w, h = found[0].box
    return Detection(
        (round((x - pad) / factor), round((y - pad) / factor), round(w / factor), round(h / factor))
    )


def jitter(files: list[Path], yunet: YuNetFaceDetector) -> None:
    """Spread of one face's geometry over views of the same image at other sizes/offsets."""
    spreads: list[tuple[float, float, float, float]] = []
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        views = []
        for factor, shift in ((3.0, 0), (2.5, 0), (4.0, 0), (3.0, 5), (3.0, 11), (3.5, 7)):
            big = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
            big = cv2.copyMakeBorder(big, 24 + shift, 24, 24, 24 + shift, cv2.BORDER_REPLICATE)
            found = yunet.detect(big)
            if not found or found[0].landmarks is None:
                continue
            points = (found[0].landmarks - [24, 24 + shift] + 0.5) / factor - 0.5
            views.append(landmark_geometry(points))
        if len(views) < 4:
            continue
        scales = np.array([v.scale for v in views])
        anchors = np.array([v.anchor for v in views]) / scales.mean()
        angles = np.degrees([v.angle for v in views])
        spreads.append(
            (
                float(scales.std() / scales.mean()),
                float(anchors[:, 0].std()),
                float(anchors[:, 1].std()),
                float(np.std(angles)),
            )
        )
    table = np.array(spreads)
    print(f"faces seen in at least 4 of 6 views: {len(table)} of {len(files)}")
    print(
        "sd per face (mean over faces): scale {:.1%}  anchor x {:.3f}  anchor y {:.3f} face "
        "scales  angle {:.1f} deg".format(*table.mean(axis=0))
    )
    print(
        "as a share of the 48 px crop (face scale = 1/{:.2f} of it): x {:.1%}  y {:.1%}".format(
            2.553, *(table.mean(axis=0)[1:3] / 2.553)
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="FER2013 image release (train/<class>/*.jpg)")
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jitter", action="store_true", help="measure detector jitter instead")
    args = parser.parse_args()
    files = sorted((args.dataset / "train").glob("*/*.jpg"))
    random.Random(args.seed).shuffle(files)
    files = files[: args.images]
    yunet = YuNetFaceDetector(score_threshold=0.3)
    if args.jitter:
        jitter(files, yunet)
        return
    haar = HaarFaceDetector(min_size=48)
    side = None
    anchors, scales, ratios, boxes_y, boxes_h, angles = [], [], [], [], [], []
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        side = image.shape[0]
        found = find_dataset_face(image, yunet)
        if found is None or found.landmarks is None:
            continue
        points = found.landmarks
        geometry = landmark_geometry(points)
        eyes_to_mouth = (points[3] + points[4]) / 2 - (points[0] + points[1]) / 2
        ratios.append(np.hypot(*(points[1] - points[0])) / max(np.hypot(*eyes_to_mouth), 1e-6))
        anchors.append(geometry.anchor)
        scales.append(geometry.scale)
        angles.append(np.degrees(geometry.angle))
        boxes_y.append((found.box, geometry))
        other = haar_on_dataset_image(image, haar)
        if other is not None:
            boxes_h.append((other.box, geometry))
    assert side is not None
    anchors_a, scales_a = np.array(anchors), np.array(scales)
    print(f"YuNet found {len(anchors)} of {len(files)} faces ({len(anchors) / len(files):.1%})")
    print(f"eye distance / eye-to-mouth: median {np.median(ratios):.3f} -> mouth_ratio 1.0")
    print(f"eye-line angle: mean {np.mean(angles):.2f} deg, sd {np.std(angles):.2f}")
    print(
        # Anchors are pixel-centre coordinates; crop fractions count from the crop's edge.
        f"Framing: eye_line {(np.mean(anchors_a[:, 1]) + 0.5) / side:.3f}  "
        f"face_scale {side / np.mean(scales_a):.3f}  "
        f"(anchor x {(np.mean(anchors_a[:, 0]) + 0.5) / side:.3f} of the side)"
    )
    for name, pairs in (("yunet", boxes_y), ("haar", boxes_h)):
        if not pairs:
            print(f"{name}: no boxes")
            continue
        ax = [(g.anchor[0] - b[0]) / b[2] for b, g in pairs]
        ay = [(g.anchor[1] - b[1]) / b[3] for b, g in pairs]
        sc = [g.scale / np.sqrt(b[2] * b[3]) for b, g in pairs]
        print(
            f"BoxCalibration[{name}] (n={len(pairs)}): anchor_x {np.mean(ax):.3f} "
            f"anchor_y {np.mean(ay):.3f} scale {np.mean(sc):.3f} "
            f"(sd {np.std(ax):.3f} {np.std(ay):.3f} {np.std(sc):.3f})"
        )


if __name__ == "__main__":
    main()
