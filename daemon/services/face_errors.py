"""Exceptions of the enrollment and recognition services.

Like the library's errors they carry what the API layer needs to pick a wire code (daemon/api/
device_errors.py maps them in one place); none of them leaves anything written behind.
"""

from __future__ import annotations

from daemon.errors import FacegateError


class NoFaceDetected(FacegateError):
    """An image that needs a face has none (104200 FACE_NOT_FOUND). ``field`` names the image."""

    def __init__(self, field: str) -> None:
        super().__init__(f"no face detected in {field}")
        self.field = field


class BadQuality(FacegateError):
    """The face fails the enrollment quality gate (104201); ``checks`` lists every failed check."""

    def __init__(self, checks: list[str]) -> None:
        super().__init__(f"face fails the quality checks: {', '.join(checks)}")
        self.checks = list(checks)


class LivenessUnavailable(FacegateError):
    """Liveness was requested, but this build has no liveness model: never answer a made-up score."""

    def __init__(self) -> None:
        super().__init__("liveness detection is not available on this device")


class ModelMismatch(FacegateError):
    """The engine's embedding model is not the one the library's index was built for.

    Templates of different models are never compared, so such a search or enrollment cannot run.
    """

    def __init__(self, engine_model: str, library_model: str) -> None:
        super().__init__(f"the engine runs {engine_model!r} but the library index holds {library_model!r}")
        self.engine_model = engine_model
        self.library_model = library_model
