"""Bad input is a 4xx in the route family's format, never a 500; client text never forges a log line.

Every case was a 500 (or a forged audit line) before: a non-UTF-8 Authorization header, malformed
multipart part headers, a lone surrogate in a JSON string that reaches SQLite, a 5000-digit integer or
deep nesting in feature-API JSON, a ``%0A`` in the path or in an upload's file name. All run against
a real server on 127.0.0.1 with real SQLite; raw bytes go through a socket where aiohttp's client
would refuse to send them.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from conftest import AUTH, FACE_IMAGES, TEST_TOKEN

BOUNDARY = "hostileboundary"


@pytest.fixture
async def client(make_client, config):
    return await make_client(config)


async def raw_request(client, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes as they are; (status, body) of the answer."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(head + b"\r\n" + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def http_head(path: str, *headers: bytes, length: int | None = None, method: str = "GET") -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close", *headers]
    if length is not None:
        lines.append(f"Content-Length: {length}".encode())
    return b"\r\n".join(lines) + b"\r\n"


@pytest.mark.parametrize("credential", [b"Bearer \xff\xfe\xfd", b"\xc3\x28 abc", b"Bearer t\x80ken"])
async def test_a_non_utf8_authorization_header_is_refused_in_the_family_format(client, credential) -> None:
    """401 or 403 (which is the access model's call), never a 500, in the route family's format."""
    status, body = await raw_request(client, http_head("/api/faceGroups", b"Authorization: " + credential))
    assert status in (401, 403)
    assert json.loads(body)["code"] == {401: 104901, 403: 104902}[status]  # the device envelope
    status, body = await raw_request(
        client, http_head("/api/compare_features", b"Authorization: " + credential, method="POST", length=0)
    )
    assert status in (401, 403) and json.loads(body)["success"] is False


def multipart_with_part_header(header: bytes) -> bytes:
    return f"--{BOUNDARY}\r\n".encode() + header + b"\r\n\r\nxyz\r\n" + f"--{BOUNDARY}--\r\n".encode()


MALFORMED_PART_HEADERS = [
    b'Content-Disposition: form-data; name="image"\r\nno colon in this header line',
    b'Content-Disposition: form-data; name="image"\r\n' + b"X-Long: " + b"a" * 70_000,
    b'Content-Disposition: form-data; name="image"\r\n' + b"\x00bad: header",
    b'Content-Disposition: form-data; name="image"\r\n: empty name',
]


@pytest.mark.parametrize("header", MALFORMED_PART_HEADERS)
@pytest.mark.parametrize(
    "path, family",
    [
        ("/api/extract_feature", "feature"),
        ("/api/v1/blur-faces", "plain"),
        ("/api/v1/tasks/blur-video", "plain"),
    ],
)
async def test_malformed_multipart_part_headers_are_400(client, header, path, family) -> None:
    body = multipart_with_part_header(header)
    head = http_head(
        path,
        f"Authorization: Bearer {TEST_TOKEN}".encode(),
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}".encode(),
        method="POST",
        length=len(body),
    )
    status, answer = await raw_request(client, head, body)
    assert status == 400, answer
    parsed = json.loads(answer)
    assert parsed["success"] is False if family == "feature" else "error" in parsed


@pytest.mark.parametrize("where", ["groupId", "groupName"])
async def test_a_lone_surrogate_in_a_device_string_is_invalid_parameter(client, where) -> None:
    fields = {"groupId": "g1", "groupName": "group one", "groupScore": 80}
    fields[where] = "a\ud800b"
    raw = json.dumps(fields)  # ensure_ascii: the surrogate travels as the escape \ud800
    assert "\\ud800" in raw
    r = await client.post("/api/faceGroups", data=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status == 400
    body = await r.json()
    assert body["code"] == 104900 and where in body["msg"]
    r = await client.post(
        "/api/faceGroups/binding/x",
        data=json.dumps({"faceGroupList": ["\udc80"]}),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert r.status == 400 and (await r.json())["code"] == 104900
    # a valid pair (an emoji escaped as two surrogates) is still a fine name
    good = json.dumps({"groupId": "g2", "groupName": "smile \U0001f600", "groupScore": 80})
    r = await client.post("/api/faceGroups", data=good, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status == 200 and (await r.json())["code"] == 0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"feature1": [' + b"9" * 5000 + b"], " + b'"feature2": [1]}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"feature1": ' + b'{"a":' * 40_000 + b"1" + b"}" * 40_000 + b"}",
        b'{"feature1": "\xff\xfe"}',
    ],
    ids=["5000-digits", "deep-array", "deep-object", "not-utf8"],
)
async def test_hostile_feature_json_is_400(client, raw) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    r = await client.post("/api/compare_features", data=raw, headers=headers)
    assert r.status == 400
    body = await r.json()
    assert body["success"] is False and "not valid JSON" in body["message"]


async def test_hostile_feature_field_in_a_form_is_400(client) -> None:
    form = {"image": FACE_IMAGES[0].read_bytes(), "feature": "[" + "9" * 5000 + "]"}
    r = await client.post("/api/compare_image_feature", data=form, headers=AUTH)
    assert r.status == 400 and (await r.json())["success"] is False


async def test_a_newline_in_the_path_cannot_forge_an_audit_line(client, caplog) -> None:
    forged = "x%0A1.2.3.4 GET /api/faces 200 0.1ms principal=admin%0D%0A"
    with caplog.at_level(logging.INFO, logger="facegate.audit"):
        r = await client.get(f"/api/faceGroups/{forged}", headers=AUTH)
        assert r.status < 500
        r = await client.get(f"/nowhere/{forged}")
        assert r.status == 401
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "facegate.audit"]
    assert len(lines) == 2
    for line in lines:
        assert "\n" not in line and "\r" not in line and "%0A" in line


async def test_upload_file_names_are_never_logged_nor_stored_raw(client, caplog, tmp_path) -> None:
    from clip_maker import make_clip

    from daemon.api.tasks import TASKS

    clip = make_clip(tmp_path / "c.avi", size=(160, 120), frames=4)

    def form(disposition: str) -> bytes:
        return (
            f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
            "Content-Type: video/x-msvideo\r\n\r\n".encode()
            + clip.path.read_bytes()
            + f"\r\n--{BOUNDARY}--\r\n".encode()
        )

    headers = {**AUTH, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    # RFC 5987 filename*: aiohttp decodes %0A into a newline; %ED%A0%80 (a surrogate) does not decode
    newline = "form-data; name=\"video\"; filename*=UTF-8''evil%0A2026-01-01%20INFO%20forged%1B%5B2J.avi"
    undecodable = "form-data; name=\"video\"; filename*=UTF-8''evil%ED%A0%80forged.avi"
    with caplog.at_level(logging.DEBUG):
        r = await client.post("/api/v1/tasks/blur-video", data=form(undecodable), headers=headers)
        assert r.status == 400 and "Content-Disposition" in (await r.json())["error"]
        r = await client.post("/api/v1/tasks/blur-video", data=form(newline), headers=headers)
        assert r.status == 202, await r.text()
    for rec in caplog.records:
        text = rec.getMessage()
        assert "forged" not in text and "evil" not in text
    record = await client.app[TASKS].get((await r.json())["task_id"])
    assert record.original_name.startswith("evil") and record.original_name.isprintable()


async def _slow_body(data: bytes, pause: float = 0.05, piece: int = 16 * 1024):
    for i in range(0, len(data), piece):
        yield data[i : i + piece]
        await asyncio.sleep(pause)


async def test_concurrent_buffered_uploads_stay_within_the_budget(make_client, config) -> None:
    """40 uploads at once, each held while it trickles in: beyond the budget, 503 + Retry-After."""
    import aiohttp

    from daemon.api.uploads import UPLOADS
    from daemon.config import with_overrides

    limit = 2 * 1024 * 1024
    client = await make_client(with_overrides(config, limits={"max_buffered_upload_bytes": limit}))
    image = FACE_IMAGES[0].read_bytes()
    form = aiohttp.FormData()
    form.add_field("image", image, filename="a.jpg", content_type="image/jpeg")
    payload = form()
    body = b"".join([chunk async for chunk in _bytes_of(payload)])
    headers = {**AUTH, "Content-Type": payload.content_type, "Content-Length": str(len(body))}

    async def one() -> tuple[int, dict, str | None]:
        r = await client.post("/detect", data=_slow_body(body), headers=headers)
        return r.status, await r.json(), r.headers.get("Retry-After")

    answers = await asyncio.gather(*(one() for _ in range(40)))
    statuses = sorted(status for status, _, _ in answers)
    assert set(statuses) == {200, 503}, statuses
    budget = client.app[UPLOADS]
    assert budget.peak <= limit and budget.held == 0
    assert statuses.count(200) <= limit // len(body)
    for status, answer, retry in answers:
        if status == 503:
            assert retry is not None and int(retry) >= 1 and "uploads" in answer["error"]


async def _bytes_of(payload):
    chunks: list[bytes] = []

    class Sink:
        async def write(self, data: bytes) -> None:
            chunks.append(bytes(data))

    await payload.write(Sink())
    for chunk in chunks:
        yield chunk


@pytest.mark.parametrize(
    "path, content_type, family",
    [
        ("/api/faces", "application/json", "device"),
        ("/api/compare_features", "application/json", "feature"),
        ("/api/v1/blur-faces", f"multipart/form-data; boundary={BOUNDARY}", "plain"),
    ],
)
async def test_a_stalled_body_is_408(make_client, config, path, content_type, family) -> None:
    from daemon.config import with_overrides

    client = await make_client(with_overrides(config, limits={"body_timeout": 1}))
    head = http_head(
        path,
        f"Authorization: Bearer {TEST_TOKEN}".encode(),
        f"Content-Type: {content_type}".encode(),
        method="POST",
        length=100_000,
    )
    status, answer = await raw_request(client, head, f"--{BOUNDARY}\r\n".encode())  # then nothing
    assert status == 408
    parsed = json.loads(answer)
    if family == "device":
        assert parsed["code"] == 104910
    elif family == "feature":
        assert parsed["success"] is False
    else:
        assert "stalled" in parsed["error"]


ROUTES = [
    ("POST", "/api/faces"),
    ("POST", "/api/faceGroups"),
    ("PUT", "/api/faceGroups"),
    ("DELETE", "/api/faceGroups/x"),
    ("POST", "/api/faceGroups/binding/x"),
    ("DELETE", "/api/faceGroups/unbind/x"),
    ("POST", "/api/face/compare"),
    ("POST", "/api/face/search"),
    ("POST", "/api/extract_feature"),
    ("POST", "/api/compare_features"),
    ("POST", "/api/compare_image_feature"),
    ("POST", "/api/v1/blur-faces"),
    ("POST", "/process"),
    ("POST", "/detect"),
    ("POST", "/api/v1/tasks/blur-video"),
]
CORPUS = [
    b"",
    b"{",
    b"null",
    b"[]",
    b'{"image": 5, "group": "x", "topN": 1e999}',
    b'{"image": "\\ud800", "groupId": "\\udfff", "feature1": [1e400], "feature2": {}}',
    b'{"groupId": "' + b"a" * 5000 + b'", "groupScore": ' + b"9" * 5000 + b"}",
    b"[" * 20000,
    bytes(range(256)) * 4,
    b"--"
    + BOUNDARY.encode()
    + b"\r\nContent-Disposition: form-data; name=image; filename\r\n\r\n\xff\xd8\xff",
    b"--"
    + BOUNDARY.encode()
    + b'\r\nContent-Disposition: form-data; name="image"\r\n\r\nxx\r\n--'
    + BOUNDARY.encode()
    + b'\r\nContent-Type: multipart/mixed; boundary="q"\r\n\r\n--q--',
]
CONTENT_TYPES = ["application/json", f"multipart/form-data; boundary={BOUNDARY}", "text/plain; charset=\xff"]


async def test_a_corpus_of_hostile_bodies_never_gets_a_500(client) -> None:
    """Every route family × a hand-made corpus × content types: always a 4xx (or 2xx), never a 5xx."""
    seen = set()
    for method, path in ROUTES:
        for body in CORPUS:
            for content_type in CONTENT_TYPES:
                head = http_head(
                    path,
                    f"Authorization: Bearer {TEST_TOKEN}".encode(),
                    b"Content-Type: " + content_type.encode("latin-1"),
                    method=method,
                    length=len(body),
                )
                status, answer = await raw_request(client, head, body)
                assert status < 500, (method, path, body[:60], content_type, answer[:200])
                seen.add(status)
    assert seen <= {200, 202, 400, 404, 408, 409, 413, 415}, seen


@pytest.mark.parametrize(
    "target",
    [
        "/api/faces/image/%FF%FE",
        "/api/faces/faceToken/%ED%A0%80",
        "/api/faceGroups/%00?pageSize=99999999999999999999999",
        "/api/faces?pageOffset=-1&pageSize=%FF",
        "/api/v1/tasks/%0A%0D",
        "/api/v1/tasks/..%2F..%2Fetc%2Fpasswd/result",
    ],
)
async def test_hostile_paths_and_queries_are_4xx(client, target) -> None:
    status, _ = await raw_request(client, http_head(target, f"Authorization: Bearer {TEST_TOKEN}".encode()))
    assert 400 <= status < 500
