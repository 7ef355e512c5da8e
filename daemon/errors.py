"""The root of every exception Facegate raises on purpose.

Each API family maps these to its own wire format in one place (daemon/api/); anything that is not a
FacegateError is a bug and is answered 500 with a request id.
"""


class FacegateError(Exception):
    """Root of the project's own exceptions."""


class ConfigError(FacegateError):
    """The configuration is invalid; the message names the key path."""


class ModelError(FacegateError):
    """A model file is missing, corrupt, or does not match its recorded sha256."""


class ImageError(FacegateError):
    """An input image cannot be used: bad bytes, unsupported type, too large or too small.

    ``reason`` is a short machine-friendly slug (e.g. ``too_large``), the message is for people.
    """

    def __init__(self, message: str, reason: str = "invalid_image") -> None:
        super().__init__(message)
        self.reason = reason


class Overloaded(FacegateError):
    """Every inference worker is busy and the bounded queue is full: answer 503, retry later."""

    def __init__(self, retry_after: float = 1.0) -> None:
        super().__init__("inference workers are saturated")
        self.retry_after = retry_after
