"""Browser-playable results: the blurred video is VP9/WebM (default) or H.264/MP4, decoded back with
PyAV (an independent reader of the container) to check the codec, the size and the frame count."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from clip_maker import Clip, detail, make_clip

from daemon.cli import main
from daemon.services.video_writers import VideoWriteError, open_writer

FRAMES = 24


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    return make_clip(tmp_path_factory.mktemp("writers") / "faces.avi", size=(640, 360), frames=FRAMES)


def decoded(path: Path) -> tuple[str, str, list[np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return container.format.name, stream.codec_context.name, frames


@pytest.mark.parametrize(
    ("suffix", "codec", "container"),
    [(".webm", "vp9", "matroska,webm"), (".mp4", "h264", "mov,mp4,m4a,3gp,3g2,mj2")],
)
def test_blurred_video_is_browser_playable_with_every_frame(tmp_path, clip, suffix, codec, container):
    out = tmp_path / f"blurred{suffix}"
    assert main(["blur-video", str(clip.path), str(out), "--quiet"]) == 0
    fmt, name, frames = decoded(out)
    assert name == codec and fmt == container
    assert len(frames) == FRAMES
    assert frames[0].shape == (360, 640, 3)
    # Still blurred after the lossy encode: no face keeps its detail.
    with av.open(str(clip.path)) as source:
        raw = [f.to_ndarray(format="rgb24") for f in source.decode(video=0)]
    for k, frame in enumerate(frames):
        for face in clip.truth[k]:
            if face.visible >= 0.75:
                box = face.clipped(*clip.size)
                assert detail(frame, box) < 0.2 * detail(raw[k], box), (k, box)


def test_odd_sizes_are_padded_to_even(tmp_path):
    path = tmp_path / "odd.webm"
    writer = open_writer(path, 101, 57, 10.0)
    for i in range(5):
        writer.write(np.full((57, 101, 3), 40 * i, np.uint8))
    writer.close()
    _, name, frames = decoded(path)
    assert name == "vp9" and len(frames) == 5 and frames[0].shape == (58, 102, 3)


def test_unknown_container_is_refused(tmp_path):
    with pytest.raises(VideoWriteError, match=r"unsupported output type '\.gif'"):
        open_writer(tmp_path / "x.gif", 64, 64, 10.0)
