"""The root of every exception Facegate raises on purpose.

Each API family maps these to its own wire format in one declared table (daemon/api/errors.py); anything
that is not a FacegateError is a bug and is answered 500, in the family's format, with a request id.
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


class RequestError(FacegateError):
    """The request cannot be served as sent (malformed, missing field, over a limit): answered with
    ``status`` (a 4xx, or 503 for a busy budget) and the message, in the format of the route's family."""

    def __init__(self, message: str, status: int = 400, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class IntegrityError(FacegateError):
    """Stored data (the library or the task database) is missing or corrupt: the daemon refuses to
    start (exit status 3, docs/OPERATIONS.md) instead of serving an empty or broken library."""
