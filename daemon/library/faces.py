"""SQL for images and faces. Every function runs inside the caller's transaction (see store.py).

Originals, crops and templates are sealed with the key ring on the way in and unsealed on the way
out (daemon/library/keys.py): bound to ``images.image_id`` and ``faces.face_token``.

Functions that change faces return an IndexChange describing what the in-memory index must mirror
once the transaction has committed.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence

import numpy as np

from daemon.library import groups
from daemon.library.errors import FaceNotFound, GroupNotFound, ImageAlreadyExists, ImageNotFound
from daemon.library.ids import new_face_token
from daemon.library.keys import KeyRing
from daemon.library.sealing import OVERHEAD
from daemon.library.types import FaceDetail, FaceRecord, FaceSummary, ImageData, IndexChange, Rect

_SUMMARY_COLUMNS = "f.id, i.image_id, f.face_token, i.description, i.name, i.gender"
_CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit


def add_face(
    conn: sqlite3.Connection,
    keys: KeyRing,
    *,
    image_id: str,
    original: bytes,
    kind: str,
    width: int,
    height: int,
    description: str,
    name: str,
    gender: str,
    rect: Rect,
    crop_jpeg: bytes,
    template: np.ndarray,
    model_id: str,
    quality: float | None,
    group_ids: Sequence[str],
) -> tuple[FaceRecord, IndexChange]:
    """Insert the image, its face and the face's bindings."""
    if conn.execute("SELECT 1 FROM images WHERE image_id = ?", (image_id,)).fetchone():
        raise ImageAlreadyExists(image_id)
    now = time.time()
    sealed = seal_original(keys, image_id, original)
    image_row = conn.execute(
        "INSERT INTO images (image_id, original, kind, width, height, description, name, gender,"
        " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (image_id, sealed, kind, width, height, description, name, gender, now),
    ).lastrowid
    token = new_face_token()
    face_row = conn.execute(
        "INSERT INTO faces (face_token, image, rect_left, rect_top, rect_right, rect_bottom,"
        " crop_jpeg, template, model_id, quality, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            token,
            image_row,
            *rect,
            keys.seal(crop_jpeg, "faces", "crop_jpeg", token),
            keys.seal(template.tobytes(), "faces", "template", token),
            model_id,
            quality,
            now,
        ),
    ).lastrowid
    assert face_row is not None
    mask = 0
    for group_id in dict.fromkeys(group_ids):  # de-duplicated, order kept
        row, slot = groups.lookup(conn, group_id)
        if row is None:
            raise GroupNotFound(group_id)  # after the inserts: the rollback undoes them
        conn.execute("INSERT INTO bindings (face, grp) VALUES (?, ?)", (face_row, row))
        mask |= 1 << slot
    change = IndexChange(added=[(face_row, model_id, template, mask)])
    return FaceRecord(id=face_row, face_token=token, image_id=image_id, rect=Rect(*rect)), change


def list_faces(
    conn: sqlite3.Connection, offset: int, limit: int, group_id: str | None = None, name: str | None = None
) -> tuple[int, list[FaceSummary]]:
    """(total, page) ordered by face id; with group_id only the faces bound to that group; with name
    only the faces whose name contains it (case-insensitive for ASCII letters)."""
    if offset < 0 or limit < 0:
        raise ValueError("offset and limit must be >= 0")
    if name:
        pattern = "%" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where = " WHERE i.name LIKE ? ESCAPE '\\'"
        total = conn.execute(
            "SELECT count(*) FROM faces f JOIN images i ON i.id = f.image" + where, (pattern,)
        ).fetchone()[0]
        rows = conn.execute(
            f"SELECT {_SUMMARY_COLUMNS} FROM faces f JOIN images i ON i.id = f.image{where}"
            " ORDER BY f.id LIMIT ? OFFSET ?",
            (pattern, limit, offset),
        ).fetchall()
        return int(total), [FaceSummary(*row) for row in rows]
    if group_id is None:
        total = conn.execute("SELECT count(*) FROM faces").fetchone()[0]
        rows = conn.execute(
            f"SELECT {_SUMMARY_COLUMNS} FROM faces f JOIN images i ON i.id = f.image"
            " ORDER BY f.id LIMIT ? OFFSET ?",
            (limit, offset),
        ).fetchall()
    else:
        grp = groups.require(conn, group_id)
        total = conn.execute("SELECT count(*) FROM bindings WHERE grp = ?", (grp,)).fetchone()[0]
        rows = conn.execute(
            f"SELECT {_SUMMARY_COLUMNS} FROM bindings b JOIN faces f ON f.id = b.face"
            " JOIN images i ON i.id = f.image WHERE b.grp = ? ORDER BY f.id LIMIT ? OFFSET ?",
            (grp, limit, offset),
        ).fetchall()
    return int(total), [FaceSummary(*row) for row in rows]


def update_face(
    conn: sqlite3.Connection, face_token: str, name: str | None, description: str | None, gender: str | None
) -> IndexChange:
    """Change the name, description or gender (None: unchanged). They belong to the face's original
    image, so every face of that image shows the change. The templates do not change."""
    face_row = require_face(conn, face_token)
    for column, value in (("name", name), ("description", description), ("gender", gender)):
        if value is not None:
            conn.execute(
                f"UPDATE images SET {column} = ? WHERE id = (SELECT image FROM faces WHERE id = ?)",
                (value, face_row),
            )
    return IndexChange()


