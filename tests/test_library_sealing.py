"""Data at rest: sealed blobs, their binding to the row, the plaintext migration, key rotation, and
deletions that leave nothing behind in the library file, its WAL or its shm.

Real SQLite files in tmp_path. Files are read while the store is still open (no closing checkpoint),
which is what a power cut or kill -9 right after the answer would leave on disk.
"""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import open_library

from daemon.cli import main
from daemon.library import db, keys, sealing
from daemon.library.index import TemplateIndex
from daemon.library.keys import KeyRing, KeyRingError
from daemon.library.rotation import rotate
from daemon.library.sealing import SealedBlobCorrupt

DIM = 128
MODEL = "model-a"


def template(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def face_args(i: int) -> dict:
    original = b"ORIGINAL-%d-" % i + np.random.default_rng(1000 + i).bytes(3000)
    return dict(
        image_id=f"image-{i}",
        original=original,
        kind="image/jpeg",
        width=640,
        height=480,
        description="",
        name=f"person {i}",
        gender="",
        rect=(10, 20, 110, 140),
        crop_jpeg=b"CROP-%d-" % i + np.random.default_rng(2000 + i).bytes(2000),
        template=template(i),
        model_id=MODEL,
        quality=0.5,
    )


def on_disk(path: Path) -> bytes:
    """The library file, its WAL and its shm, concatenated (whatever exists)."""
    return b"".join(
        p.read_bytes()
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
        if p.exists()
    )


def secrets_of(args: dict) -> list[bytes]:
    """Distinctive slices of a face's original, crop and template."""
    return [args["original"][:64], args["crop_jpeg"][:64], args["template"].tobytes()[:64]]


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def opened(path: Path):
    store = open_library(path)
    store.attach_index(TemplateIndex(DIM), MODEL)
    return store


def search(store, seed: int) -> int:
    """Row id of the best match of template(seed)."""
    ids, raws, _ = store.index.snapshot()
    query = template(seed)
    return int(ids[int(np.argmin(np.linalg.norm(raws - query, axis=1)))])


# -- encryption at rest ----------------------------------------------------------------------------


def test_no_plaintext_biometrics_in_the_file_or_its_wal(tmp_path: Path):
    path = tmp_path / "library.sqlite3"
    with opened(path) as store:
        faces = [face_args(i) for i in range(3)]
        for args in faces:
            store.add_face(**args)
        data = on_disk(path)
        assert path.with_name("library.sqlite3-wal").stat().st_size > 0  # the writes are in the WAL
        for args in faces:
            for secret in secrets_of(args):
                assert secret not in data
        blob = raw(path).execute("SELECT template FROM faces WHERE id = 1").fetchone()[0]
        assert blob.startswith(sealing.MAGIC) and len(blob) == DIM * 4 + sealing.OVERHEAD
        # And it all reads back.
        assert store.get_face(store.list_faces(0, 1)[1][0].face_token).crop_jpeg == faces[0]["crop_jpeg"]
        assert store.get_image("image-2").original == faces[2]["original"]
        assert store.load_templates(MODEL)[1].tobytes() == b"".join(a["template"].tobytes() for a in faces)


def test_a_ciphertext_swapped_between_two_rows_is_refused_as_corrupt(tmp_path: Path):
    path = tmp_path / "library.sqlite3"
    with opened(path) as store:
        a, b = store.add_face(**face_args(1)), store.add_face(**face_args(2))
    conn = raw(path)
    (_, ca), (tb, cb) = conn.execute("SELECT template, crop_jpeg FROM faces ORDER BY id").fetchall()
    conn.execute("UPDATE faces SET crop_jpeg = ? WHERE id = ?", (cb, a.id))
    conn.execute("UPDATE faces SET crop_jpeg = ? WHERE id = ?", (ca, b.id))
    conn.close()
    with open_library(path) as store:
        store.attach_index(TemplateIndex(DIM), MODEL)  # templates untouched: still load
        for record in (a, b):
            with pytest.raises(SealedBlobCorrupt, match="moved from another row"):
                store.get_face(record.face_token)
    conn = raw(path)
    conn.execute("UPDATE faces SET template = ? WHERE id = ?", (tb, a.id))
    conn.close()
    with open_library(path) as store, pytest.raises(SealedBlobCorrupt):
        store.attach_index(TemplateIndex(DIM), MODEL)  # a swapped template stops the index build


def test_a_flipped_bit_or_a_planted_plaintext_is_refused(tmp_path: Path):
    path = tmp_path / "library.sqlite3"
    with opened(path) as store:
        record = store.add_face(**face_args(1))
    conn = raw(path)
    original = conn.execute("SELECT original FROM images").fetchone()[0]
    flipped = original[:-1] + bytes([original[-1] ^ 1])
    conn.execute("UPDATE images SET original = ?", (flipped,))
    conn.execute("UPDATE faces SET crop_jpeg = ?", (b"\xff\xd8plain jpeg",))
    conn.close()
    with open_library(path) as store:
        with pytest.raises(SealedBlobCorrupt, match="integrity"):
            store.get_image("image-1")
        with pytest.raises(SealedBlobCorrupt, match="not sealed"):
            store.get_face(record.face_token)


def test_a_lost_key_file_stops_the_start_instead_of_making_a_new_key(tmp_path: Path):
    path = tmp_path / "library.sqlite3"
    with opened(path) as store:
        store.add_face(**face_args(1))
    key_file = tmp_path / "library.keys"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key_file.unlink()
    with pytest.raises(KeyRingError, match="restore the key file"):
        open_library(path)
    assert not key_file.exists()


def test_plaintext_library_is_sealed_by_migration_2_and_leaves_no_plaintext(tmp_path: Path):
    path = tmp_path / "library.sqlite3"
    conn = raw(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA secure_delete = ON")
    db.migrate(conn, db.MIGRATIONS[:1])  # a library written by the previous release
    args = face_args(7)
    conn.execute(
        "INSERT INTO images (image_id, original, kind, width, height, created)"
        " VALUES (?, ?, 'jpeg', 1, 1, 0)",
        (args["image_id"], args["original"]),
    )
    conn.execute(
        "INSERT INTO faces (face_token, image, rect_left, rect_top, rect_right, rect_bottom, crop_jpeg,"
        " template, model_id, created) VALUES ('tok-7', 1, 1, 2, 3, 4, ?, ?, ?, 0)",
        (args["crop_jpeg"], args["template"].tobytes(), MODEL),
    )
    conn.execute("INSERT INTO bindings (face, grp) VALUES (1, 1)")
    conn.close()
    assert args["template"].tobytes()[:64] in on_disk(path)  # the plaintext case: there before
    with opened(path) as store:
        assert raw(path).execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
        data = on_disk(path)
        for secret in secrets_of(args):
            assert secret not in data
        assert store.get_face("tok-7").crop_jpeg == args["crop_jpeg"]
        assert store.get_image(args["image_id"]).original == args["original"]
        assert search(store, 7) == 1


# -- deletion leaves nothing behind -----------------------------------------------------------------


def test_plaintext_case_delete_then_scrub_leaves_no_bytes(tmp_path: Path):
    """A library still in plaintext (version 1, no key): what db.scrub does after a delete."""
    path = tmp_path / "library.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "secure_delete = ON", "foreign_keys = ON"):
        conn.execute(f"PRAGMA {pragma}")
    db.migrate(conn, db.MIGRATIONS[:1])
    args = face_args(3)
    with db.transaction(conn):
        conn.execute(
            "INSERT INTO images (image_id, original, kind, width, height, created)"
            " VALUES ('x', ?, 'j', 1, 1, 0)",
            (args["original"],),
        )
        conn.execute(
            "INSERT INTO faces (face_token, image, rect_left, rect_top, rect_right, rect_bottom, crop_jpeg,"
            " template, model_id, created) VALUES ('t', 1, 1, 2, 3, 4, ?, ?, 'm', 0)",
            (args["crop_jpeg"], args["template"].tobytes()),
        )
    assert all(secret in on_disk(path) for secret in secrets_of(args))
    with db.transaction(conn):
        conn.execute("DELETE FROM images")
    assert db.scrub(conn)
    data = on_disk(path)
    for secret in secrets_of(args):
        assert secret not in data
    conn.close()


@pytest.mark.parametrize("how", ["delete_face", "delete_image", "reset"])
def test_deleted_face_is_gone_from_file_wal_and_shm_before_the_call_returns(tmp_path: Path, how: str):
    path = tmp_path / "library.sqlite3"
    store = opened(path)
    args = face_args(5)
    record = store.add_face(**args)
    store.add_face(**face_args(6))
    conn = raw(path)
    sealed = conn.execute("SELECT crop_jpeg, template FROM faces WHERE id = ?", (record.id,)).fetchone()
    original = conn.execute("SELECT original FROM images WHERE image_id = ?", (record.image_id,)).fetchone()[
        0
    ]
    conn.close()
    ciphertexts = [bytes(sealed[0])[-64:], bytes(sealed[1])[-64:], bytes(original)[-64:]]
    assert all(c in on_disk(path) for c in ciphertexts[:2])
    if how == "delete_face":
        store.delete_face(record.face_token)
        ciphertexts.pop()  # the original stays with delete_face (1.3)
    elif how == "delete_image":
        store.delete_image(record.image_id)
    else:
        store.reset()
    # Read while the store is still open: no closing checkpoint helps (as after kill -9).
    data = on_disk(path)
    for secret in secrets_of(args)[1:] + ciphertexts:
        assert secret not in data
    assert path.with_name("library.sqlite3-wal").stat().st_size == 0
    store.close()


# -- key rotation ------------------------------------------------------------------------------------


def key_ids_in_use(path: Path) -> set[int]:
    conn = raw(path)
    found = set()
    for table, column in (("images", "original"), ("faces", "crop_jpeg"), ("faces", "template")):
        for (blob,) in conn.execute(f"SELECT {column} FROM {table}"):
            found.add(struct.unpack(">I", blob[4:8])[0])
    conn.close()
    return found


def test_rotation_next_to_a_running_store_keeps_it_searchable_and_retires_the_old_key(tmp_path: Path):
    path, key_file = tmp_path / "library.sqlite3", tmp_path / "library.keys"
    store = opened(path)  # the "daemon": stays open through the rotation
    records = [store.add_face(**face_args(i)) for i in range(5)]
    before = store.load_templates(MODEL)
    late: list = []

    def meanwhile(state) -> None:  # the daemon enrols while the pass runs
        if not late:
            late.append(store.add_face(**face_args(50)))
        assert search(store, 2) == records[2].id  # searches go on

    result = rotate(path, key_file, batch=2, progress=meanwhile)
    assert (result.key_id, result.resumed, result.retired) == (2, False, [1])
    assert result.rows_resealed >= 5
    assert [k for k, _ in keys.read_keys(key_file)] == [2]
    assert key_ids_in_use(path) == {2}
    # The open store reads rows re-sealed under its feet, and its next write uses the new key.
    assert store.get_face(records[0].face_token).crop_jpeg == face_args(0)["crop_jpeg"]
    store.add_face(**face_args(60))
    assert key_ids_in_use(path) == {2}
    store.close()
    with opened(path) as again:
        _, matrix, _ = again.load_templates(MODEL)
        assert matrix[:5].tobytes() == before[1].tobytes()
        assert search(again, 50) == late[0].id and search(again, 3) == records[3].id
        assert again.get_image("image-4").original == face_args(4)["original"]


def test_an_interrupted_rotation_stays_readable_and_resumes(tmp_path: Path):
    path, key_file = tmp_path / "library.sqlite3", tmp_path / "library.keys"
    with opened(path) as store:
        for i in range(4):
            store.add_face(**face_args(i))

    def crash(state) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotate(path, key_file, batch=1, progress=crash)
    assert [k for k, _ in keys.read_keys(key_file)] == [1, 2]
    assert key_ids_in_use(path) == {1, 2}
    with opened(path) as store:  # half-rotated: every row readable
        assert search(store, 3) == 4
        assert store.get_image("image-0").original == face_args(0)["original"]
    result = rotate(path, key_file, batch=3)
    assert result.resumed and result.key_id == 2 and result.retired == [1]
    assert key_ids_in_use(path) == {2}


def test_cli_key_rotate(tmp_path: Path, capsys):
    state = tmp_path / "state"
    state.mkdir()
    with opened(state / "library.sqlite3") as store:
        store.add_face(**face_args(1))
    assert main(["key", "rotate", "--state-dir", str(state), "--batch", "10"]) == 0
    assert "2 rows re-sealed with key 2; retired keys: 1" in capsys.readouterr().err
    assert key_ids_in_use(state / "library.sqlite3") == {2}
    assert (state / "library.keys").stat().st_mode & 0o777 == 0o600
    audit = sqlite3.connect(state / "audit.sqlite3")
    assert audit.execute("SELECT action, target FROM audit").fetchall() == [("key.rotate", "library")]
    audit.close()
    with opened(state / "library.sqlite3") as store:
        assert store.get_image("image-1").original == face_args(1)["original"]


def test_key_file_format_is_checked(tmp_path: Path):
    key_file = tmp_path / "k"
    key_file.write_text("1:abcd\n")
    with pytest.raises(KeyRingError, match="32 bytes"):
        KeyRing(key_file)
    key_file.write_text("# nothing\n")
    with pytest.raises(KeyRingError, match="no key"):
        KeyRing(key_file)


def test_a_bundle_carries_plaintext_and_an_import_seals_it_with_the_target_key(tmp_path: Path):
    import base64
    import io
    import json

    from daemon.library import bundle
    from daemon.library.backup import snapshot

    source, target = tmp_path / "a" / "library.sqlite3", tmp_path / "b" / "library.sqlite3"
    source.parent.mkdir()
    target.parent.mkdir()
    args = face_args(9)
    with opened(source) as store:
        store.add_face(**args)
        ring = store.keys
    with snapshot(source) as conn:
        data = b"".join(bundle.export_lines(conn, ring, b"k" * 32, MODEL, DIM))
    image = json.loads(data.splitlines()[2])
    assert base64.b64decode(image["faces"][0]["template"]) == args["template"].tobytes()
    assert base64.b64decode(image["original"]) == args["original"]
    with opened(target) as other:
        other.rewrite(
            lambda conn, keys: bundle.apply(conn, keys, io.BytesIO(data), b"k" * 32, MODEL, DIM, "merge")
        )
        for secret in secrets_of(args):
            assert secret not in on_disk(target)
        assert search(other, 9) == 1
        assert other.get_image(args["image_id"]).original == args["original"]
    assert keys.read_keys(tmp_path / "a" / "library.keys") != keys.read_keys(tmp_path / "b" / "library.keys")


def test_cli_key_migrate_seals_a_plaintext_library_offline(tmp_path: Path, capsys):
    state = tmp_path / "state"
    state.mkdir()
    path = state / "library.sqlite3"
    conn = raw(path)
    conn.execute("PRAGMA journal_mode = WAL")
    db.migrate(conn, db.MIGRATIONS[:1])
    args = face_args(4)
    conn.execute(
        "INSERT INTO images (image_id, original, kind, width, height, created) VALUES ('i', ?, 'j', 1, 1, 0)",
        (args["original"],),
    )
    conn.close()
    assert main(["key", "migrate", "--state-dir", str(state)]) == 0
    assert "schema 1 -> 2" in capsys.readouterr().err
    assert args["original"][:64] not in on_disk(path)
    assert key_ids_in_use(path) == {1}
    assert main(["key", "migrate", "--state-dir", str(state)]) == 0  # nothing left to do
    assert "schema 2 -> 2" in capsys.readouterr().err
