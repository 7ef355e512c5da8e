"""Library bundles: a portable, versioned, signed copy of faces, images, templates, groups and bindings.

Format (version 1): UTF-8 JSON, one record per line, read and written one record at a time so a
100k-face library never sits whole in memory.

- line 1, the header: ``{"format": "facegate-library-bundle", "version": 1, "model_id": …, "dim": …,
  "created": <unix time>, "groups": [<filter> …]}``
- ``{"t": "group", "group_id", "name", "type", "score"}`` for every exported group (``default``
  included), then
- ``{"t": "image", "image_id", "kind", "width", "height", "description", "name", "gender", "created",
  "original": <base64>, "faces": [{"id", "face_token", "rect": [l, t, r, b], "crop": <base64>,
  "template": <base64 float32>, "quality", "created", "groups": [group_id …]} …]}``
- last line: ``{"t": "end", "records": <lines between header and end>, "hmac": <hex>}`` where hmac is
  HMAC-SHA256 with the bundle key over every byte before the end line.

Blobs are stored sealed (daemon/library/keys.py): an export unseals them, so the bundle carries
plaintext originals, crops and templates (protected in transit by the HMAC only: keep bundles as
private as backups); an import seals them with the target's current key.

Only templates of the exporting daemon's embedding model are written; an import refuses a bundle
whose signature, format, version or model id does not match, and applies the rest in one transaction
(the caller's), so a refused import leaves the target as it was.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from daemon.library import groups
from daemon.library.errors import LibraryError
from daemon.library.faces import seal_original
from daemon.library.keys import KeyRing
from daemon.library.types import DEFAULT_GROUP

FORMAT = "facegate-library-bundle"
VERSION = 1
MAX_LINE_BYTES = 64 * 1024 * 1024  # one image record: a 4 MB original is ~5.4 MB of base64
_BATCH = 200  # images read per query while exporting
ImportMode = Literal["merge", "replace"]


class BundleError(LibraryError):
    """A bundle is refused: not a bundle, another version or model, a bad signature, a conflict."""


@dataclass(frozen=True)
class ImportResult:
    images: int
    faces: int
    groups_created: int
    mode: str


def load_key(path: Path, create: bool) -> bytes:
    """The bundle key (hex in a file, mode 0600); created with 32 random bytes when asked."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        if not create:
            raise BundleError(
                f"no bundle key at {path}: copy the exporting device's key there or pass --key"
            ) from None
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(32) + "\n")
        return load_key(path, create=False)
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"cannot read bundle key {path}: {exc}") from exc
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise BundleError(f"bundle key {path} is not hex") from None
    if len(key) < 16:
        raise BundleError(f"bundle key {path} is shorter than 16 bytes")
    return key


# -- export ----------------------------------------------------------------------------------------


