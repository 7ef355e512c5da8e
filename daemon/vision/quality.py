"""How usable a detected face is: pose from keypoints, sharpness, exposure, size, and one 0–1 quality.

Pose from BlazeFace's six keypoints is an estimate, not a head-pose model (docs/ARCHITECTURE.md):
- roll: the angle of the eye line;
- yaw: in the roll-corrected frame, the nose tip's horizontal offset from the eye midpoint, relative to
  the eye distance. For a head turned by θ the offset grows as D·sin θ while the eye distance shrinks as
  cos θ, so offset / eye distance = (D / IOD)·tan θ with D / IOD ≈ NOSE_DEPTH (anthropometric ratio of
  the nose tip's depth in front of the eyes to the interocular distance);
- pitch: where the nose tip sits between the eye line and the mouth, against its frontal position, the
  same tan relation with the eye–mouth distance.
Sharpness and exposure are measured on the aligned grey chip, so they do not depend on the image size.
Sharpness is the "blur effect" of Crété-Roffet et al. (2007): how little the chip changes when it is
blurred again. It depends far less on the face's content than the variance of the Laplacian does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from daemon.vision.types import LEFT_EYE, MOUTH, NOSE_TIP, RIGHT_EYE, Face

NOSE_DEPTH = 0.55  # nose-tip depth / interocular distance
PITCH_DEPTH = 0.45  # nose-tip depth / eye-to-mouth distance
FRONTAL_NOSE_RATIO = 0.55  # (nose − eye line) / (mouth − eye line) on frontal faces (test faces: 0.50–0.58)
# Crété-Roffet blur effect (0 sharp … 1 blurry) mapped linearly to blurness 0–100: 0.25 → 0, 0.85 → 100.
# Measured on the test faces' chips (tests/data/faces, faces 100–330 px): as taken 0.28–0.46 (blurness
# 5–35); the same photos blurred with σ = 2 px 0.43–0.75 (30–83), σ = 4 px 0.54–0.77 (48–87). So ordinary
# photos spread over a visible range and a slight blur moves the value. The enrollment gate's default
# (library.max_blurness 85, effect 0.76) admits exactly what the previous mapping's 70 admitted.
BLUR_EFFECT_SHARP = 0.25
BLUR_EFFECT_SPAN = 0.6
# blurness below this costs the quality score nothing (the sharpness sub-score falls to 0 at 100).
BLURNESS_FREE = 50.0


@dataclass(frozen=True)
class FaceQuality:
    roll: float  # degrees, positive: the face is tilted clockwise in the image
    yaw: float  # degrees, positive: the face turns towards the image's right
    pitch: float  # degrees, positive: the face looks down
    blurness: float  # 0 (sharp) … 100 (very blurry)
    brightness: float  # mean grey 0–255 of the face's centre
    contrast: float  # grey standard deviation of the face's centre
    size: float  # the smaller side of the face box, in pixels
    quality: float  # 0 … 1, higher is better


@dataclass(frozen=True)
class QualityThresholds:
    min_size: float = 64
    max_yaw: float = 35
    max_pitch: float = 35
    max_roll: float = 30
    max_blurness: float = 85
    min_brightness: float = 40
    max_brightness: float = 220
    min_contrast: float = 18


def estimate_pose(face: Face) -> tuple[float, float, float]:
    """(roll, yaw, pitch) in degrees from the keypoints."""
    k = face.keypoints.astype(np.float64)
    right_eye, left_eye, nose, mouth = k[RIGHT_EYE], k[LEFT_EYE], k[NOSE_TIP], k[MOUTH]
    eye_vec = left_eye - right_eye
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    eye_dist = float(np.hypot(*eye_vec))
    if eye_dist < 1e-6:
        return roll, 0.0, 0.0
    # Rotate into the frame where the eye line is horizontal.
    cos_r, sin_r = eye_vec / eye_dist
    rot = np.array([[cos_r, sin_r], [-sin_r, cos_r]])
    eye_mid = (left_eye + right_eye) / 2
    nose_r = rot @ (nose - eye_mid)
    mouth_r = rot @ (mouth - eye_mid)
    yaw = math.degrees(math.atan(nose_r[0] / (NOSE_DEPTH * eye_dist)))
    eye_mouth = float(mouth_r[1])
    pitch = 0.0
    if eye_mouth > 1e-6:
        ratio = nose_r[1] / eye_mouth
        pitch = math.degrees(math.atan((ratio - FRONTAL_NOSE_RATIO) / PITCH_DEPTH))
    return roll, yaw, pitch


def blur_effect(grey: np.ndarray) -> float:
    """Crété-Roffet's no-reference blur measure, 0 (sharp) … 1 (flat): the share of the neighbour
    differences that survive a 9-tap box blur, the worse of the two directions."""
    grey = grey.astype(np.float32)
    worst = 0.0
    for axis, kernel in ((1, (9, 1)), (0, (1, 9))):
        blurred = cv2.blur(grey, kernel)
        d_orig = np.abs(np.diff(grey, axis=axis))
        d_blur = np.abs(np.diff(blurred, axis=axis))
        total = float(d_orig.sum())
        if total <= 0:
            return 1.0
        lost = float(np.maximum(0.0, d_orig - d_blur).sum())
        worst = max(worst, (total - lost) / total)
    return worst


def measure_chip(chip: np.ndarray) -> tuple[float, float, float]:
    """(blurness 0–100, brightness, contrast) of an aligned 150×150 RGB chip's central face region."""
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    centre = grey[30:135, 30:120]  # eyes to chin, inside the cheeks: no background
    effect = blur_effect(centre)
    blurness = float(np.clip(100.0 * (effect - BLUR_EFFECT_SHARP) / BLUR_EFFECT_SPAN, 0.0, 100.0))
    return blurness, float(centre.mean()), float(centre.std())


def assess(face: Face, chip: np.ndarray) -> FaceQuality:
    roll, yaw, pitch = estimate_pose(face)
    blurness, brightness, contrast = measure_chip(chip)
    size = float(min(face.width, face.height))
    pose_score = max(0.0, 1.0 - max(abs(yaw), abs(pitch), abs(roll)) / 60.0)
    size_score = min(1.0, size / 112.0)
    sharp_score = 1.0 - max(0.0, blurness - BLURNESS_FREE) / (100.0 - BLURNESS_FREE)
    exposure_score = min(1.0, contrast / 40.0) * (1.0 - abs(brightness - 128.0) / 160.0)
    quality = (pose_score * size_score * sharp_score * max(0.0, exposure_score)) ** 0.25
    return FaceQuality(
        roll=roll,
        yaw=yaw,
        pitch=pitch,
        blurness=blurness,
        brightness=brightness,
        contrast=contrast,
        size=size,
        quality=float(np.clip(quality, 0.0, 1.0)),
    )


def failed_checks(q: FaceQuality, t: QualityThresholds) -> list[str]:
    """Names of the enrollment checks this face fails (empty: it passes), in a stable order."""
    failed = []
    if q.size < t.min_size:
        failed.append("size")
    if abs(q.yaw) > t.max_yaw:
        failed.append("yaw")
    if abs(q.pitch) > t.max_pitch:
        failed.append("pitch")
    if abs(q.roll) > t.max_roll:
        failed.append("roll")
    if q.blurness > t.max_blurness:
        failed.append("blur")
    if q.brightness < t.min_brightness:
        failed.append("dark")
    if q.brightness > t.max_brightness:
        failed.append("bright")
    if q.contrast < t.min_contrast:
        failed.append("contrast")
    return failed
