"""`facegate blur-video`: the offline video blurrer, run in-process on the clip with known faces."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from clip_maker import Clip, detail, make_clip, read_frames

from daemon.cli import main
from daemon.cli_video import ProgressBar

FRAMES = 40


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    return make_clip(tmp_path_factory.mktemp("cli_video") / "faces.avi", size=(640, 360), frames=FRAMES)


@pytest.fixture(scope="module")
def raw(clip: Clip) -> list[np.ndarray]:
    return read_frames(clip.path)


def face_details(frames: list[np.ndarray], clip: Clip, raw: list[np.ndarray]) -> list[tuple[float, float]]:
    """(raw, output) detail of every face at least 3/4 inside the frame, over the whole clip."""
    return [
        (detail(raw[k], face.clipped(*clip.size)), detail(frame, face.clipped(*clip.size)))
        for k, frame in enumerate(frames)
        for face in clip.truth[k]
        if face.visible >= 0.75
    ]


def test_blur_video_keeps_every_frame_and_blurs_every_face(tmp_path: Path, clip, raw, capsys) -> None:
    out = tmp_path / "blurred.mp4"
    assert main(["blur-video", str(clip.path), str(out)]) == 0
    captured = capsys.readouterr()
    assert f"{FRAMES}/{FRAMES} frames 100%" in captured.err and "fps" in captured.err
    assert captured.out.startswith(f"{out}: {FRAMES} frames in ")
    frames = read_frames(out)
    assert len(frames) == FRAMES and frames[0].shape == raw[0].shape
    details = face_details(frames, clip, raw)
    assert len(details) >= 2 * FRAMES
    assert all(after < 0.1 * before for before, after in details), details


def test_blur_video_method_and_avi_output(tmp_path: Path, clip, raw, capsys) -> None:
    out = tmp_path / "solid.avi"
    assert main(["blur-video", str(clip.path), str(out), "--method", "solid", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    frames = read_frames(out)
    assert len(frames) == FRAMES
    for k, frame in enumerate(frames):  # solid: every face region is black (up to JPEG noise)
        for face in clip.truth[k]:
            if face.visible >= 0.75:
                x1, y1, x2, y2 = face.clipped(*clip.size)
                assert frame[y1:y2, x1:x2].mean() < 8, k


@pytest.mark.parametrize(
    ("source", "output", "message"),
    [
        ("absent.mp4", "out.mp4", "video file not found"),
        ("text.mp4", "out.mp4", "Invalid video format"),
        ("clip", "out.gif", "unsupported output type '.gif'"),
    ],
)
def test_blur_video_errors_exit_2_with_a_message(
    tmp_path: Path, clip, capsys, source, output, message
) -> None:
    (tmp_path / "text.mp4").write_text("not a video")
    path = clip.path if source == "clip" else tmp_path / source
    assert main(["blur-video", str(path), str(tmp_path / output)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / output).exists()


def test_progress_line_shows_frames_fps_and_eta() -> None:
    bar = ProgressBar(io.StringIO(), interval=0)
    line = bar.line(50, 200, bar.started + 2.0)
    assert "50/200 frames  25%" in line and "25.0 fps" in line and "ETA 0:06" in line
    assert bar.line(50, 0, bar.started + 2.0).startswith("50 frames   25.0 fps")
    bar(200, 200)  # not a terminal: one plain line per update
    written = bar.stream.getvalue()
    assert "200/200 frames 100%" in written and written.endswith("\n") and "\r" not in written
