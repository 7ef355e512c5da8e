"""Reading and validating device-API requests: the JSON body, its fields, paging, path ids.

Everything here raises InvalidParameter (400, 104900) with a reason that names the field, and runs
before any work is done, so a bad request changes nothing. Limits are in bytes of UTF-8, as the
original document states them. JSON ``null`` counts as "absent" for an optional field.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from daemon.api.device_errors import InvalidParameter
from daemon.api.uploads import read_body
from daemon.appkeys import CONFIG
from daemon.library.ids import IMAGE_ID_MAX_BYTES, valid_image_md5
from daemon.services.workers import InferencePool
from daemon.vision.engine import VisionEngine

# Bodies up to this size are parsed on the event loop (≤ ~1 ms); larger ones carry images and are
# parsed in the inference pool (a 4 MB image is a 5.6 MB body: ~30 ms of json.loads).
JSON_ON_LOOP_BYTES = 256 * 1024

DESCRIPTION_BYTES = 255
NAME_BYTES = 128
GENDER_BYTES = 16
IMAGE_MD5_BYTES = IMAGE_ID_MAX_BYTES  # the client-chosen imageId
GROUP_ID_BYTES = 32
GROUP_NAME_BYTES = 128
GROUP_TYPE_BYTES = 128
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_GROUP_LIST = 256  # entries of faceGroupList / group: more than 4× the 64 groups that can exist

_DECIMAL = re.compile(r"[0-9]{1,18}")  # < 2**63: fits SQLite's integers


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object."""
    if not body.strip():
        raise InvalidParameter("request body is empty, expected a JSON object")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidParameter("request body is not UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidParameter(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise InvalidParameter("malformed JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise InvalidParameter(f"the JSON body must be an object, not {_json_type(value)}")
    return value


async def read_object(request: web.Request, pool: InferencePool[VisionEngine]) -> Body:
    """Read and parse the JSON body; a large one is parsed off the event loop."""
    body = await read_body(request, request.app[CONFIG].server.max_request_bytes)
    if len(body) <= JSON_ON_LOOP_BYTES:
        return Body(parse_object(body))
    return Body(await pool.run(lambda _engine: parse_object(body)))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _storable(key: str, value: str) -> str:
    """A string SQLite can store: JSON may carry a lone surrogate (``"\\ud800"``), which has no UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidParameter(f"{key} holds an unpaired UTF-16 surrogate (\\ud800-\\udfff)") from None
    return value


class Body:
    """Typed access to the fields of a JSON object, each check naming the field."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def _get(self, key: str, required: bool) -> Any:
        value = self._data.get(key)
        if value is None and required:
            raise InvalidParameter(f"{key} is required")
        return value

    def string(
        self, key: str, max_bytes: int, *, required: bool = False, non_empty: bool = False
    ) -> str | None:
        """A string of at most ``max_bytes`` UTF-8 bytes; None when absent and not required."""
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidParameter(f"{key} must be a string, not {_json_type(value)}")
        if non_empty and not value:
            raise InvalidParameter(f"{key} must not be empty")
        size = utf8_len(value)
        if size > max_bytes:
            raise InvalidParameter(f"{key} is {size} bytes, the limit is {max_bytes} bytes (UTF-8)")
        return _storable(key, value)

    def integer(self, key: str, low: int, high: int, *, required: bool = False) -> int | None:
        """A JSON integer in [low, high] (true/false and 80.0 are not integers)."""
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidParameter(f"{key} must be an integer, not {_json_type(value)}")
        if not low <= value <= high:
            raise InvalidParameter(f"{key} must be between {low} and {high}, not {value}")
        return value

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise InvalidParameter(f"{key} must be true or false, not {_json_type(value)}")
        return value

    def string_list(self, key: str, max_items: int = MAX_GROUP_LIST) -> list[str]:
        """A required, non-empty array of strings."""
        value = self._get(key, True)
        if not isinstance(value, list):
            raise InvalidParameter(f"{key} must be an array of strings, not {_json_type(value)}")
        if not value:
            raise InvalidParameter(f"{key} must not be empty")
        if len(value) > max_items:
            raise InvalidParameter(f"{key} has {len(value)} entries, the limit is {max_items}")
        for item in value:
            if not isinstance(item, str):
                raise InvalidParameter(f"{key} must hold only strings, found {_json_type(item)}")
            _storable(key, item)
        return value

    def image(self, key: str) -> str:
        """A required base64 image (or data URL); its content is checked when it is decoded."""
        value = self._get(key, True)
        if not isinstance(value, str):
            raise InvalidParameter(f"{key} must be a base64 string, not {_json_type(value)}")
        if not value:
            raise InvalidParameter(f"{key} must not be empty")
        return value

    def image_md5(self, key: str = "imageMd5") -> str:
        """The optional client-chosen imageId: empty, or ≤ 32 characters of A-Z a-z 0-9 - _ =."""
        value = self.string(key, IMAGE_MD5_BYTES) or ""
        if value and not valid_image_md5(value):
            raise InvalidParameter(f"{key} may hold only the characters A-Z a-z 0-9 - _ =")
        return value

    def group_id(self, key: str = "groupId") -> str:
        """A groupId as created: non-empty, ≤ 32 bytes, no '/' (it could not be addressed in a URL)."""
        value = self.string(key, GROUP_ID_BYTES, required=True, non_empty=True)
        assert value is not None
        if "/" in value:
            raise InvalidParameter(f"{key} must not contain '/'")
        return value


def _query_int(request: web.Request, key: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(key, "")
    if raw == "":
        return default
    if not _DECIMAL.fullmatch(raw):
        raise InvalidParameter(f"{key} must be a non-negative integer, not {raw[:20]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise InvalidParameter(f"{key} must be between {low} and {high}, not {value}")
    return value


def paging(request: web.Request) -> tuple[int, int]:
    """(pageOffset, pageSize) from the query: offset ≥ 0 (default 0), 1 ≤ size ≤ 1000 (default 100)."""
    offset = _query_int(request, "pageOffset", 0, 0, 2**63 - 1)
    size = _query_int(request, "pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    return offset, size
