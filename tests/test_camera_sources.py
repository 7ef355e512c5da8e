"""Frame sources, the source table and the capture loop.

Real OpenCV decoding of a clip written here; the only fakes are hardware this host lacks: the
picamera2 module (tests/fakes/picamera2.py) and, for outage handling, tiny FrameSource subclasses
standing in for a camera that disconnects.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

from daemon.camera.base import CameraBackendMissing, CameraError, Frame, FrameSource, redact_url
from daemon.camera.capture import CaptureLoop, CaptureState
from daemon.camera.file_source import VideoFileSource
from daemon.camera.opencv_source import OpenCVDeviceSource, OpenCVStreamSource
from daemon.camera.picamera2_source import Picamera2Source
from daemon.camera.registry import parse_source_spec, source_from_config
from daemon.errors import ConfigError, FacegateError

FAKES = Path(__file__).parent / "fakes"
CLIP_FRAMES = 10
CLIP_FPS = 25.0
CLIP_SIZE = (64, 48)


def green_level(index: int) -> int:
    return 20 + 20 * index


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10-frame MJPG .avi: true-RGB red 200, blue 40, green 20+20·i encodes the frame number."""
    path = tmp_path_factory.mktemp("clips") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), CLIP_FPS, CLIP_SIZE)
    assert writer.isOpened(), "this OpenCV build cannot write MJPG .avi"
    for i in range(CLIP_FRAMES):
        bgr = np.empty((CLIP_SIZE[1], CLIP_SIZE[0], 3), dtype=np.uint8)
        bgr[..., 0], bgr[..., 1], bgr[..., 2] = 40, green_level(i), 200
        writer.write(bgr)
    writer.release()
    return path


def frame_number(frame: Frame) -> int:
    level = float(frame.rgb[..., 1].mean())
    return round((level - 20) / 20)


def read_all(source: FrameSource, limit: int = 1000) -> list[Frame]:
    frames = []
    while len(frames) < limit and (frame := source.read()) is not None:
        frames.append(frame)
    return frames


# -- video file -------------------------------------------------------------------------------


def test_file_source_reads_every_frame_in_rgb_then_ends(clip: Path) -> None:
    with VideoFileSource(clip, paced=False) as source:
        frames = read_all(source)
        assert source.read() is None  # stays ended
    assert [f.index for f in frames] == list(range(CLIP_FRAMES))
    assert [frame_number(f) for f in frames] == list(range(CLIP_FRAMES))
    first = frames[0].rgb
    assert first.shape == (CLIP_SIZE[1], CLIP_SIZE[0], 3) and first.dtype == np.uint8
    assert first.flags["C_CONTIGUOUS"]
    red, _, blue = first[..., 0].mean(), first[..., 1].mean(), first[..., 2].mean()
    assert abs(red - 200) < 6 and abs(blue - 40) < 6  # RGB, not OpenCV's BGR
    assert frames[0].size == CLIP_SIZE
    assert all(b.timestamp >= a.timestamp for a, b in itertools.pairwise(frames))


def test_file_source_loop_restarts_and_keeps_counting(clip: Path) -> None:
    with VideoFileSource(clip, loop=True, paced=False) as source:
        frames = read_all(source, limit=2 * CLIP_FRAMES + 5)
    assert len(frames) == 2 * CLIP_FRAMES + 5  # never ends
    assert [f.index for f in frames] == list(range(len(frames)))
    numbers = [frame_number(f) for f in frames]
    assert numbers == [i % CLIP_FRAMES for i in range(len(frames))]


def test_file_source_reopen_continues_indexes(clip: Path) -> None:
    source = VideoFileSource(clip, paced=False)
    source.open()
    first = read_all(source, limit=3)
    source.close()
    source.open()
    again = read_all(source, limit=3)
    source.close()
    assert [f.index for f in first + again] == list(range(6))
    assert [frame_number(f) for f in again] == [0, 1, 2]  # a reopened file starts over


def test_file_source_paces_to_file_or_configured_fps(clip: Path) -> None:
    own = VideoFileSource(clip)
    own.open()
    assert own.pace_fps == pytest.approx(CLIP_FPS)
    own.close()
    unpaced = VideoFileSource(clip, paced=False)
    unpaced.open()
    assert unpaced.pace_fps is None
    unpaced.close()

    fps = 20.0
    with VideoFileSource(clip, fps=fps) as paced:
        assert paced.pace_fps == pytest.approx(fps)
        frames = read_all(paced, limit=5)
    # A paced file cannot deliver faster than its rate (a lower bound: sleeping is never shorter).
    assert frames[-1].timestamp - frames[0].timestamp >= 4 / fps * 0.9


