"""A synthetic test video with known face positions: real face photos moving and scaling over a background.

The stream and video tests need ground truth ("where is every face in frame k?") to check that every
face region of every published frame is blurred. Faces are cut from tests/data/faces (with some
surroundings, so the detector sees a head, not a floating mask), scaled and pasted along known paths;
the true face box in each frame is the box the detector finds in the source photo, carried through
the same scale and offset. Some faces cross the frame edge (entering, leaving), so a face's visible
share is recorded too.

Used by tests/test_stream_pipeline.py, test_api_stream.py, test_tasks.py, test_cli_video.py and by
scripts/bench_stream.py (which adds tests/ to sys.path).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DATA = Path(__file__).resolve().parent / "data"
Box = tuple[float, float, float, float]

# Face boxes of the full-range detector in the source photos (x1, y1, x2, y2), measured once; the
# clip only needs them to place the truth, not to be exact to the pixel.
SOURCE_FACES: dict[str, Box] = {
    "obama.jpg": (351, 132, 632, 414),
    "biden.jpg": (423, 235, 736, 550),
    "astronaut.png": (173, 69, 278, 174),
    "obama3.jpg": (639, 297, 954, 612),
}
SPRITE_PAD = 0.6  # surroundings kept around the face box, as a share of its size, each side


@dataclass(frozen=True)
class FacePath:
    """One face: which photo, and centre/width (in frame pixels) as functions of t in [0, 1]."""

    photo: str
    centre: Callable[[float], tuple[float, float]]
    width: Callable[[float], float]


@dataclass(frozen=True)
class TrueFace:
    box: Box  # where the face is, in frame pixels (may extend past the frame edge)
    visible: float  # share of the box area inside the frame, 0..1

    def clipped(self, width: int, height: int) -> tuple[int, int, int, int]:
        x1, y1, x2, y2 = self.box
        return (
            max(0, int(np.ceil(x1))),
            max(0, int(np.ceil(y1))),
            min(width, int(np.floor(x2))),
            min(height, int(np.floor(y2))),
        )


@dataclass(frozen=True)
class Clip:
    path: Path
    size: tuple[int, int]  # (width, height)
    fps: float
    truth: list[list[TrueFace]]  # per frame

    @property
    def frame_count(self) -> int:
        return len(self.truth)


def _lerp(a: float, b: float) -> Callable[[float], float]:
    return lambda t: a + (b - a) * t


def default_paths(width: int, height: int) -> list[FacePath]:
    """Four faces in a 16:9 frame (coordinates scale with the frame size):

    - obama crosses the bottom band left to right, growing;
    - biden enters from the right edge in the top band;
    - astronaut leaves through the top edge, shrinking;
    - obama3 appears small in the middle and grows (zooming towards the camera).
    """
    sx, sy = width / 640, height / 360

    def path(photo: str, x0: float, y0: float, x1: float, y1: float, w0: float, w1: float) -> FacePath:
        fx, fy, fw = _lerp(x0 * sx, x1 * sx), _lerp(y0 * sy, y1 * sy), _lerp(w0 * sx, w1 * sx)
        return FacePath(photo, lambda t: (fx(t), fy(t)), fw)

    return [
        path("obama.jpg", 70, 285, 430, 285, 62, 84),
        path("biden.jpg", 700, 85, 450, 85, 64, 64),
        path("astronaut.png", 90, 90, 90, -90, 72, 56),
        path("obama3.jpg", 300, 150, 300, 150, 34, 70),
    ]


def small_entering_paths(width: int, height: int) -> list[FacePath]:
    """Faces 32–40 px wide in a 1280×720 frame (coordinates scale with the frame size), as small as the
    stream promises to blur from the first frame they show: two enter through the left and right edges,
    one appears from the bottom, one stays in the middle of the crowd-like background.
    """
    sx, sy = width / 1280, height / 720

    def path(photo: str, x0: float, y0: float, x1: float, y1: float, w: float) -> FacePath:
        fx, fy = _lerp(x0 * sx, x1 * sx), _lerp(y0 * sy, y1 * sy)
        return FacePath(photo, lambda t: (fx(t), fy(t)), lambda t: w * sx)

    return [
        path("obama.jpg", -30, 200, 260, 200, 34),
        path("biden.jpg", 1310, 420, 1000, 420, 36),
        path("astronaut.png", 640, 750, 640, 560, 40),
        path("obama3.jpg", 420, 520, 470, 500, 32),
    ]


def _background(width: int, height: int) -> np.ndarray:
    brick = cv2.imread(str(DATA / "no_faces" / "brick.png"), cv2.IMREAD_COLOR)
    coffee = cv2.imread(str(DATA / "no_faces" / "coffee.png"), cv2.IMREAD_COLOR)
    bg = cv2.resize(brick, (width, height), interpolation=cv2.INTER_LINEAR)
    cup = cv2.resize(coffee, (width // 4, height // 4), interpolation=cv2.INTER_AREA)
    bg[height - cup.shape[0] :, width - cup.shape[1] :] = cup
    return bg  # BGR, like the writer


def _sprite(photo: str) -> tuple[np.ndarray, Box]:
    """The face with its surroundings (BGR) and the face box inside that crop."""
    image = cv2.imread(str(DATA / "faces" / photo), cv2.IMREAD_COLOR)
    x1, y1, x2, y2 = SOURCE_FACES[photo]
    pad_x, pad_y = (x2 - x1) * SPRITE_PAD, (y2 - y1) * SPRITE_PAD
    cx1, cy1 = max(0, int(x1 - pad_x)), max(0, int(y1 - pad_y))
    cx2, cy2 = min(image.shape[1], int(x2 + pad_x)), min(image.shape[0], int(y2 + pad_y))
    return image[cy1:cy2, cx1:cx2].copy(), (x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1)


def _paste(frame: np.ndarray, sprite: np.ndarray, left: int, top: int) -> None:
    h, w = sprite.shape[:2]
    fh, fw = frame.shape[:2]
    x1, y1, x2, y2 = max(0, left), max(0, top), min(fw, left + w), min(fh, top + h)
    if x2 > x1 and y2 > y1:
        frame[y1:y2, x1:x2] = sprite[y1 - top : y2 - top, x1 - left : x2 - left]


def render_frames(
    size: tuple[int, int], frames: int, paths: list[FacePath] | None = None
) -> tuple[list[np.ndarray], list[list[TrueFace]]]:
    """The clip's frames (BGR) and the true faces of each."""
    width, height = size
    paths = default_paths(width, height) if paths is None else paths
    background = _background(width, height)
    sprites = {p.photo: _sprite(p.photo) for p in paths}
    images, truth = [], []
    for k in range(frames):
        t = k / max(1, frames - 1)
        frame = background.copy()
        faces = []
        for p in paths:
            sprite, (fx1, fy1, fx2, fy2) = sprites[p.photo]
            scale = p.width(t) / (fx2 - fx1)
            scaled = cv2.resize(
                sprite,
                (max(1, round(sprite.shape[1] * scale)), max(1, round(sprite.shape[0] * scale))),
                interpolation=cv2.INTER_AREA,
            )
            cx, cy = p.centre(t)
            left = round(cx - (fx1 + fx2) / 2 * scale)
            top = round(cy - (fy1 + fy2) / 2 * scale)
            _paste(frame, scaled, left, top)
            box = (left + fx1 * scale, top + fy1 * scale, left + fx2 * scale, top + fy2 * scale)
            faces.append(TrueFace(box, _visible_share(box, width, height)))
        images.append(frame)
        truth.append(faces)
    return images, truth


