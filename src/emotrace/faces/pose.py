"""Head orientation from the detector's five landmarks: approximate yaw, pitch and roll.

How approximate, plainly:

* **Roll** is exact geometry of the landmarks: the angle of the line from the right eye to the
  left eye, positive clockwise as seen in the image. It is as good as the landmarks, and YuNet's
  eye points move by several pixels between two views of one face (on a mirrored photo its eye
  line tilted by 8 degrees where the original was level).
* **Yaw** (positive: the face turns towards the image's right, the person's left) and **pitch**
  (positive: the face tilts up) are *estimates*: the five points are fitted (``cv2.solvePnP``,
  SQPnP) to one generic face, so a person whose nose sits lower than the average reads as looking
  down by a few degrees, and five points cannot separate a turn from an unusual face. Expect
  +-10 degrees on a single face, and use them for what the clinicians' tools use them for: when
  the patient looks away, and which frames are too turned to trust.

The generic face (:data:`GENERIC_FACE`, millimetres, eye distance 64 mm, the adult mean) has the
2D layout of the median of 2,836 FER2013 train faces as YuNet places their landmarks (nose tip
0.53 and mouth corners 0.99 eye distances below the eye line, mouth 0.81 eye distances wide), so
the average frontal face reads as 0/0/0; its depths are those of the generic 3D face common in
head-pose tutorials (learnopencv's six-point model, scaled to the same eye distance: nose tip
27 mm and mouth corners 2 mm in front of the eyes), not fitted to any photo. The camera is placed
as a webcam at arm's length: the face's own centre on its axis, eight eye distances of focal
length (about 50 cm for an adult), so the angles are relative to the line from the camera to the
face, not to the image's edges, and need no image size.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

#: Right eye, left eye, nose tip, right and left mouth corner (YuNet's order), in millimetres:
#: x to the image's right, y down, z away from the camera; eye midpoint at the origin.
GENERIC_FACE = np.array(
    [
        [-32.0, 0.0, 0.0],
        [32.0, 0.0, 0.0],
        [0.0, 34.0, -27.0],
        [-26.0, 63.0, -2.0],
        [26.0, 63.0, -2.0],
    ]
)
#: Focal length in eye distances: the face at about 50 cm from a webcam.
FOCAL_EYE_DISTANCES = 8.0


def head_pose(landmarks: np.ndarray) -> tuple[float, float, float] | None:
    """``(yaw, pitch, roll)`` in degrees of one face's ``(5, 2)`` landmarks (see the module
    docstring for the conventions and how approximate they are); ``None`` without landmarks
    (NaN, as from Haar) or for degenerate points (both eyes in one place)."""
    points = np.asarray(landmarks, np.float64).reshape(5, 2)
    if not np.isfinite(points).all():
        return None
    eyes = points[1] - points[0]
    distance = float(np.hypot(*eyes))
    if distance < 1e-6:
        return None
    roll = math.degrees(math.atan2(eyes[1], eyes[0]))
    # Level the points around the eye midpoint, so the fit only has yaw and pitch to find.
    centre = (points[0] + points[1]) / 2
    angle = -math.radians(roll)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    level = (points - centre) @ rotation.T
    focal = FOCAL_EYE_DISTANCES * distance
    # The camera looks at the face: principal point at the face's centre (the points' mean).
    middle = level.mean(axis=0)
    camera = np.array([[focal, 0.0, middle[0]], [0.0, focal, middle[1]], [0.0, 0.0, 1.0]])
    ok, rvec, _ = cv2.solvePnP(GENERIC_FACE, level, camera, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return None
    matrix, _ = cv2.Rodrigues(rvec)
    forward = matrix @ np.array([0.0, 0.0, -1.0])  # where the face points, in camera axes
    yaw = math.degrees(math.atan2(forward[0], -forward[2]))
    pitch = math.degrees(math.atan2(-forward[1], math.hypot(forward[0], forward[2])))
    return yaw, pitch, roll


def head_poses(landmarks: np.ndarray) -> np.ndarray:
    """``(N, 3)`` yaw, pitch, roll in degrees for ``(N, 5, 2)`` landmarks; NaN rows where a face
    has no landmarks."""
    points = np.asarray(landmarks, np.float64).reshape(-1, 5, 2)
    out = np.full((len(points), 3), np.nan)
    for i, face in enumerate(points):
        pose = head_pose(face)
        if pose is not None:
            out[i] = pose
    return out