def test_file_source_missing_or_undecodable(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="not found"):
        VideoFileSource(tmp_path / "absent.mp4").open()
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"this is not a video" * 100)
    source = VideoFileSource(junk, paced=False)
    try:
        source.open()
    except CameraError:
        pass  # rejected at open: fine
    else:
        assert source.read() is None  # or opened with nothing to decode: ends at once
        source.close()
    with pytest.raises(ConfigError):
        VideoFileSource(junk, fps=0)


# -- picamera2 (fake module standing in for the absent hardware) --------------------------------


@pytest.fixture
def fake_picamera2(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("picamera2", FAKES / "picamera2.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.Picamera2.instances = []
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return module


def test_picamera2_frames_are_rgb_with_requested_size(fake_picamera2: ModuleType) -> None:
    source = source_from_config("picamera2", width=64, height=48, fps=15)
    assert isinstance(source, Picamera2Source)
    with source:
        frames = [source.read() for _ in range(3)]
    camera = fake_picamera2.Picamera2.instances[0]
    main = camera.camera_config["main"]
    assert main == {"format": "RGB888", "size": (64, 48)}
    assert camera.camera_config["controls"]["FrameDurationLimits"] == (66667, 66667)
    assert camera.calls[-2:] == ["stop", "close"] and camera.closed
    rgb = frames[0].rgb
    assert rgb.shape == (48, 64, 3) and rgb.flags["C_CONTIGUOUS"]
    assert tuple(rgb[10, 5]) == (255, 0, 0)  # left half is red in true RGB
    assert tuple(rgb[10, 60]) == (0, 0, 255)  # right half blue
    assert [int(f.rgb[0, 0, 1]) for f in frames] == [0, 1, 2]
    assert [f.index for f in frames] == [0, 1, 2]


def test_picamera2_absent_camera_is_a_transient_error(fake_picamera2: ModuleType) -> None:
    fake_picamera2.Picamera2.cameras_present = 0
    with pytest.raises(CameraError) as info:
        Picamera2Source(0, 64, 48).open()
    assert not info.value.permanent


def test_picamera2_not_installed_is_a_clear_permanent_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` fail
    source = source_from_config("picamera2:0")  # building the source does not import it
    with pytest.raises(CameraBackendMissing) as info:
        source.open()
    assert isinstance(info.value, FacegateError) and info.value.permanent
    assert "picamera2 is not installed" in str(info.value)
    assert "apt install python3-picamera2" in str(info.value)


def test_capture_loop_fails_fast_without_picamera2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with CaptureLoop(source_from_config("picamera2"), backoff_initial=0.01) as capture:
        assert capture.wait_frame(timeout=10) is None
        stats = capture.stats()
    assert stats.state == CaptureState.FAILED
    assert stats.reconnects == 0 and "picamera2 is not installed" in (stats.last_error or "")


def test_capture_loop_reopens_a_picamera2_that_disconnects(fake_picamera2: ModuleType) -> None:
    fake_picamera2.Picamera2.fail_after = 3
    source = source_from_config("picamera2", width=32, height=24)
    with CaptureLoop(source, backoff_initial=0.01, backoff_max=0.02) as capture:
        last = -1
        for _ in range(7):
            frame = capture.wait_frame(last, timeout=10)
            assert frame is not None
            last = frame.index
        stats = capture.stats()
    cameras = fake_picamera2.Picamera2.instances
    assert len(cameras) >= 3 and all(c.closed for c in cameras)
    assert stats.reconnects >= 2


# -- the source table -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kind", "target"),
    [
        ("picamera2", "picamera2", ""),
        ("picamera2:1", "picamera2", "1"),
        ("v4l2:/dev/video0", "v4l2", "/dev/video0"),
        ("v4l2:2", "v4l2", "2"),
        ("/dev/video3", "v4l2", "/dev/video3"),
        ("0", "v4l2", "0"),
        ("rtsp://cam.local:554/stream1", "rtsp", "rtsp://cam.local:554/stream1"),
        ("RTSP://cam/s", "rtsp", "RTSP://cam/s"),
        ("http://cam/video.mjpg", "http", "http://cam/video.mjpg"),
        ("https://cam/live.m3u8", "http", "https://cam/live.m3u8"),
        ("http://cam/clip.mp4", "http", "http://cam/clip.mp4"),
        ("file:/data/demo.webm", "file", "/data/demo.webm"),
        ("/data/demo.MP4", "file", "/data/demo.MP4"),
        ("relative/demo.mkv", "file", "relative/demo.mkv"),
        ("demo.avi", "file", "demo.avi"),
    ],
)
def test_spec_table(spec: str, kind: str, target: str) -> None:
    assert parse_source_spec(spec) == (kind, target)


@pytest.mark.parametrize(
    "spec",
    ["", "  ", "webcam", "/tmp/picture.jpg", "ftp://host/x", "v4l2:", "file:", "picamera2:x", "rtsp:cam"],
)
def test_unknown_or_incomplete_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError):
        source_from_config(spec)


def test_factories_build_the_right_backend(clip: Path) -> None:
    assert isinstance(source_from_config("/dev/video0", 640, 480, 30), OpenCVDeviceSource)
    assert source_from_config("v4l2:1").describe() == "v4l2:1"
    stream = source_from_config("rtsp://admin:s3cret@10.0.0.5:554/h264")
    assert isinstance(stream, OpenCVStreamSource)
    assert "s3cret" not in stream.describe() and "admin:***@10.0.0.5:554" in stream.describe()
    file_source = source_from_config(f"file:{clip}", fps=5, loop=True)
    assert isinstance(file_source, VideoFileSource) and "loop" in file_source.describe()
    with pytest.raises(ConfigError):
        source_from_config("/dev/video0", width=0)


def test_redact_url_keeps_urls_without_password() -> None:
    assert redact_url("rtsp://cam/stream") == "rtsp://cam/stream"
    assert redact_url("rtsp://u:p@[fe80::1]:554/s") == "rtsp://u:***@[fe80::1]:554/s"


def test_absent_v4l2_device_is_a_camera_error(tmp_path: Path) -> None:
    with pytest.raises(CameraError):
        OpenCVDeviceSource(str(tmp_path / "video9")).open()


# -- the capture loop -------------------------------------------------------------------------


class GatedSource(FrameSource):
    """A camera whose frames the test releases one at a time; ``finish()`` ends the stream."""

    def __init__(self) -> None:
        self._gate = threading.Semaphore(0)
        self._finished = False
        self._index = 0

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        self._gate.acquire()
        if self._finished:
            return None
        frame = Frame(np.zeros((4, 4, 3), np.uint8), time.monotonic(), self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return "gated"

    def release(self, n: int = 1) -> None:
        self._gate.release(n)

    def finish(self) -> None:
        self._finished = True
        self._gate.release(100)


class FlakySource(FrameSource):
    """Fake hardware: fails to open ``absent_opens`` times, then each session gives ``per_session``
    frames and disconnects (raises)."""

    def __init__(self, per_session: int, absent_opens: int = 0) -> None:
        self.per_session = per_session
        self.absent_opens = absent_opens
        self.opens = 0
        self.closes = 0
        self._left = 0
        self._index = 0

    def open(self) -> None:
        self.opens += 1
        if self.opens <= self.absent_opens:
            raise CameraError("no such device")
        self._left = self.per_session

    def read(self) -> Frame | None:
        if self._left == 0:
            raise CameraError("device disconnected")
        self._left -= 1
        frame = Frame(np.full((4, 4, 3), self._index % 256, np.uint8), time.monotonic(), self._index)
        self._index = (self._index + 1) % self.per_session  # the device restarts its own count
        return frame

    def close(self) -> None:
        self.closes += 1

    def describe(self) -> str:
        return "flaky"


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.002)


def test_newest_frame_wins_and_unconsumed_frames_count_as_drops() -> None:
    source = GatedSource()
    capture = CaptureLoop(source)
    assert capture.state == CaptureState.STOPPED
    capture.start()
    assert capture.latest() is None
    assert capture.wait_frame(timeout=0.05) is None  # nothing captured yet
    source.release(5)
    wait_until(lambda: capture.stats().frames_captured == 5)
    frame = capture.latest()
    assert frame is not None and frame.index == 4  # the newest, not the oldest
    assert capture.latest(after_index=4) is None  # nothing newer yet
    assert capture.latest() is frame  # taking again is allowed and not a drop
    stats = capture.stats()
    assert (stats.frames_dropped, stats.state) == (4, CaptureState.RUNNING)
    source.release(1)
    nxt = capture.wait_frame(after_index=4, timeout=10)
    assert nxt is not None and nxt.index == 5
    assert capture.stats().frames_dropped == 4  # frame 4 had been taken before 5 replaced it
    source.finish()
    assert capture.wait_frame(after_index=5, timeout=10) is None  # ended, no newer frame
    assert capture.state == CaptureState.ENDED
    capture.stop()
    assert capture.state == CaptureState.ENDED


def test_slow_consumer_gets_increasing_newest_frames_and_drop_accounting_adds_up(clip: Path) -> None:
    source = VideoFileSource(clip, loop=True, paced=False)
    taken: list[int] = []
    with CaptureLoop(source) as capture:
        last = -1
        while len(taken) < 20:
            frame = capture.wait_frame(last, timeout=10)
            assert frame is not None
            taken.append(frame.index)
            last = frame.index
            # A consumer slower than the camera: by the time it comes back, two more were captured.
            wait_until(lambda: capture.stats().frames_captured >= last + 3)  # noqa: B023
        capture.stop()
        stats = capture.stats()
        final = capture.latest(last)  # the frame left in the slot, if nobody took it
    assert taken == sorted(set(taken))
    assert stats.state == CaptureState.STOPPED
    leftover = 0 if final is None else 1
    assert stats.frames_dropped + len(taken) + leftover == stats.frames_captured
    assert stats.frames_dropped >= len(taken) - 1  # at least one skipped between two takes


def test_flaky_camera_is_reopened_with_continuous_indexes(caplog: pytest.LogCaptureFixture) -> None:
    source = FlakySource(per_session=3)
    caplog.set_level(logging.DEBUG, logger="daemon.camera.capture")
    with CaptureLoop(source, backoff_initial=0.01, backoff_max=0.02) as capture:
        indexes = []
        last = -1
        while len(indexes) < 10:
            frame = capture.wait_frame(last, timeout=10)
            assert frame is not None
            indexes.append(frame.index)
            last = frame.index
        stats = capture.stats()
    assert indexes == sorted(set(indexes))  # strictly increasing although the device restarts at 0
    assert source.opens >= 4 and stats.reconnects >= 3
    assert source.closes >= source.opens  # every session was released
    assert "device disconnected" in (stats.last_error or "")
    lost = [r for r in caplog.records if r.getMessage().startswith("camera lost")]
    recovered = [r for r in caplog.records if r.getMessage().startswith("camera recovered")]
    assert lost and len(recovered) >= len(lost) - 1


def test_camera_absent_at_start_logs_once_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    source = FlakySource(per_session=10**9, absent_opens=5)
    caplog.set_level(logging.DEBUG, logger="daemon.camera.capture")
    with CaptureLoop(source, backoff_initial=0.005, backoff_max=0.01) as capture:
        assert capture.wait_frame(timeout=10) is not None
        stats = capture.stats()
    assert source.opens == 6 and stats.reconnects == 5
    ours = [r for r in caplog.records if r.name == "daemon.camera.capture"]
    warnings = [r for r in ours if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].getMessage().startswith("camera unavailable")
    infos = [r.getMessage() for r in ours if r.levelno == logging.INFO]
    assert sum(m.startswith("camera recovered") for m in infos) == 1


def test_backoff_grows_and_stop_interrupts_it() -> None:
    source = FlakySource(per_session=1, absent_opens=10**6)
    capture = CaptureLoop(source, backoff_initial=0.01, backoff_max=60.0)
    capture.start()
    wait_until(lambda: source.opens >= 4)
    assert capture.state == CaptureState.RECONNECTING
    capture.stop(timeout=10)  # waits 0.01, 0.02, 0.04, … : stop must not sit out the backoff
    opens = source.opens
    assert capture.state == CaptureState.STOPPED
    assert capture.wait_frame(timeout=0.01) is None
    time.sleep(0.05)
    assert source.opens == opens  # the thread is gone
    with pytest.raises(RuntimeError):
        capture.start()


def test_file_capture_reports_fps_and_ends(clip: Path) -> None:
    fps_seen = []
    with CaptureLoop(VideoFileSource(clip, fps=200)) as capture:
        last = -1
        while (frame := capture.wait_frame(last, timeout=10)) is not None:
            last = frame.index
            if frame.index >= 2:
                fps_seen.append(capture.stats().fps)
        stats = capture.stats()
    assert fps_seen and all(fps > 0 for fps in fps_seen)
    assert stats.state == CaptureState.ENDED and stats.frames_captured == CLIP_FRAMES
    assert last == CLIP_FRAMES - 1  # the last frame is always delivered
