"""Reading a multipart/form-data upload part by part, with its byte limits enforced while it arrives.

Every upload route (feature API, privacy API, video tasks) reads its form here: the whole body counts
against a budget (checked from Content-Length first, and counted anyway: a client may send none), each
known field has its own cap, unknown parts are read and dropped, nested bodies and repeated fields are
refused, and aiohttp's parse errors become MalformedForm. The exceptions carry the facts; each route
turns them into its own wire format and wording.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import BadContentDispositionHeader, BadContentDispositionParam

from daemon.api.uploads import within
from daemon.errors import RequestError

CHUNK = 256 * 1024

Sink = Callable[[bytes], Awaitable[None] | None]
"""Takes each chunk of a field as it arrives: sync (``digest.update``) or async (a file writer)."""


class FormError(RequestError):
    """The upload is not the form a route can read (400); the message is the generic wording."""


class NotMultipart(FormError):
    def __init__(self, content_type: str) -> None:
        super().__init__(f"expected multipart/form-data, got {content_type!r}")
        self.content_type = content_type


class BodyTooLarge(FormError):
    """The body is over ``budget`` bytes: ``size`` as declared by Content-Length, or counted so far."""

    def __init__(self, budget: int, size: int, declared: bool) -> None:
        super().__init__(f"request body exceeds the limit of {budget} bytes", 413)
        self.budget = budget
        self.size = size
        self.declared = declared


class FieldTooLong(FormError):
    def __init__(self, name: str, cap: int) -> None:
        super().__init__(f"field {name!r} exceeds the limit of {cap} bytes")
        self.name = name
        self.cap = cap


class DuplicateField(FormError):
    """Which of two images (or vectors) to use is not ours to guess."""

    def __init__(self, name: str) -> None:
        super().__init__(f"field {name!r} is given more than once")
        self.name = name


class MalformedForm(FormError):
    """A nested multipart body, or one aiohttp cannot parse."""


@dataclass(frozen=True)
class FieldSpec:
    """How one named field is read.

    ``cap``: its byte limit (FieldTooLong beyond). ``open``: called with the part when it starts,
    returns the sink its chunks go to instead of being kept, or None to treat the part as an unknown
    one (e.g. a file field sent without a filename). ``once``: a second part of that name is
    DuplicateField; otherwise the later one replaces the earlier.
    """

    cap: int
    open: Callable[[BodyPartReader], Sink | None] | None = None
    once: bool = True


def check_form(request: web.Request, budget: int) -> None:
    """NotMultipart, or BodyTooLarge from Content-Length: before a byte of the body is read."""
    if not request.content_type.startswith("multipart/"):
        raise NotMultipart(request.content_type)
    if request.content_length is not None and request.content_length > budget:
        raise BodyTooLarge(budget, request.content_length, declared=True)


async def read_form(
    request: web.Request, fields: dict[str, FieldSpec], budget: int, other_cap: int | None = None
) -> dict[str, bytes]:
    """The kept fields (those without ``open``) by name. Unknown parts are read and dropped, each
    within ``other_cap`` when given; the whole body stays within ``budget``."""
    check_form(request, budget)
    kept: dict[str, bytes] = {}
    seen: set[str] = set()
    total = 0
    try:
        reader = await request.multipart()
        while (part := await within(request, reader.next())) is not None:
            if not isinstance(part, BodyPartReader):
                raise MalformedForm("nested multipart bodies are not accepted")
            name = _disposition(part)
            spec = fields.get(name)
            sink = None
            if spec is not None:
                if spec.once and name in seen:
                    raise DuplicateField(name)
                seen.add(name)
                if spec.open is not None and (sink := spec.open(part)) is None:
                    spec = None
            cap = spec.cap if spec is not None else other_cap
            data = bytearray()
            size = 0
            while chunk := await within(request, part.read_chunk(CHUNK)):
                total += len(chunk)
                if total > budget:
                    raise BodyTooLarge(budget, total, declared=False)
                size += len(chunk)
                if cap is not None and size > cap:
                    raise FieldTooLong(name, cap)
                if sink is not None:
                    if inspect.isawaitable(pending := sink(chunk)):
                        await pending
                elif spec is not None:
                    data += chunk
            if spec is not None and sink is None:
                kept[name] = bytes(data)
    except (BadContentDispositionHeader, BadContentDispositionParam):  # where warnings are errors
        raise MalformedForm("malformed Content-Disposition of a part") from None
    except (ValueError, AssertionError, RuntimeError, HttpProcessingError) as exc:
        # aiohttp's multipart parse errors; HttpProcessingError: part headers (InvalidHeader, LineTooLong)
        reason = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
        raise MalformedForm(f"malformed multipart body: {reason}"[:300]) from None
    return kept


def _disposition(part: BodyPartReader) -> str:
    """The part's name, its Content-Disposition parsed (name and filename are cached on the part).

    aiohttp only *warns* about a malformed Content-Disposition: a warning per request would fill the
    log with client text (the daemon ignores them: quiet_client_warnings) and is an exception where
    warnings are errors. Here it is MalformedForm, whatever the process's warning filters. No await
    inside: the filter swap is never seen by another task.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", BadContentDispositionHeader)
        warnings.simplefilter("error", BadContentDispositionParam)
        try:
            _ = part.filename
            return part.name or ""
        except (BadContentDispositionHeader, BadContentDispositionParam):
            raise MalformedForm("malformed Content-Disposition of a part") from None


def quiet_client_warnings() -> None:
    """Process-wide: never print aiohttp's warnings about a client's Content-Disposition (client text,
    one log entry per distinct bad header); read_form refuses such parts itself."""
    for category in (BadContentDispositionHeader, BadContentDispositionParam):
        warnings.filterwarnings("ignore", category=category)
