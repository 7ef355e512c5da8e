"""FaceStore: the face library's one entry point (SQLite file + optional in-memory index).

Threading: one sqlite3 connection, used by one thread at a time under ``self._lock`` (an RLock),
so any worker thread may call any method. SQLite serialises writers anyway, and the reads here are
indexed lookups of a few rows, so one connection costs little and rules out "database is locked"
between our own threads. Searches do not take this lock: they go to the TemplateIndex, which has
its own readers–writer lock.

Index consistency: each mutating operation builds an IndexChange inside its transaction and applies
it to the attached index only after COMMIT returned, still under the store lock, so the index sees
changes in commit order and a rolled-back transaction never reaches it.

At rest: blobs are sealed with ``keys`` (daemon/library/keys.py). Deletions are scrubbed before they
return (db.scrub: freed pages returned, WAL checkpointed and truncated), so an acknowledged delete
leaves no copy in the file, its WAL or its shm.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import numpy as np

from daemon.library import db, faces, groups
from daemon.library.index import TemplateIndex
from daemon.library.keys import KeyRing
from daemon.library.types import (
    DEFAULT_GROUP,
    DEFAULT_SCORE,
    BindResult,
    DeleteGroupResult,
    FaceDetail,
    FaceRecord,
    FaceSummary,
    GroupInfo,
    GroupRef,
    ImageData,
    IndexChange,
    Rect,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class FaceStore:
    """Images, faces, groups and bindings in one SQLite file; see the module docstring."""

    def __init__(self, path: str | Path, keys: KeyRing, *, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.keys = keys
        self._conn = db.connect(self.path, keys, busy_timeout=busy_timeout)
        self._lock = threading.RLock()
        self._index: TemplateIndex | None = None
        self._model_id: str | None = None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> FaceStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- index ------------------------------------------------------------------------------------

    @property
    def index(self) -> TemplateIndex | None:
        """The attached index (searches go to it directly, without the store lock)."""
        return self._index

    def attach_index(self, index: TemplateIndex, model_id: str) -> int:
        """Fill ``index`` with the templates of ``model_id`` and keep it updated from now on.

        Templates of other models stay in the database but never enter the index. Returns the
        number of templates loaded.
        """
        with self._lock:
            ids, matrix, masks = faces.load_templates(self._conn, self.keys, model_id)
            index.clear()
            index.add_many(ids, matrix, masks)
            self._index, self._model_id = index, model_id
            return len(ids)

    def load_templates(self, model_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids int64, templates float32 (n, dim), masks uint64) of one model, ordered by id."""
        with self._lock:
            return faces.load_templates(self._conn, self.keys, model_id)

    # -- faces and images (1.x) -------------------------------------------------------------------

    def add_face(
        self,
        image_id: str,
        original: bytes,
        kind: str,
        width: int,
        height: int,
        description: str,
        name: str,
        gender: str,
        rect: tuple[int, int, int, int],
        crop_jpeg: bytes,
        template: np.ndarray,
        model_id: str,
        quality: float | None,
        group_ids: Sequence[str] = (DEFAULT_GROUP,),
    ) -> FaceRecord:
        """Register one image with its one face, bound to ``group_ids`` (1.1).

        Raises ImageAlreadyExists, GroupNotFound (nothing is written), ValueError for a template
        that is not a finite, non-zero 1-D float32 vector (of the index's dimension, when it is
        for the indexed model).
        """
        self._check_template(template, model_id)
        return self._write(
            lambda conn: faces.add_face(
                conn,
                self.keys,
                image_id=image_id,
                original=bytes(original),
                kind=kind,
                width=int(width),
                height=int(height),
                description=description,
                name=name,
                gender=gender,
                rect=Rect(*(int(v) for v in rect)),
                crop_jpeg=bytes(crop_jpeg),
                template=template,
                model_id=model_id,
                quality=None if quality is None else float(quality),
                group_ids=list(group_ids),
            )
        )

    def list_faces(
        self, offset: int, limit: int, group_id: str | None = None, name: str | None = None
    ) -> tuple[int, list[FaceSummary]]:
        """(total, page) ordered by id (1.2); with ``group_id`` the faces of that group (2.4); with
        ``name`` the faces whose name contains it."""
        with self._lock:
            return faces.list_faces(self._conn, offset, limit, group_id, name)

    def update_face(
        self, face_token: str, name: str | None, description: str | None, gender: str | None
    ) -> None:
        """Change a face's name, description or gender (None: unchanged). Raises FaceNotFound."""
        self._write(lambda conn: (None, faces.update_face(conn, face_token, name, description, gender)))

    def delete_face(self, face_token: str) -> None:
        """Delete a face with its crop, template and bindings; the original stays (1.3)."""
        self._write(lambda conn: (None, faces.delete_face(conn, face_token)), reclaim=True)

    def delete_image(self, image_id: str) -> None:
        """Delete an original image and all its faces (1.4)."""
        self._write(lambda conn: (None, faces.delete_image(conn, image_id)), reclaim=True)

    def get_face(self, face_token: str) -> FaceDetail:
        """A face with its groups and crop (1.5). Raises FaceNotFound."""
        with self._lock:
            return faces.get_face(self._conn, self.keys, face_token)

    def faces_by_ids(self, face_ids: Sequence[int]) -> list[FaceDetail]:
        """Details of search hits, in the given order; ids deleted meanwhile are skipped."""
        with self._lock:
            return faces.faces_by_ids(self._conn, self.keys, [int(i) for i in face_ids])

    def get_image(self, image_id: str) -> ImageData:
        """The original bytes and the tokens of its faces (1.6). Raises ImageNotFound."""
        with self._lock:
            return faces.get_image(self._conn, self.keys, image_id)

    def reset(self) -> None:
        """Delete all images, faces and bindings; groups remain (1.7)."""
        self._write(lambda conn: (None, faces.reset(conn)), reclaim=True)

    # -- groups (2.x) -----------------------------------------------------------------------------

    def list_groups(self) -> list[GroupInfo]:
        with self._lock:
            return groups.list_groups(self._conn)

    def resolve_groups(self, group_ids: Sequence[str]) -> list[GroupRef]:
        """Mask bit and score of each group, for building search thresholds. Raises GroupNotFound."""
        with self._lock:
            return groups.resolve(self._conn, group_ids)

    def create_group(self, group_id: str, name: str, type: str = "", score: int = DEFAULT_SCORE) -> None:
        """Raises GroupIdConflict, GroupNameConflict, GroupOverLimit (2.2)."""
        self._write(_unindexed(lambda conn: groups.create_group(conn, group_id, name, type, score)))

    def modify_group(
        self, group_id: str, name: str | None = None, type: str | None = None, score: int | None = None
    ) -> None:
        """Change the given fields (2.7). Raises GroupNotFound, GroupNameConflict."""
        self._write(_unindexed(lambda conn: groups.modify_group(conn, group_id, name, type, score)))

    def delete_group(
        self, group_id: str, delete_all_face: int, protected: Collection[str] = frozenset()
    ) -> DeleteGroupResult:
        """Delete a group by one of the four deleteAllFace modes (2.3; see groups.delete_group).

        ``default`` and the ids in ``protected`` (groups a running pipeline searches) raise
        GroupInUse in every mode.
        """
        return self._write(
            lambda conn: groups.delete_group(conn, group_id, delete_all_face, protected), reclaim=True
        )

    def bind(self, face_token: str, group_ids: Sequence[str]) -> BindResult:
        """Bind a face to groups (2.5); unknown groups fail individually. Raises FaceNotFound."""
        return self._bind(face_token, group_ids, bound=True)

    def unbind(self, face_token: str, group_ids: Sequence[str]) -> BindResult:
        """Unbind a face from groups (2.6); unknown groups fail individually. Raises FaceNotFound."""
        return self._bind(face_token, group_ids, bound=False)

    def rewrite(self, operation: Callable[[sqlite3.Connection, KeyRing], T]) -> T:
        """Run a bulk ``operation`` (a library import) in one transaction, then rebuild the index from
        the file: too many changes to mirror one by one. A failure rolls back and leaves the index.
        The new index is filled before it replaces the old one, so searches meanwhile see the old."""
        with self._lock:
            with db.transaction(self._conn):
                result = operation(self._conn, self.keys)
            if self._index is not None and self._model_id is not None:
                self.attach_index(TemplateIndex(self._index.dim), self._model_id)
            self._reclaim_space()
            return result

    # -- internals --------------------------------------------------------------------------------

    def _bind(self, face_token: str, group_ids: Sequence[str], *, bound: bool) -> BindResult:
        return self._write(
            lambda conn: groups.bind(conn, faces.require_face(conn, face_token), list(group_ids), bound=bound)
        )

    def _write(
        self, operation: Callable[[sqlite3.Connection], tuple[T, IndexChange]], reclaim: bool = False
    ) -> T:
        """Run ``operation`` in one transaction, then mirror its change in the index."""
        with self._lock:
            with db.transaction(self._conn):
                result, change = operation(self._conn)
            self._apply(change)
            if reclaim:
                self._reclaim_space()
            return result

    def _apply(self, change: IndexChange) -> None:
        index = self._index
        if index is None or not change:
            return
        if change.cleared:
            index.clear()
        added = [
            (face, template, mask) for face, model, template, mask in change.added if model == self._model_id
        ]
        try:
            index.update(added=added, removed=change.removed, masks=change.masks)
        except ValueError:
            # Cannot happen for inputs _check_template accepted; if it does, the committed rows are
            # the truth: rebuild rather than keep searching a diverged index.
            log.exception("index update failed after commit; rebuilding it from %s", self.path)
            assert self._model_id is not None
            self.attach_index(index, self._model_id)

    def _reclaim_space(self) -> None:
        """After a deletion: freed pages returned to the filesystem and the WAL folded into the file
        and truncated (db.scrub). The change is already committed, so a failure is logged, not raised."""
        db.scrub(self._conn)

    def _check_template(self, template: np.ndarray, model_id: str) -> None:
        if not isinstance(template, np.ndarray) or template.dtype != np.float32 or template.ndim != 1:
            raise ValueError("template must be a 1-D float32 numpy array")
        if template.size == 0 or not np.isfinite(template).all() or not template.any():
            raise ValueError("template must be non-empty, finite and non-zero")
        index = self._index
        if index is not None and model_id == self._model_id and template.shape[0] != index.dim:
            raise ValueError(f"template has {template.shape[0]} values, the index expects {index.dim}")


def open_keys(library: Path, key_path: Path) -> KeyRing:
    """The library's key ring; created only while the library holds no sealed data (a new file or
    one written before sealing), so a lost key file stops the start instead of hiding the data."""
    return KeyRing.open(key_path, may_create=db.schema_version(library) < db.SEALING_VERSION)


def _unindexed(
    write: Callable[[sqlite3.Connection], None],
) -> Callable[[sqlite3.Connection], tuple[None, IndexChange]]:
    """A write that leaves the index as it is (a group's name, type or score)."""

    def operation(conn: sqlite3.Connection) -> tuple[None, IndexChange]:
        write(conn)
        return None, IndexChange()

    return operation
