"""SQL for groups and bindings. Every function runs inside the caller's transaction (store.py).

Each group owns a slot 0..63, the bit it sets in the index's uint64 mask of every face bound to it.
A freed slot is reused by the next group: the deletion's IndexChange clears that bit from every face
that had it, so a new group never inherits old members.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterable, Sequence

from daemon.library.errors import (
    GroupIdConflict,
    GroupInUse,
    GroupNameConflict,
    GroupNotFound,
    GroupOverLimit,
)
from daemon.library.types import (
    BIND_ERROR_UNKNOWN_GROUP,
    DEFAULT_GROUP,
    MAX_GROUPS,
    BindResult,
    DeleteGroupResult,
    GroupInfo,
    GroupRef,
    IndexChange,
)

# Faces bound to group ?1 and to no other group.
_ONLY_IN_GROUP = (
    "SELECT b.face FROM bindings b WHERE b.grp = ?1"
    " AND NOT EXISTS (SELECT 1 FROM bindings o WHERE o.face = b.face AND o.grp != ?1)"
)


def lookup(conn: sqlite3.Connection, group_id: str) -> tuple[int | None, int]:
    """(row id, slot) of a group, or (None, -1) when it does not exist."""
    row = conn.execute("SELECT id, slot FROM groups WHERE group_id = ?", (group_id,)).fetchone()
    return (None, -1) if row is None else (int(row[0]), int(row[1]))


def require(conn: sqlite3.Connection, group_id: str) -> int:
    row, _ = lookup(conn, group_id)
    if row is None:
        raise GroupNotFound(group_id)
    return row


def resolve(conn: sqlite3.Connection, group_ids: Sequence[str]) -> list[GroupRef]:
    """Mask bit and score of each group, in the given order (duplicates dropped)."""
    refs = []
    for group_id in dict.fromkeys(group_ids):
        row = conn.execute("SELECT slot, score FROM groups WHERE group_id = ?", (group_id,)).fetchone()
        if row is None:
            raise GroupNotFound(group_id)
        refs.append(GroupRef(group_id=group_id, mask=1 << int(row[0]), score=int(row[1])))
    return refs


def list_groups(conn: sqlite3.Connection) -> list[GroupInfo]:
    rows = conn.execute(
        "SELECT g.group_id, g.type, g.name, g.score, count(b.face) FROM groups g"
        " LEFT JOIN bindings b ON b.grp = g.id GROUP BY g.id ORDER BY g.id"
    ).fetchall()
    return [GroupInfo(*row) for row in rows]


def create_group(conn: sqlite3.Connection, group_id: str, name: str, type_: str, score: int) -> None:
    _check_score(score)
    if lookup(conn, group_id)[0] is not None:
        raise GroupIdConflict(group_id)
    if conn.execute("SELECT 1 FROM groups WHERE name = ?", (name,)).fetchone():
        raise GroupNameConflict(name)
    used = {r[0] for r in conn.execute("SELECT slot FROM groups")}
    free = [slot for slot in range(MAX_GROUPS) if slot not in used]
    if not free:
        raise GroupOverLimit(MAX_GROUPS)
    conn.execute(
        "INSERT INTO groups (group_id, name, type, score, slot, created) VALUES (?, ?, ?, ?, ?, ?)",
        (group_id, name, type_, score, free[0], time.time()),
    )


def modify_group(
    conn: sqlite3.Connection,
    group_id: str,
    name: str | None = None,
    type_: str | None = None,
    score: int | None = None,
) -> None:
    """Change the given fields; None leaves a field as it is."""
    row = require(conn, group_id)
    if name is not None:
        clash = conn.execute("SELECT id FROM groups WHERE name = ?", (name,)).fetchone()
        if clash is not None and clash[0] != row:
            raise GroupNameConflict(name)
        conn.execute("UPDATE groups SET name = ? WHERE id = ?", (name, row))
    if type_ is not None:
        conn.execute("UPDATE groups SET type = ? WHERE id = ?", (type_, row))
    if score is not None:
        _check_score(score)
        conn.execute("UPDATE groups SET score = ? WHERE id = ?", (score, row))


def delete_group(
    conn: sqlite3.Connection, group_id: str, mode: int, protected: Collection[str]
) -> tuple[DeleteGroupResult, IndexChange]:
    """The four deleteAllFace modes of spec 2.3.

    1: unbind the group's faces, delete the group (faces stay, even if now in no group).
    2: delete every face of the group (their other bindings go too; originals stay), delete group.
    3: unbind; faces that were only in this group lose their face row (crop + template), their
       originals stay; the group stays.
    4: unbind; faces that were only in this group are deleted with their original image; delete
       the group. (An image holds one face in this API; were there more, they would go with it.)

    ``default`` and ``protected`` groups raise GroupInUse in every mode, 3 included: emptying a
    group a pipeline searches is as disruptive as deleting it.
    """
    if mode not in (1, 2, 3, 4):
        raise ValueError(f"deleteAllFace must be 1..4, not {mode!r}")
    row, slot = lookup(conn, group_id)
    if row is None:
        raise GroupNotFound(group_id)
    if group_id == DEFAULT_GROUP or group_id in protected:
        raise GroupInUse(group_id)
    bit = 1 << slot
    members = _member_masks(conn, row)
    images_deleted = 0
    doomed: list[int] = []
    if mode == 2:
        doomed = list(members)
        conn.execute("DELETE FROM faces WHERE id IN (SELECT face FROM bindings WHERE grp = ?)", (row,))
    elif mode == 3:
        doomed = [face for face, mask in members.items() if mask == bit]
        conn.execute(f"DELETE FROM faces WHERE id IN ({_ONLY_IN_GROUP})", (row,))
        conn.execute("DELETE FROM bindings WHERE grp = ?", (row,))  # the group stays
    elif mode == 4:
        images = f"SELECT image FROM faces WHERE id IN ({_ONLY_IN_GROUP})"
        doomed = [r[0] for r in conn.execute(f"SELECT id FROM faces WHERE image IN ({images})", (row,))]
        images_deleted = conn.execute(f"DELETE FROM images WHERE id IN ({images})", (row,)).rowcount
    if mode != 3:
        conn.execute("DELETE FROM groups WHERE id = ?", (row,))  # remaining bindings cascade
    gone = set(doomed)
    change = IndexChange(
        removed=doomed, masks={face: mask & ~bit for face, mask in members.items() if face not in gone}
    )
    result = DeleteGroupResult(
        group_deleted=mode != 3,
        faces_unbound=len(change.masks),
        faces_deleted=len(doomed),
        images_deleted=images_deleted,
    )
    return result, change


def bind(
    conn: sqlite3.Connection, face_row: int, group_ids: Sequence[str], *, bound: bool
) -> tuple[BindResult, IndexChange]:
    """Bind (bound=True) or unbind the face to/from each group; unknown groups fail one by one.

    Binding an already bound group, or unbinding a group the face is not in, counts as success:
    the requested state holds afterwards.
    """
    fail_info: list[tuple[str, str]] = []
    for group_id in group_ids:
        row, _ = lookup(conn, group_id)
        if row is None:
            fail_info.append((group_id, BIND_ERROR_UNKNOWN_GROUP))
        elif bound:
            conn.execute("INSERT OR IGNORE INTO bindings (face, grp) VALUES (?, ?)", (face_row, row))
        else:
            conn.execute("DELETE FROM bindings WHERE face = ? AND grp = ?", (face_row, row))
    total = len(group_ids)
    result = BindResult(total=total, success=total - len(fail_info), fail=len(fail_info), fail_info=fail_info)
    return result, IndexChange(masks={face_row: face_mask(conn, face_row)})


def face_mask(conn: sqlite3.Connection, face_row: int) -> int:
    mask = 0
    for (slot,) in conn.execute(
        "SELECT g.slot FROM bindings b JOIN groups g ON g.id = b.grp WHERE b.face = ?", (face_row,)
    ):
        mask |= 1 << slot
    return mask


def masks_of_model(conn: sqlite3.Connection, model_id: str) -> dict[int, int]:
    """face row id → group mask, for the faces of one model that are bound to any group."""
    return _masks(
        conn.execute(
            "SELECT b.face, g.slot FROM bindings b JOIN groups g ON g.id = b.grp"
            " JOIN faces f ON f.id = b.face WHERE f.model_id = ?",
            (model_id,),
        )
    )


def _member_masks(conn: sqlite3.Connection, grp: int) -> dict[int, int]:
    """face row id → full group mask, for every face bound to group row ``grp``."""
    return _masks(
        conn.execute(
            "SELECT o.face, g.slot FROM bindings b JOIN bindings o ON o.face = b.face"
            " JOIN groups g ON g.id = o.grp WHERE b.grp = ?",
            (grp,),
        )
    )


def _masks(rows: Iterable[tuple[int, int]]) -> dict[int, int]:
    """face row id → OR of its groups' bits, from (face row id, group slot) rows."""
    masks: dict[int, int] = {}
    for face, slot in rows:
        masks[face] = masks.get(face, 0) | (1 << slot)
    return masks


def _check_score(score: int) -> None:
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 100:
        raise ValueError(f"group score must be an int 0..100, not {score!r}")