def delete_face(conn: sqlite3.Connection, face_token: str) -> IndexChange:
    """Delete one face (crop, template, bindings); its original image stays."""
    face_row = require_face(conn, face_token)
    conn.execute("DELETE FROM faces WHERE id = ?", (face_row,))
    return IndexChange(removed=[face_row])


def delete_image(conn: sqlite3.Connection, image_id: str) -> IndexChange:
    """Delete an original image and every face of it."""
    row = conn.execute("SELECT id FROM images WHERE image_id = ?", (image_id,)).fetchone()
    if row is None:
        raise ImageNotFound(image_id)
    removed = [r[0] for r in conn.execute("SELECT id FROM faces WHERE image = ?", (row[0],))]
    conn.execute("DELETE FROM images WHERE id = ?", (row[0],))  # faces and bindings cascade
    return IndexChange(removed=removed)


def get_face(conn: sqlite3.Connection, keys: KeyRing, face_token: str) -> FaceDetail:
    return faces_by_ids(conn, keys, [require_face(conn, face_token)])[0]


def faces_by_ids(conn: sqlite3.Connection, keys: KeyRing, face_rows: Sequence[int]) -> list[FaceDetail]:
    """Details of the faces with these row ids, in the given order; ids no longer present are
    skipped (a face deleted between a search and this lookup is simply not a hit)."""
    found: dict[int, FaceDetail] = {}
    for chunk in _chunks(list(dict.fromkeys(face_rows))):
        marks = ",".join("?" * len(chunk))
        bound: dict[int, list[str]] = {}
        for face_row, group_id in conn.execute(
            f"SELECT b.face, g.group_id FROM bindings b JOIN groups g ON g.id = b.grp"
            f" WHERE b.face IN ({marks}) ORDER BY g.id",
            chunk,
        ):
            bound.setdefault(face_row, []).append(group_id)
        for r in conn.execute(
            f"SELECT f.id, f.face_token, i.image_id, i.description, i.name, i.gender, f.rect_left,"
            f" f.rect_top, f.rect_right, f.rect_bottom, f.crop_jpeg"
            f" FROM faces f JOIN images i ON i.id = f.image WHERE f.id IN ({marks})",
            chunk,
        ):
            found[r[0]] = FaceDetail(
                id=r[0],
                face_token=r[1],
                image_id=r[2],
                description=r[3],
                name=r[4],
                gender=r[5],
                rect=Rect(*r[6:10]),
                group_ids=bound.get(r[0], []),
                crop_jpeg=keys.unseal(r[10], "faces", "crop_jpeg", r[1]),
            )
    return [found[i] for i in face_rows if i in found]


def get_image(conn: sqlite3.Connection, keys: KeyRing, image_id: str) -> ImageData:
    row = conn.execute("SELECT id, original FROM images WHERE image_id = ?", (image_id,)).fetchone()
    if row is None:
        raise ImageNotFound(image_id)
    tokens = [
        r[0] for r in conn.execute("SELECT face_token FROM faces WHERE image = ? ORDER BY id", (row[0],))
    ]
    return ImageData(original=keys.unseal(row[1], "images", "original", image_id), face_tokens=tokens)


def seal_original(keys: KeyRing, image_id: str, original: bytes) -> bytes:
    return keys.seal(original, "images", "original", image_id)


def reset(conn: sqlite3.Connection) -> IndexChange:
    """Delete all images, faces and bindings; groups stay."""
    conn.execute("DELETE FROM bindings")
    conn.execute("DELETE FROM faces")
    conn.execute("DELETE FROM images")
    return IndexChange(cleared=True)


def load_templates(
    conn: sqlite3.Connection, keys: KeyRing, model_id: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids int64 (n,), templates float32 (n, dim), masks uint64 (n,)) of one model, by id.

    Templates of other models are left out: they are never compared with this model's. Each is
    unsealed as it is read (a blob that fails its check stops the load: SealedBlobCorrupt).
    """
    count, longest, shortest = conn.execute(
        "SELECT COUNT(*), MAX(LENGTH(template)), MIN(LENGTH(template)) FROM faces WHERE model_id = ?",
        (model_id,),
    ).fetchone()
    if not count:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32), np.zeros(0, np.uint64)
    if longest != shortest:
        raise ValueError(f"templates of model {model_id!r} have different lengths: {shortest}..{longest}")
    # Filled row by row from the cursor: fetching every row first, then joining and copying them,
    # tripled the start-up peak at 100k faces (447 MiB against 271 MiB once running).
    ids = np.empty(count, np.int64)
    matrix = np.empty((count, (longest - OVERHEAD) // 4), np.float32)
    cursor = conn.execute(
        "SELECT id, face_token, template FROM faces WHERE model_id = ? ORDER BY id", (model_id,)
    )
    filled = 0
    for filled, (face_id, token, blob) in enumerate(cursor, start=1):
        ids[filled - 1] = face_id
        matrix[filled - 1] = np.frombuffer(keys.unseal(blob, "faces", "template", token), np.float32)
    ids, matrix = ids[:filled], matrix[:filled]
    masks = groups.masks_of_model(conn, model_id)
    mask_array = np.fromiter((masks.get(int(i), 0) for i in ids), np.uint64, len(ids))
    return ids, matrix, mask_array


def require_face(conn: sqlite3.Connection, face_token: str) -> int:
    row = conn.execute("SELECT id FROM faces WHERE face_token = ?", (face_token,)).fetchone()
    if row is None:
        raise FaceNotFound(face_token)
    return int(row[0])


def _chunks(values: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
