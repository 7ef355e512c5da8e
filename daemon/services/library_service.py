"""The face library for the asyncio side: FaceStore calls on one dedicated thread, plus the index.

Why a thread of its own: every SQLite call blocks (and a registration waits for an fsync with
synchronous=FULL), so none may run on the event loop; and running them in the inference pool would
make group management fail with 503 whenever recognition saturates the workers. One thread is
enough: FaceStore serialises on one connection anyway, and its calls take a millisecond or two.

Searches do not go through that thread: the TemplateIndex is thread-safe (readers–writer lock)
and a search is CPU work, so recognition runs it in the inference pool next to the embedding.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from daemon.library.index import TemplateIndex
from daemon.library.keys import KeyRing
from daemon.library.store import FaceStore, open_keys
from daemon.library.types import (
    BindResult,
    DeleteGroupResult,
    FaceDetail,
    FaceRecord,
    FaceSummary,
    GroupInfo,
    GroupRef,
    ImageData,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class NewFace:
    """Everything enrollment stores for one image with its one face: the keyword arguments of
    FaceStore.add_face (which binds it to `default`)."""

    image_id: str
    original: bytes
    kind: str
    width: int
    height: int
    description: str
    name: str
    gender: str
    rect: tuple[int, int, int, int]
    crop_jpeg: bytes
    template: Any  # float32 numpy vector; typed loosely so this module needs no numpy
    model_id: str
    quality: float | None


class LibraryService:
    """Async wrapper of one FaceStore whose index holds the templates of ``model_id``.

    Built without I/O; ``start`` opens the file and builds the index, ``close`` closes it (the app's
    cleanup_ctx calls both). ``protected_groups`` returns the groups that may not be deleted besides
    ``default`` (the groups a running camera pipeline searches); whoever runs such a pipeline sets it.
    """

    def __init__(self, path: Path, model_id: str, dim: int, key_path: Path) -> None:
        self.path = Path(path)
        self.key_path = Path(key_path)
        self.model_id = model_id
        self._dim = dim
        self._store: FaceStore | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.other_model_faces = 0
        self.protected_groups: Callable[[], Collection[str]] = frozenset

    async def start(self) -> None:
        """Open (create, migrate) the SQLite file and build the index of ``model_id`` from it.

        Templates of other models stay stored but are never indexed; their number is logged.
        """
        executor = ThreadPoolExecutor(1, thread_name_prefix="facegate-library")
        path, model_id, dim, key_path = self.path, self.model_id, self._dim, self.key_path

        def opening() -> tuple[FaceStore, int, int]:
            path.parent.mkdir(parents=True, exist_ok=True)
            keys = open_keys(path, key_path)
            store = FaceStore(path, keys)
            try:
                loaded = store.attach_index(TemplateIndex(dim), model_id)
                total, _ = store.list_faces(0, 0)
            except BaseException:
                store.close()
                raise
            return store, loaded, total

        try:
            store, loaded, total = await asyncio.get_running_loop().run_in_executor(executor, opening)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._store, self._executor = store, executor
        self.other_model_faces = total - loaded
        log.info("face library %s: %d faces indexed for %s", path, loaded, model_id)
        if self.other_model_faces:
            log.warning(
                "face library %s: %d faces were enrolled with another embedding model; they are kept "
                "but never compared (re-enroll them to make them searchable)",
                path,
                self.other_model_faces,
            )

    async def close(self) -> None:
        store, executor = self._store, self._executor
        if store is None or executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, store.close)
        finally:
            executor.shutdown(wait=True)
            self._store = self._executor = None

    @property
    def store(self) -> FaceStore:
        if self._store is None:
            raise RuntimeError("the face library is not open")
        return self._store

    @property
    def index(self) -> TemplateIndex:
        """The 1:N index (thread-safe; searched from the inference workers)."""
        index = self.store.index
        assert index is not None  # attached in start()
        return index

    def stats(self) -> dict[str, Any]:
        """For /health: in-memory figures only, no SQL on the event loop."""
        if self._store is None:
            return {"model": self.model_id, "open": False}
        return {
            "model": self.model_id,
            "indexed_faces": len(self.index),
            "other_model_faces": self.other_model_faces,
        }

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._executor is None:
            raise RuntimeError("the face library is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    # -- faces and images -------------------------------------------------------------------------

    async def add_face(self, face: NewFace) -> FaceRecord:
        """Store an image with its face, bound to `default` (ImageAlreadyExists)."""
        # NewFace's fields are FaceStore.add_face's keyword parameters, one for one.
        return await self._call(self.store.add_face, **vars(face))

    async def list_faces(
        self, offset: int, limit: int, group_id: str | None = None, name: str | None = None
    ) -> tuple[int, list[FaceSummary]]:
        return await self._call(self.store.list_faces, offset, limit, group_id, name)

    async def update_face(
        self, face_token: str, name: str | None, description: str | None, gender: str | None
    ) -> None:
        await self._call(self.store.update_face, face_token, name, description, gender)

    async def delete_face(self, face_token: str) -> None:
        await self._call(self.store.delete_face, face_token)

    async def delete_image(self, image_id: str) -> None:
        await self._call(self.store.delete_image, image_id)

    async def get_face(self, face_token: str) -> FaceDetail:
        return await self._call(self.store.get_face, face_token)

    async def get_image(self, image_id: str) -> ImageData:
        return await self._call(self.store.get_image, image_id)

    async def faces_by_ids(self, face_ids: Sequence[int]) -> list[FaceDetail]:
        return await self._call(self.store.faces_by_ids, list(face_ids))

    async def reset(self) -> None:
        await self._call(self.store.reset)

    async def rewrite(self, operation: Callable[[sqlite3.Connection, KeyRing], T]) -> T:
        """A bulk change (library import) in one transaction; the index is rebuilt after it."""
        return await self._call(self.store.rewrite, operation)

    # -- groups -----------------------------------------------------------------------------------

    async def list_groups(self) -> list[GroupInfo]:
        return await self._call(self.store.list_groups)

    async def resolve_groups(self, group_ids: Sequence[str]) -> list[GroupRef]:
        return await self._call(self.store.resolve_groups, list(group_ids))

    async def create_group(self, group_id: str, name: str, type: str, score: int) -> None:
        await self._call(self.store.create_group, group_id, name, type, score)

    async def modify_group(
        self, group_id: str, name: str | None, type: str | None, score: int | None
    ) -> None:
        await self._call(self.store.modify_group, group_id, name, type, score)

    async def delete_group(self, group_id: str, delete_all_face: int) -> DeleteGroupResult:
        protected = frozenset(self.protected_groups())
        result = await self._call(self.store.delete_group, group_id, delete_all_face, protected)
        log.info("group %r deleted (mode %d): %s", group_id, delete_all_face, result)
        return result

    async def bind(self, face_token: str, group_ids: Sequence[str]) -> BindResult:
        return await self._call(self.store.bind, face_token, list(group_ids))

    async def unbind(self, face_token: str, group_ids: Sequence[str]) -> BindResult:
        return await self._call(self.store.unbind, face_token, list(group_ids))
