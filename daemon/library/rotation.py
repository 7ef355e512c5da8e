"""Key rotation: every sealed blob re-sealed with a new key, in resumable batches, next to the daemon.

1. A new key is appended to the key file (it becomes current; the running daemon notices the file
   changed and seals its next writes with it). Skipped when the file already holds more than one key:
   an interrupted rotation is resumed instead of starting another.
2. One pass over the library in id order, ``batch`` rows per transaction (the daemon's requests get
   the write lock between batches; searches never stop: the index is in memory): each blob still
   sealed with an older key is unsealed and sealed again with the current key. A blob that fails its
   check stops the rotation (SealedBlobCorrupt) with everything done so far kept.
3. Under the write lock, a last check that no blob is left on an older key; then the older keys are
   removed from the file, and the WAL is scrubbed.

Killed at any point, the library stays readable (the file holds every key in use until step 3) and
running the command again finishes the job.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from daemon.library import db, keys
from daemon.library.errors import LibraryError
from daemon.library.keys import KeyRing
from daemon.library.reseal import PassState, reseal_step, rows_not_on_key


class RotationIncomplete(LibraryError):
    """Blobs sealed with an older key appeared during the pass; run the rotation again."""


@dataclass(frozen=True)
class RotationResult:
    key_id: int
    resumed: bool
    rows_resealed: int
    retired: list[int]


def rotate(
    library: Path,
    key_path: Path,
    batch: int,
    busy_timeout: float = 30.0,
    progress: Callable[[PassState], None] | None = None,
) -> RotationResult:
    if not library.is_file():
        raise LibraryError(f"no library at {library}")
    ring = KeyRing.open(key_path, may_create=False)
    resumed = len(keys.read_keys(key_path)) > 1
    if not resumed:
        keys.add_key(key_path)
        ring.refresh()
    with contextlib.closing(db.connect(library, ring, busy_timeout=busy_timeout)) as conn:
        state = PassState()
        while not state.done:
            with db.transaction(conn):
                reseal_step(conn, ring, state, batch, accept_plaintext=False)
            if progress is not None:
                progress(state)
        with db.transaction(conn):
            left = rows_not_on_key(conn, ring.current_id)
            if left:
                raise RotationIncomplete(f"{left} values are still sealed with an older key: run it again")
            retired = keys.keep_only_current(key_path)
        db.scrub(conn)
    return RotationResult(ring.current_id, resumed, state.resealed, retired)