def export_lines(
    conn: sqlite3.Connection,
    ring: KeyRing,
    key: bytes,
    model_id: str,
    dim: int,
    group_ids: Sequence[str] = (),
) -> Iterator[bytes]:
    """The bundle, line by line. Run it inside a read transaction for a consistent snapshot."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    selected = list(dict.fromkeys(group_ids))
    for group_id in selected:
        groups.require(conn, group_id)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "model_id": model_id,
        "dim": dim,
        "created": time.time(),
        "groups": selected,
    }
    records = 0
    for record in _records(conn, ring, model_id, selected):
        line = _line(record) if records else _line(header) + _line(record)
        mac.update(line)
        records += 1
        yield line
    if not records:
        line = _line(header)
        mac.update(line)
        yield line
    yield _line({"t": "end", "records": records, "hmac": mac.hexdigest()})


def _records(
    conn: sqlite3.Connection, ring: KeyRing, model_id: str, selected: list[str]
) -> Iterator[dict[str, Any]]:
    group_rows = conn.execute("SELECT id, group_id, name, type, score FROM groups ORDER BY id").fetchall()
    names = {int(row[0]): str(row[1]) for row in group_rows}
    # A face is exported when bound to a selected group; its bindings to every exported group
    # (the selected ones and `default`, which every bundle carries) go with it.
    chosen = {row for row, group_id in names.items() if group_id in selected}
    exported = {
        row for row, group_id in names.items() if not selected or row in chosen or group_id == DEFAULT_GROUP
    }
    for row in group_rows:
        if int(row[0]) in exported:
            yield {"t": "group", "group_id": row[1], "name": row[2], "type": row[3], "score": int(row[4])}
    last = 0
    while True:
        images = conn.execute(
            "SELECT id, image_id, kind, width, height, description, name, gender, created, original"
            " FROM images WHERE id > ? ORDER BY id LIMIT ?",
            (last, _BATCH),
        ).fetchall()
        if not images:
            return
        for image in images:
            last = int(image[0])
            faces = _faces(conn, ring, last, model_id, names, exported, chosen if selected else None)
            if selected and not faces:
                continue
            yield {
                "t": "image",
                "image_id": image[1],
                "kind": image[2],
                "width": int(image[3]),
                "height": int(image[4]),
                "description": image[5],
                "name": image[6],
                "gender": image[7],
                "created": float(image[8]),
                "original": _b64(ring.unseal(image[9], "images", "original", image[1])),
                "faces": faces,
            }


def _faces(
    conn: sqlite3.Connection,
    ring: KeyRing,
    image_row: int,
    model_id: str,
    names: dict[int, str],
    exported: set[int],
    chosen: set[int] | None,
) -> list[dict[str, Any]]:
    out = []
    rows = conn.execute(
        "SELECT id, face_token, rect_left, rect_top, rect_right, rect_bottom, crop_jpeg, template,"
        " quality, created FROM faces WHERE image = ? AND model_id = ? ORDER BY id",
        (image_row, model_id),
    ).fetchall()
    for row in rows:
        bound = [int(g) for (g,) in conn.execute("SELECT grp FROM bindings WHERE face = ?", (row[0],))]
        if chosen is not None and not chosen.intersection(bound):
            continue
        bound = [g for g in bound if g in exported]
        out.append(
            {
                "id": int(row[0]),
                "face_token": row[1],
                "rect": [int(v) for v in row[2:6]],
                "crop": _b64(ring.unseal(row[6], "faces", "crop_jpeg", row[1])),
                "template": _b64(ring.unseal(row[7], "faces", "template", row[1])),
                "quality": row[8],
                "created": float(row[9]),
                "groups": sorted(names[g] for g in bound),
            }
        )
    return out


# -- import ----------------------------------------------------------------------------------------


def verify(stream: IO[bytes], key: bytes, model_id: str, dim: int) -> dict[str, Any]:
    """Read a whole bundle and check it; its header, or BundleError naming what is wrong."""
    header: dict[str, Any] = {}
    for _ in _verified_records(stream, key, model_id, dim, header):
        pass
    return header


def apply(
    conn: sqlite3.Connection,
    ring: KeyRing,
    stream: IO[bytes],
    key: bytes,
    model_id: str,
    dim: int,
    mode: ImportMode,
) -> ImportResult:
    """Write a bundle into the library inside the caller's transaction (which must roll back on any
    exception). The signature is checked again while reading, before the caller commits."""
    if mode not in ("merge", "replace"):
        raise BundleError(f"unknown import mode {mode!r}")
    if mode == "replace":
        conn.execute("DELETE FROM images")
        conn.execute("DELETE FROM groups WHERE group_id != ?", (DEFAULT_GROUP,))
    images = faces = created = 0
    for record in _verified_records(stream, key, model_id, dim, {}):
        if record["t"] == "group":
            created += _apply_group(conn, record, mode)
        else:
            faces += _apply_image(conn, ring, record, dim, keep_ids=mode == "replace")
            images += 1
    return ImportResult(images=images, faces=faces, groups_created=created, mode=mode)


def _apply_group(conn: sqlite3.Connection, record: dict[str, Any], mode: ImportMode) -> int:
    group_id, name, type_, score = (record[k] for k in ("group_id", "name", "type", "score"))
    row, _ = groups.lookup(conn, group_id)
    try:
        if row is None:
            groups.create_group(conn, group_id, name, type_, int(score))
            return 1
        if mode == "replace":
            groups.modify_group(conn, group_id, name, type_, int(score))
    except LibraryError as exc:
        raise BundleError(f"group {group_id!r}: {exc}") from exc
    return 0


def _apply_image(
    conn: sqlite3.Connection, ring: KeyRing, record: dict[str, Any], dim: int, keep_ids: bool
) -> int:
    """Insert one image with its faces; ``keep_ids`` (replace mode: the tables were emptied) keeps
    the faces' numeric ids, which the device API shows as ``id``."""
    image_id = record["image_id"]
    if conn.execute("SELECT 1 FROM images WHERE image_id = ?", (image_id,)).fetchone():
        raise BundleError(f"image {image_id!r} is already in the library (use --replace, or delete it)")
    try:
        image_row = conn.execute(
            "INSERT INTO images (image_id, original, kind, width, height, description, name, gender,"
            " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                image_id,
                seal_original(ring, image_id, _unb64(record["original"])),
                record["kind"],
                int(record["width"]),
                int(record["height"]),
                record["description"],
                record["name"],
                record["gender"],
                float(record["created"]),
            ),
        ).lastrowid
        for face in record["faces"]:
            template = _unb64(face["template"])
            _check_template(template, dim, face["face_token"])
            face_row = conn.execute(
                "INSERT INTO faces (id, face_token, image, rect_left, rect_top, rect_right, rect_bottom,"
                " crop_jpeg, template, model_id, quality, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    int(face["id"]) if keep_ids else None,
                    face["face_token"],
                    image_row,
                    *(int(v) for v in face["rect"]),
                    ring.seal(_unb64(face["crop"]), "faces", "crop_jpeg", face["face_token"]),
                    ring.seal(template, "faces", "template", face["face_token"]),
                    record["_model_id"],
                    None if face["quality"] is None else float(face["quality"]),
                    float(face["created"]),
                ),
            ).lastrowid
            for group_id in face["groups"]:
                group_row, _ = groups.lookup(conn, group_id)
                if group_row is None:
                    raise BundleError(f"face {face['face_token']!r} is bound to unknown group {group_id!r}")
                conn.execute("INSERT INTO bindings (face, grp) VALUES (?, ?)", (face_row, group_row))
    except sqlite3.IntegrityError as exc:
        raise BundleError(f"image {image_id!r} conflicts with the library: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"image {image_id!r}: malformed record ({exc})") from exc
    return len(record["faces"])


def _verified_records(
    stream: IO[bytes], key: bytes, model_id: str, dim: int, header_out: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """Every record after the header; the signature and count are checked when the end line comes,
    so a consumer that writes must roll back if this raises at the end."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    first = _read_line(stream)
    header = _parse(first, "header")
    if header.get("format") != FORMAT:
        raise BundleError("not a Facegate library bundle")
    if header.get("version") != VERSION:
        raise BundleError(
            f"bundle format version {header.get('version')!r} is not supported (this daemon reads {VERSION})"
        )
    if header.get("model_id") != model_id or header.get("dim") != dim:
        raise BundleError(
            f"bundle templates are from embedding model {header.get('model_id')!r}, this library uses "
            f"{model_id!r}: re-enroll instead of importing"
        )
    header_out.update(header)
    mac.update(first)
    records = 0
    while True:
        line = _read_line(stream)
        record = _parse(line, "record")
        kind = record.get("t")
        if kind == "end":
            if _read_line(stream, allow_eof=True):
                raise BundleError("data after the end of the bundle")
            if not hmac.compare_digest(str(record.get("hmac", "")), mac.hexdigest()):
                raise BundleError(
                    "bundle signature does not match: it was altered or signed with another key"
                )
            if record.get("records") != records:
                raise BundleError("bundle record count does not match its end line")
            return
        mac.update(line)
        records += 1
        if kind not in ("group", "image"):
            raise BundleError(f"unknown record type {kind!r}")
        record["_model_id"] = model_id
        yield record


def _read_line(stream: IO[bytes], allow_eof: bool = False) -> bytes:
    line = stream.readline(MAX_LINE_BYTES + 1)
    if not line and not allow_eof:
        raise BundleError("bundle is truncated (no end line)")
    if len(line) > MAX_LINE_BYTES:
        raise BundleError(f"bundle has a record longer than {MAX_LINE_BYTES} bytes")
    return line


def _parse(line: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        raise BundleError(f"bundle {what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise BundleError(f"bundle {what} is not a JSON object")
    return value


def _check_template(blob: bytes, dim: int, token: str) -> None:
    if len(blob) != dim * 4:
        raise BundleError(f"face {token!r}: template has {len(blob)} bytes, expected {dim * 4}")
    values = np.frombuffer(blob, dtype=np.float32)
    if not np.isfinite(values).all() or not values.any():
        raise BundleError(f"face {token!r}: template is not finite and non-zero")


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"


def _b64(blob: bytes) -> str:
    return base64.b64encode(bytes(blob)).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)
