"""Library export and import for the HTTP API, streamed both ways.

Export: a thread of its own reads the library through a read-only snapshot connection and hands
~256 KiB chunks to the event loop through a bounded queue, so a 100k-face bundle never sits whole in
memory and a slow client slows the reader instead of growing a buffer. Import: the request body is
spooled to a private file in the state dir (bounded by ``ops.max_import_bytes``), verified
(signature, format version, model id) without touching the library, then applied in one transaction
on the library's own thread; the index is rebuilt after the commit. One export or import at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from daemon.errors import FacegateError
from daemon.library import bundle
from daemon.library.backup import snapshot
from daemon.library.bundle import ImportMode, ImportResult
from daemon.library.keys import KeyRing
from daemon.services.library_service import LibraryService

log = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024
QUEUE_CHUNKS = 8
SEND_TIMEOUT = 60.0  # a client that reads nothing for this long ends its export


class PortabilityBusy(FacegateError):
    """Another export or import is running."""


class PayloadTooLarge(FacegateError):
    """An uploaded bundle is larger than ops.max_import_bytes."""


class LibraryPorter:
    """Exports and imports of one library; see the module docstring."""

    def __init__(
        self, library: LibraryService, key_path: Path, spool_dir: Path, max_import_bytes: int, dim: int
    ) -> None:
        self.library = library
        self.key_path = key_path
        self.spool_dir = spool_dir
        self.max_import_bytes = max_import_bytes
        self.dim = dim
        self._busy = asyncio.Lock()
        self._io = ThreadPoolExecutor(1, thread_name_prefix="facegate-porter")

    def close(self) -> None:
        self._io.shutdown(wait=False)

    async def export(self, group_ids: Sequence[str]) -> AsyncGenerator[bytes, None]:
        """The bundle in chunks. Errors found before the first chunk (an unknown group, no key) are
        raised by the first ``__anext__``, so a handler can still answer them as errors."""
        if self._busy.locked():
            raise PortabilityBusy("an export or import is already running")
        await self._busy.acquire()
        try:
            async for chunk in self._export(list(group_ids)):
                yield chunk
        finally:
            self._busy.release()

    async def _export(self, group_ids: list[str]) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(QUEUE_CHUNKS)
        stop = threading.Event()
        path, key_path, model_id, dim = self.library.path, self.key_path, self.library.model_id, self.dim
        ring = self.library.store.keys

        def send(item: bytes | BaseException | None) -> None:
            asyncio.run_coroutine_threadsafe(queue.put(item), loop).result(SEND_TIMEOUT)

        def produce() -> None:
            try:
                key = bundle.load_key(key_path, create=True)
                with snapshot(path) as conn:
                    pending: list[bytes] = []
                    size = 0
                    for line in bundle.export_lines(conn, ring, key, model_id, dim, group_ids):
                        if stop.is_set():
                            return
                        pending.append(line)
                        size += len(line)
                        if size >= CHUNK_BYTES:
                            send(b"".join(pending))
                            pending, size = [], 0
                    send(b"".join(pending))
                send(None)
            except Exception as exc:  # boundary: hand any failure to the consumer
                if not stop.is_set():
                    with contextlib.suppress(Exception):
                        send(exc)

        thread = threading.Thread(target=produce, name="facegate-export", daemon=True)
        thread.start()
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while not queue.empty():  # unblock a producer waiting on a full queue
                queue.get_nowait()

    async def import_stream(
        self, read_chunk: Callable[[], Awaitable[bytes]], mode: ImportMode
    ) -> ImportResult:
        """Spool, verify, apply. ``read_chunk`` returns b"" at the end of the body."""
        if self._busy.locked():
            raise PortabilityBusy("an export or import is already running")
        async with self._busy:
            loop = asyncio.get_running_loop()
            spool = self.spool_dir / f".import-{secrets.token_hex(6)}.partial"
            await loop.run_in_executor(self._io, self.spool_dir.mkdir, 0o750, True, True)
            handle = await loop.run_in_executor(self._io, _open_private, spool)
            try:
                total = 0
                while chunk := await read_chunk():
                    total += len(chunk)
                    if total > self.max_import_bytes:
                        raise PayloadTooLarge(f"bundle larger than {self.max_import_bytes} bytes")
                    await loop.run_in_executor(self._io, handle.write, chunk)
                await loop.run_in_executor(self._io, handle.flush)
                key_path, model_id, dim = self.key_path, self.library.model_id, self.dim

                def check() -> bytes:
                    key = bundle.load_key(key_path, create=False)
                    handle.seek(0)
                    bundle.verify(handle, key, model_id, dim)
                    return key

                key = await loop.run_in_executor(self._io, check)

                # Runs inside the store's transaction, on the library thread.
                def write(conn: sqlite3.Connection, ring: KeyRing) -> ImportResult:
                    handle.seek(0)
                    return bundle.apply(conn, ring, handle, key, model_id, dim, mode)

                result = await self.library.rewrite(write)
            finally:
                await loop.run_in_executor(self._io, _discard, handle, spool)
            log.info(
                "library import (%s): %d images, %d faces, %d new groups",
                mode,
                result.images,
                result.faces,
                result.groups_created,
            )
            return result


def _open_private(path: Path) -> BinaryIO:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "w+b")


def _discard(handle: BinaryIO, path: Path) -> None:
    handle.close()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
