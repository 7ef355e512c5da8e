"""The shared multipart reader (daemon/api/multipart.py) through a real aiohttp server: its limits hold
with and without Content-Length, and every refusal is the exception that names it."""

from __future__ import annotations

import asyncio

from aiohttp import web

from daemon.api.multipart import FieldSpec, FormError, read_form

BOUNDARY = "b0undary"


def body(
    *parts: tuple[str, bytes], files: tuple[str, ...] = (), extra: str = "", boundary: str = BOUNDARY
) -> bytes:
    """A multipart/form-data body; names in ``files`` are sent with a filename."""
    out = b""
    for name, value in parts:
        filename = f'; filename="{name}.bin"' if name in files else ""
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n{extra}\r\n'
        out += head.encode() + value + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


async def make_app(aiohttp_client, budget: int, other_cap: int | None = None):
    """A route answering the kept fields and the sunk chunks, or the refusal's class and facts."""

    async def handler(request: web.Request) -> web.Response:
        sunk: dict[str, bytearray] = {"sync": bytearray(), "async": bytearray()}

        async def slow(chunk: bytes) -> None:
            await asyncio.sleep(0)
            sunk["async"] += chunk

        fields = {
            "a": FieldSpec(10),
            "t": FieldSpec(10, once=False),
            "s": FieldSpec(10_000, open=lambda _part: sunk["sync"].extend),
            "f": FieldSpec(10_000, open=lambda part: slow if part.filename else None),
        }
        try:
            kept = await read_form(request, fields, budget, other_cap)
        except FormError as exc:
            facts = {k: v for k, v in vars(exc).items() if k not in ("status", "retry_after")}
            return web.json_response({"error": type(exc).__name__, "message": str(exc), **facts})
        return web.json_response(
            {"kept": {k: v.decode() for k, v in kept.items()}, "sunk": {k: len(v) for k, v in sunk.items()}}
        )

    app = web.Application()
    app.router.add_post("/", handler)
    return await aiohttp_client(app)


async def post(client, data: bytes, chunked: bool = False, content_type: str | None = None) -> dict:
    headers = {"Content-Type": content_type or f"multipart/form-data; boundary={BOUNDARY}"}

    async def pieces():
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    response = await client.post("/", data=pieces() if chunked else data, headers=headers)
    assert response.status == 200
    return await response.json()


async def test_fields_are_kept_or_sunk_and_unknown_parts_dropped(aiohttp_client) -> None:
    client = await make_app(aiohttp_client, budget=100_000)
    for chunked in (False, True):
        form = body(
            ("a", b"hello"), ("junk", bytes(5000)), ("s", bytes(3000)), ("f", bytes(7000)), files=("f",)
        )
        answer = await post(client, form, chunked)
        assert answer == {"kept": {"a": "hello"}, "sunk": {"sync": 3000, "async": 7000}}


async def test_a_file_field_the_route_declines_is_an_unknown_part(aiohttp_client) -> None:
    client = await make_app(aiohttp_client, budget=100_000, other_cap=100)
    answer = await post(client, body(("f", bytes(50))))  # no filename: dropped
    assert answer == {"kept": {}, "sunk": {"sync": 0, "async": 0}}
    answer = await post(client, body(("f", bytes(500))))  # ... and capped like any unknown part
    assert answer["error"] == "FieldTooLong" and answer["cap"] == 100


async def test_the_budget_holds_with_and_without_content_length(aiohttp_client) -> None:
    client = await make_app(aiohttp_client, budget=20_000)
    form = body(("a", b"x"), ("junk", bytes(30_000)))
    answer = await post(client, form)
    assert answer["error"] == "BodyTooLarge" and answer["declared"] is True
    assert answer["size"] == len(form) and answer["budget"] == 20_000
    answer = await post(client, form, chunked=True)  # an unknown part is counted while it arrives
    assert answer["error"] == "BodyTooLarge" and answer["declared"] is False
    assert 20_000 < answer["size"] <= 30_001


async def test_caps_and_repeats(aiohttp_client) -> None:
    client = await make_app(aiohttp_client, budget=100_000, other_cap=1000)
    answer = await post(client, body(("a", b"0123456789!")))
    assert answer == {
        "error": "FieldTooLong",
        "message": "field 'a' exceeds the limit of 10 bytes",
        "name": "a",
        "cap": 10,
    }
    answer = await post(client, body(("junk", bytes(1001))), chunked=True)
    assert answer["error"] == "FieldTooLong" and answer["name"] == "junk" and answer["cap"] == 1000
    answer = await post(client, body(("a", b"1"), ("a", b"2")))
    assert answer == {"error": "DuplicateField", "message": "field 'a' is given more than once", "name": "a"}
    assert (await post(client, body(("t", b"1"), ("t", b"2"))))["kept"] == {"t": "2"}


async def test_forms_that_are_not_readable(aiohttp_client) -> None:
    client = await make_app(aiohttp_client, budget=100_000)
    answer = await post(client, b"{}", content_type="application/json")
    assert answer["error"] == "NotMultipart" and answer["content_type"] == "application/json"
    inner = body(("b", b"x"), boundary="inner")
    nested = body(("a", inner), extra="Content-Type: multipart/mixed; boundary=inner\r\n")
    answer = await post(client, nested)
    assert answer == {"error": "MalformedForm", "message": "nested multipart bodies are not accepted"}
    answer = await post(client, b"garbage\r\n--zzz\r\n")
    assert answer["error"] == "MalformedForm" and answer["message"].startswith("malformed multipart body: ")
