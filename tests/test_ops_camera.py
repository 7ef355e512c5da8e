"""A picamera2 that is installed but cannot be imported (Bookworm's numpy ABI clash) is reported once,
with the reason, and not retried forever."""

from __future__ import annotations

import sys

import pytest

from daemon.camera.capture import CaptureLoop, CaptureState
from daemon.camera.registry import source_from_config

# The message numpy gives when apt's simplejpeg (built for numpy 1.x) is imported under numpy 2.x
# (picamera2 issues #1088, #1211).
ABI_MESSAGE = (
    "numpy.dtype size changed, may indicate binary incompatibility. Expected 96 from C header, got 88 "
    "from PyObject"
)


@pytest.fixture
def broken_picamera2(tmp_path, monkeypatch):
    package = tmp_path / "picamera2"
    package.mkdir()
    (package / "__init__.py").write_text(f"raise ValueError({ABI_MESSAGE!r})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)


def test_a_broken_picamera2_fails_once_with_the_reason(broken_picamera2, caplog):
    with CaptureLoop(source_from_config("picamera2"), backoff_initial=0.01) as capture:
        assert capture.wait_frame(timeout=10) is None
        stats = capture.stats()
    assert stats.state == CaptureState.FAILED and stats.reconnects == 0
    assert "dtype size changed" in (stats.last_error or "")
    assert "simplejpeg" in (stats.last_error or "")
    failures = [r for r in caplog.records if "camera failed" in r.getMessage()]
    assert len(failures) == 1
