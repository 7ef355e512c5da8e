"""Helpers shared by the device-API tests (tests/test_api_*.py): requests, images, library state."""

from __future__ import annotations

import base64
import sqlite3
import struct
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from conftest import AUTH, FACES, NO_FACES, read_rgb

from daemon.config import Config
from daemon.library import sealing
from daemon.vision.image import encode_jpeg

OBAMA = FACES / "obama.jpg"
OBAMA2 = FACES / "obama2.jpg"
OBAMA3 = FACES / "obama3.jpg"
BIDEN = FACES / "biden.jpg"
ASTRONAUT = FACES / "astronaut.png"
RGBA_PNG = FACES / "32bit.png"
NO_FACE = NO_FACES / "rocket.jpg"

MIME = {".jpg": "image/jpeg", ".png": "image/png", ".bmp": "image/bmp"}


def data_url(source: Path | bytes, mime: str | None = None) -> str:
    """A data URL as the original document's clients send it (`data:image/jpeg;base64,...`)."""
    if isinstance(source, Path):
        mime = mime or MIME[source.suffix]
        source = source.read_bytes()
    return f"data:{mime or 'image/jpeg'};base64,{base64.b64encode(source).decode()}"


def plain_b64(source: Path | bytes) -> str:
    data = source.read_bytes() if isinstance(source, Path) else source
    return base64.b64encode(data).decode()


def jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    return encode_jpeg(rgb, quality)


def variants(count: int) -> list[bytes]:
    """``count`` distinct enrollable JPEGs: test faces shrunk, shifted crops and mirror images."""
    # Half size keeps the faces above the 64-px enrollment minimum (astronaut's is small already).
    scales = {OBAMA: 0.5, BIDEN: 0.5, ASTRONAUT: 1.0, OBAMA2: 0.5, OBAMA3: 0.5}
    bases = [
        cv2.resize(read_rgb(p), None, fx=f, fy=f, interpolation=cv2.INTER_AREA) for p, f in scales.items()
    ]
    out: list[bytes] = []
    shift = 0
    while len(out) < count:
        for base in bases:
            img = base[shift : base.shape[0] - shift, 2 * shift :]
            if shift % 2:
                img = img[:, ::-1]
            out.append(jpeg(np.ascontiguousarray(img)))
            if len(out) == count:
                break
        shift += 1
    return out


async def call(
    client: Any, method: str, path: str, json: Any = None, status: int = 200, code: int = 0, **kw: Any
) -> dict[str, Any]:
    """One device-API request; checks HTTP status, the envelope and the code; returns the body."""
    kw.setdefault("headers", AUTH)
    response = await client.request(method, path, json=json, **kw)
    body = await response.json()
    assert response.status == status, (response.status, body)
    assert set(body) == {"code", "msg", "data"}, body
    assert body["code"] == code, body
    if code == 0:
        assert body["msg"] == "SUCCESS"
    else:
        assert body["data"] == {}
    return body


async def enroll(client: Any, image: Path | bytes, **fields: Any) -> dict[str, Any]:
    """Register an image; returns ``data`` (id, imageId, faceToken, rect)."""
    payload = {"image": data_url(image), "description": "", "imageMd5": "", "name": "", "gender": ""}
    payload.update(fields)
    return (await call(client, "POST", "/api/faces", payload))["data"]


async def create_group(client: Any, group_id: str, score: int = 80, name: str | None = None) -> None:
    payload = {"groupId": group_id, "groupName": name or f"name-{group_id}", "groupScore": score}
    await call(client, "POST", "/api/faceGroups", payload)


async def bind(client: Any, token: str, groups: list[str]) -> dict[str, Any]:
    return (await call(client, "POST", f"/api/faceGroups/binding/{token}", {"faceGroupList": groups}))["data"]


async def unbind(client: Any, token: str, groups: list[str]) -> dict[str, Any]:
    return (await call(client, "DELETE", f"/api/faceGroups/unbind/{token}", {"faceGroupList": groups}))[
        "data"
    ]


async def search(client: Any, image: Path | bytes, groups: list[str], **fields: Any) -> dict[str, Any]:
    payload = {"image": data_url(image), "group": groups, **fields}
    return (await call(client, "POST", "/api/face/search", payload))["data"]


async def api_state(client: Any) -> dict[str, Any]:
    """What the API shows of the library: every face, every group, every group's members."""
    faces = (await call(client, "GET", "/api/faces?pageOffset=0&pageSize=1000"))["data"]
    groups = (await call(client, "GET", "/api/faceGroups"))["data"]["faceGroupList"]
    members = {}
    for g in groups:
        data = (await call(client, "GET", f"/api/faceGroups/{g['groupId']}?pageSize=1000"))["data"]
        members[g["groupId"]] = [f["faceToken"] for f in data["face"]]
    return {"faces": faces, "groups": groups, "members": members}


def db_state(path: Path) -> dict[str, Any]:
    """The library file read through an independent connection: every row that matters. Blobs are
    checked to be sealed and reported by their plaintext length."""
    conn = sqlite3.connect(path)
    try:
        for table, column in (("images", "original"), ("faces", "crop_jpeg"), ("faces", "template")):
            unsealed = conn.execute(
                f"SELECT count(*) FROM {table} WHERE substr({column}, 1, 4) != ?", (sealing.MAGIC,)
            ).fetchone()[0]
            assert unsealed == 0, f"{unsealed} {table}.{column} values are stored in plaintext"
        extra = sealing.OVERHEAD
        images = {r[0]: r[1] - extra for r in conn.execute("SELECT image_id, length(original) FROM images")}
        faces = {
            r[0]: {"image": r[1], "crop": r[2] - extra, "template": r[3] - extra}
            for r in conn.execute(
                "SELECT f.face_token, i.image_id, length(f.crop_jpeg), length(f.template)"
                " FROM faces f JOIN images i ON i.id = f.image"
            )
        }
        bindings = sorted(
            conn.execute(
                "SELECT f.face_token, g.group_id FROM bindings b JOIN faces f ON f.id = b.face"
                " JOIN groups g ON g.id = b.grp"
            ).fetchall()
        )
        groups = sorted(r[0] for r in conn.execute("SELECT group_id FROM groups"))
        return {"images": images, "faces": faces, "bindings": bindings, "groups": groups}
    finally:
        conn.close()


async def full_state(client: Any, config: Config) -> dict[str, Any]:
    return {"api": await api_state(client), "db": db_state(config.database_path)}


def png_header_only(width: int, height: int, bit_depth: int = 16, colour_type: int = 6) -> bytes:
    """A PNG whose header claims width×height (16-bit RGBA by default) with a token IDAT: anything that
    tried to decode it would fail as corrupt, so a "too large" answer proves it was refused first."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