def _visible_share(box: Box, width: int, height: int) -> float:
    x1, y1, x2, y2 = box
    inside = max(0.0, min(x2, width) - max(x1, 0)) * max(0.0, min(y2, height) - max(y1, 0))
    return inside / ((x2 - x1) * (y2 - y1))


def make_clip(
    path: Path,
    size: tuple[int, int] = (640, 360),
    frames: int = 60,
    fps: float = 25.0,
    paths: list[FacePath] | None = None,
) -> Clip:
    """Write the clip as MJPG .avi (what every OpenCV build can write) and return its truth."""
    images, truth = render_frames(size, frames, paths)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened(), "this OpenCV build cannot write MJPG .avi"
    try:
        for image in images:
            writer.write(image)
    finally:
        writer.release()
    return Clip(path=path, size=size, fps=fps, truth=truth)


def read_frames(path: Path) -> list[np.ndarray]:
    """Every frame of a video file as RGB (the raw clip as a pipeline sees it)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    return frames


def detail(rgb: np.ndarray, region: tuple[int, int, int, int]) -> float:
    """Variance of the Laplacian inside region (x1, y1, x2, y2): high for a sharp face, low once blurred."""
    x1, y1, x2, y2 = region
    patch = cv2.cvtColor(np.ascontiguousarray(rgb[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(patch, cv2.CV_64F).var())
