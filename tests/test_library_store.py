"""The face library's SQLite store: every operation, its errors, transactions, restart, threads.

Real SQLite files in tmp_path; templates are random float32 vectors (the library knows no images).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import open_library

from daemon.errors import FacegateError
from daemon.library import db
from daemon.library.errors import (
    FaceNotFound,
    GroupIdConflict,
    GroupInUse,
    GroupNameConflict,
    GroupNotFound,
    GroupOverLimit,
    ImageAlreadyExists,
    ImageNotFound,
    LibraryError,
)
from daemon.library.ids import image_id_from_bytes, new_face_token, valid_image_md5
from daemon.library.index import TemplateIndex
from daemon.library.store import FaceStore
from daemon.library.types import GroupRef, thresholds_by_score

DIM = 16
MODEL = "model-a"


@pytest.fixture
def store(tmp_path: Path):
    with open_library(tmp_path / "library.db") as s:
        s.attach_index(TemplateIndex(DIM), MODEL)
        yield s


def template(seed: int, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def add(store: FaceStore, i: int, groups=("default",), model: str = MODEL, dim: int = DIM, **kw):
    original = f"original-{i}".encode()
    args = dict(
        image_id=image_id_from_bytes(original),
        original=original,
        kind="image/jpeg",
        width=640,
        height=480,
        description=f"desc {i}",
        name=f"name {i}",
        gender="f" if i % 2 else "m",
        rect=(10, 20, 110, 140),
        crop_jpeg=f"crop-{i}".encode(),
        template=template(i, dim),
        model_id=model,
        quality=0.5,
        group_ids=groups,
    )
    args.update(kw)
    return store.add_face(**args)


def counts(path: Path) -> tuple[int, int, int, int]:
    """(images, faces, bindings, groups) read through an independent connection."""
    conn = sqlite3.connect(path)
    try:
        return tuple(
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("images", "faces", "bindings", "groups")
        )
    finally:
        conn.close()


def index_state(store: FaceStore) -> dict[int, tuple[bytes, int]]:
    ids, raw, masks = store.index.snapshot()
    return {int(i): (np.round(r, 5).tobytes(), int(m)) for i, r, m in zip(ids, raw, masks, strict=True)}


def index_masks(store: FaceStore) -> dict[int, int]:
    return {i: m for i, (_, m) in index_state(store).items()}


def group_of(store: FaceStore, group_id: str):
    return next((g for g in store.list_groups() if g.group_id == group_id), None)


# -- identifiers -----------------------------------------------------------------------------------


def test_image_id_is_md5_in_base64_with_url_safe_substitutions():
    assert image_id_from_bytes(b"") == "1B2M2Y8AsgTpgAmY7PhCfg=="
    # md5 of this input in standard base64 is "tseM6/4pxXGkltYY6YF+Ow==".
    assert image_id_from_bytes(b"facegate-12") == "tseM6_4pxXGkltYY6YF-Ow=="
    assert len(image_id_from_bytes(b"\x00" * 1000)) == 24


def test_face_tokens_are_24_url_safe_characters_and_unique():
    tokens = {new_face_token() for _ in range(2000)}
    assert len(tokens) == 2000
    assert all(len(t) == 24 and valid_image_md5(t) and "=" not in t for t in tokens)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("tseM6_4pxXGkltYY6YF-Ow==", True),
        ("a", True),
        ("A" * 32, True),
        ("A" * 33, False),
        ("", False),
        ("abc/def", False),
        ("abc+def", False),
        ("abc def", False),
        ("abc\n", False),
        ("é", False),
    ],
)
def test_valid_image_md5(value, ok):
    assert valid_image_md5(value) is ok


def test_library_errors_are_facegate_errors():
    assert issubclass(LibraryError, FacegateError)
    for cls in (
        ImageAlreadyExists,
        FaceNotFound,
        ImageNotFound,
        GroupNotFound,
        GroupIdConflict,
        GroupNameConflict,
        GroupInUse,
    ):
        assert issubclass(cls, LibraryError)
    assert issubclass(GroupOverLimit, LibraryError)


# -- file settings and migrations ------------------------------------------------------------------


def test_connection_settings(store: FaceStore):
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL
    assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION


def test_failed_migration_leaves_nothing_and_keeps_version(tmp_path: Path):
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    good = "CREATE TABLE a (x INTEGER);"
    bad = "CREATE TABLE b (x INTEGER);\nINSERT INTO nowhere VALUES (1);"
    with pytest.raises(sqlite3.OperationalError):
        db.migrate(conn, (good, bad))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"a"}
    assert db.migrate(conn, (good, "CREATE TABLE b (x INTEGER);")) == 2
    conn.close()


def test_file_from_a_newer_daemon_is_refused(tmp_path: Path):
    path = tmp_path / "new.db"
    open_library(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {db.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(sqlite3.DatabaseError, match="newer"):
        open_library(path)


def test_restart_keeps_everything_and_rebuilds_the_same_index(tmp_path: Path):
    path = tmp_path / "library.db"
    with open_library(path) as first:
        first.attach_index(TemplateIndex(DIM), MODEL)
        first.create_group("staff", "Staff", "t", 70)
        records = [add(first, i) for i in range(6)]
        first.bind(records[1].face_token, ["staff"])
        first.unbind(records[2].face_token, ["default"])
        first.delete_face(records[3].face_token)
        add(first, 99, model="other-model", dim=8)
        listing, groups, before = first.list_faces(0, 100), first.list_groups(), index_state(first)
        details = first.get_face(records[1].face_token)
    with open_library(path) as second:
        second.attach_index(TemplateIndex(DIM), MODEL)
        assert second.list_faces(0, 100) == listing
        assert second.list_groups() == groups
        assert second.get_face(records[1].face_token) == details
        assert index_state(second) == before
        assert len(before) == 5  # the other model's template is stored but never indexed
        assert counts(path)[3] == 2  # the first migration ran once: one default group


def test_deleted_biometrics_do_not_linger_in_the_file(tmp_path: Path):
    path = tmp_path / "library.db"
    marker_crop = b"CROP-MARKER-" + bytes(range(200))
    marker_original = b"ORIGINAL-MARKER-" * 50
    with open_library(path) as store:
        rec = add(store, 1, original=marker_original, crop_jpeg=marker_crop, image_id="marker")
        add(store, 2)
        store.delete_image(rec.image_id)
    data = path.read_bytes()  # closing checkpointed the WAL into the main file
    assert marker_crop not in data and marker_original[:32] not in data


# -- faces and images --------------------------------------------------------------------------------


def test_add_face_returns_record_and_indexes_it(store: FaceStore):
    rec = add(store, 1)
    assert rec.id == 1 and rec.image_id == image_id_from_bytes(b"original-1") and len(rec.face_token) == 24
    assert tuple(rec.rect) == (10, 20, 110, 140)
    assert index_masks(store) == {rec.id: 1}  # default group is slot 0
    assert store.index.nearest(template(1), None, 1)[0][0] == rec.id


def test_ids_increase_and_are_never_reused(store: FaceStore):
    a, b = add(store, 1), add(store, 2)
    assert b.id > a.id
    store.delete_face(b.face_token)
    c = add(store, 3)
    store.reset()
    d = add(store, 4)
    assert a.id < b.id < c.id < d.id


def test_add_face_with_existing_image_id_fails_and_writes_nothing(store: FaceStore):
    add(store, 1, image_id="same")
    before, index_before = counts(store.path), index_state(store)
    with pytest.raises(ImageAlreadyExists) as err:
        add(store, 2, image_id="same")
    assert err.value.image_id == "same"
    assert counts(store.path) == before and index_state(store) == index_before


def test_add_face_failing_after_partial_inserts_rolls_everything_back(store: FaceStore):
    add(store, 1)
    before, index_before = counts(store.path), index_state(store)
    # The image, face and first binding are inserted before the unknown group is met.
    with pytest.raises(GroupNotFound) as err:
        add(store, 2, groups=("default", "missing"))
    assert err.value.group_id == "missing"
    assert counts(store.path) == before and index_state(store) == index_before
    add(store, 2)  # the same image id is free: nothing of the failed attempt remained


@pytest.mark.parametrize(
    "bad",
    [
        np.ones(DIM, np.float64),
        np.ones((2, DIM // 2), np.float32),
        np.zeros(DIM, np.float32),
        np.full(DIM, np.nan, np.float32),
        np.ones(DIM + 1, np.float32),  # not the indexed model's dimension
        np.zeros(0, np.float32),
        [1.0] * DIM,
    ],
)
def test_add_face_rejects_bad_templates_without_writing(store: FaceStore, bad):
    before = counts(store.path)
    with pytest.raises(ValueError):
        add(store, 1, template=bad)
    assert counts(store.path) == before and len(store.index) == 0


def test_a_busy_database_fails_the_operation_and_leaves_store_and_index_unchanged(tmp_path: Path):
    path = tmp_path / "library.db"
    with open_library(path, busy_timeout=0.05) as store:
        store.attach_index(TemplateIndex(DIM), MODEL)
        rec = add(store, 1)
        before, index_before = counts(path), index_state(store)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                add(store, 2)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                store.delete_face(rec.face_token)
            assert index_state(store) == index_before
            assert store.get_face(rec.face_token).face_token == rec.face_token  # reads still work
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert counts(path) == before
        add(store, 2)
        assert len(store.index) == 2


def test_list_faces_pages_in_id_order(store: FaceStore):
    recs = [add(store, i) for i in range(7)]
    total, page = store.list_faces(2, 3)
    assert total == 7
    assert [f.id for f in page] == [r.id for r in recs[2:5]]
    f = page[0]
    assert (f.image_id, f.face_token, f.description, f.name, f.gender) == (
        recs[2].image_id,
        recs[2].face_token,
        "desc 2",
        "name 2",
        "m",
    )
    assert store.list_faces(100, 10) == (7, [])
    assert store.list_faces(0, 0) == (7, [])
    with pytest.raises(ValueError):
        store.list_faces(-1, 10)


def test_list_faces_of_a_group(store: FaceStore):
    store.create_group("g", "G")
    recs = [add(store, i, groups=("g",) if i % 2 else ("default",)) for i in range(6)]
    total, page = store.list_faces(1, 10, group_id="g")
    assert total == 3 and [f.id for f in page] == [recs[3].id, recs[5].id]
    with pytest.raises(GroupNotFound):
        store.list_faces(0, 10, group_id="nope")


def test_delete_face_keeps_the_original(store: FaceStore):
    rec, other = add(store, 1), add(store, 2)
    store.delete_face(rec.face_token)
    assert store.get_image(rec.image_id) == (b"original-1", [])
    assert counts(store.path)[:3] == (2, 1, 1)
    assert set(index_masks(store)) == {other.id}
    with pytest.raises(FaceNotFound):
        store.get_face(rec.face_token)
    with pytest.raises(FaceNotFound) as err:
        store.delete_face(rec.face_token)
    assert err.value.face_token == rec.face_token
    with pytest.raises(ImageAlreadyExists):  # the imageId is still taken
        add(store, 1)


def test_delete_image_removes_its_faces(store: FaceStore):
    rec, other = add(store, 1), add(store, 2)
    store.delete_image(rec.image_id)
    with pytest.raises(ImageNotFound):
        store.get_image(rec.image_id)
    with pytest.raises(FaceNotFound):
        store.get_face(rec.face_token)
    assert counts(store.path)[:3] == (1, 1, 1) and set(index_masks(store)) == {other.id}
    with pytest.raises(ImageNotFound) as err:
        store.delete_image(rec.image_id)
    assert err.value.image_id == rec.image_id
    assert add(store, 1).image_id == rec.image_id  # may be registered again


def test_get_face_and_get_image(store: FaceStore):
    store.create_group("g", "G")
    rec = add(store, 3, groups=("g", "default"))
    face = store.get_face(rec.face_token)
    assert (face.id, face.face_token, face.image_id) == (rec.id, rec.face_token, rec.image_id)
    assert (face.description, face.name, face.gender) == ("desc 3", "name 3", "f")
    assert tuple(face.rect) == (10, 20, 110, 140) and face.crop_jpeg == b"crop-3"
    assert face.group_ids == ["default", "g"]  # in group creation order
    assert store.get_image(rec.image_id) == (b"original-3", [rec.face_token])
    with pytest.raises(ImageNotFound):
        store.get_image("unknown")


def test_faces_by_ids_keeps_order_and_skips_missing(store: FaceStore):
    a, b, c = (add(store, i) for i in range(3))
    store.delete_face(b.face_token)
    assert [f.face_token for f in store.faces_by_ids([c.id, b.id, a.id, 12345])] == [
        c.face_token,
        a.face_token,
    ]


def test_reset_removes_faces_and_images_but_keeps_groups(store: FaceStore):
    store.create_group("g", "G", score=60)
    for i in range(4):
        add(store, i, groups=("g",))
    groups_before = [(g.group_id, g.name, g.score) for g in store.list_groups()]
    store.reset()
    assert counts(store.path) == (0, 0, 0, 2)
    assert len(store.index) == 0
    assert [(g.group_id, g.name, g.score) for g in store.list_groups()] == groups_before
    assert all(g.face_count == 0 for g in store.list_groups())


def test_load_templates_per_model(store: FaceStore):
    store.create_group("g", "G")
    a = add(store, 1, groups=("default", "g"))
    add(store, 2, model="other", dim=8)
    ids, matrix, masks = store.load_templates(MODEL)
    assert ids.tolist() == [a.id] and matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix[0], template(1))
    assert masks.tolist() == [0b11]
    assert store.load_templates("other")[1].shape == (1, 8)
    ids, matrix, masks = store.load_templates("absent")
    assert len(ids) == 0 and len(masks) == 0


# -- groups ------------------------------------------------------------------------------------------


def test_default_group_exists(store: FaceStore):
    (g,) = store.list_groups()
    assert (g.group_id, g.name, g.score, g.face_count) == ("default", "default", 80, 0)


def test_create_group_and_conflicts(store: FaceStore):
    store.create_group("g1", "Group one", "visitors", 75)
    info = group_of(store, "g1")
    assert (info.type, info.name, info.score, info.face_count) == ("visitors", "Group one", 75, 0)
    with pytest.raises(GroupIdConflict) as err:
        store.create_group("g1", "another name")
    assert err.value.group_id == "g1"
    with pytest.raises(GroupNameConflict) as err2:
        store.create_group("g2", "Group one")
    assert err2.value.name == "Group one"
    with pytest.raises(ValueError):
        store.create_group("g3", "three", score=101)
    assert len(store.list_groups()) == 2


def test_at_most_64_groups_and_slots_are_reused(store: FaceStore):
    for i in range(1, 64):
        store.create_group(f"g{i}", f"name {i}")
    assert len(store.list_groups()) == 64
    with pytest.raises(GroupOverLimit):
        store.create_group("g64", "name 64")
    slots = {r.group_id: r.mask for r in store.resolve_groups([f"g{i}" for i in range(1, 64)])}
    assert sorted(m.bit_length() - 1 for m in slots.values()) == list(range(1, 64))
    store.delete_group("g17", 1)
    store.create_group("again", "again")
    assert store.resolve_groups(["again"])[0].mask == slots["g17"]
    rec = add(store, 1, groups=("g63",))
    assert index_masks(store)[rec.id] == 1 << 63  # the top bit of the uint64 mask works


def test_modify_group(store: FaceStore):
    store.create_group("g", "G", "t", 70)
    store.create_group("h", "H")
    store.modify_group("g", score=90)
    assert (group_of(store, "g").name, group_of(store, "g").type, group_of(store, "g").score) == (
        "G",
        "t",
        90,
    )
    store.modify_group("g", name="G2", type="u")
    assert (group_of(store, "g").name, group_of(store, "g").type) == ("G2", "u")
    store.modify_group("g", name="G2")  # its own name is not a clash
    with pytest.raises(GroupNameConflict):
        store.modify_group("g", name="H", score=10)
    assert group_of(store, "g").score == 90  # the failed call changed nothing
    with pytest.raises(GroupNotFound):
        store.modify_group("nope", score=10)
    with pytest.raises(ValueError):
        store.modify_group("g", score=-1)
    store.modify_group("default", score=85)
    assert group_of(store, "default").score == 85


def test_resolve_groups_and_thresholds(store: FaceStore):
    store.create_group("a", "A", score=70)
    store.create_group("b", "B", score=90)
    store.create_group("c", "C", score=70)
    refs = store.resolve_groups(["a", "b", "c", "a"])
    assert [r.group_id for r in refs] == ["a", "b", "c"]
    assert thresholds_by_score(refs) == [(refs[0].mask | refs[2].mask, 70), (refs[1].mask, 90)]
    with pytest.raises(GroupNotFound):
        store.resolve_groups(["a", "zz"])
    assert thresholds_by_score([GroupRef("x", 1, 80)]) == [(1, 80)]


# -- bindings ----------------------------------------------------------------------------------------


def test_bind_partial_success(store: FaceStore):
    store.create_group("g", "G")
    rec = add(store, 1)
    result = store.bind(rec.face_token, ["g", "nope", "default", "g"])
    assert (result.total, result.success, result.fail) == (4, 3, 1)
    assert result.fail_info == [("nope", "GROUP_ID_NOT_EXIST")]
    assert store.get_face(rec.face_token).group_ids == ["default", "g"]
    assert index_masks(store)[rec.id] == 0b11
    with pytest.raises(FaceNotFound):
        store.bind("unknown-token", ["g"])


def test_unbind_partial_success(store: FaceStore):
    store.create_group("g", "G")
    store.create_group("h", "H")
    rec = add(store, 1, groups=("default", "g"))
    result = store.unbind(rec.face_token, ["g", "h", "x"])  # h is not bound: still a success
    assert (result.total, result.success, result.fail, result.fail_info) == (
        3,
        2,
        1,
        [("x", "GROUP_ID_NOT_EXIST")],
    )
    assert store.get_face(rec.face_token).group_ids == ["default"]
    assert index_masks(store)[rec.id] == 0b1
    store.unbind(rec.face_token, ["default"])
    assert store.get_face(rec.face_token).group_ids == [] and index_masks(store)[rec.id] == 0
    with pytest.raises(FaceNotFound):
        store.unbind("unknown-token", ["g"])


def test_bind_only_failures_changes_nothing(store: FaceStore):
    rec = add(store, 1)
    result = store.bind(rec.face_token, ["x", "y"])
    assert (result.total, result.success, result.fail) == (2, 0, 2)
    assert store.get_face(rec.face_token).group_ids == ["default"]


# -- delete group: the four deleteAllFace modes, row by row ---------------------------------------------


@pytest.fixture
def scene(store: FaceStore):
    """Group G with a face only in G (a) and a face in G and H (b); c is only in H, d only in default."""
    store.create_group("G", "group G", score=70)
    store.create_group("H", "group H", score=90)
    faces = {
        "a": add(store, 1, groups=("G",)),
        "b": add(store, 2, groups=("G", "H")),
        "c": add(store, 3, groups=("H",)),
        "d": add(store, 4),
    }
    slots = {r.group_id: r.mask for r in store.resolve_groups(["default", "G", "H"])}
    return store, faces, slots


def state(store: FaceStore, faces) -> dict:
    """Which faces, originals and bindings exist, by scene letter."""
    out = {}
    for key, rec in faces.items():
        try:
            face = store.get_face(rec.face_token).group_ids
        except FaceNotFound:
            face = None
        try:
            image = store.get_image(rec.image_id).original == f"original-{'abcd'.index(key) + 1}".encode()
        except ImageNotFound:
            image = False
        out[key] = (face, image)
    return out


def test_delete_group_mode_1_unbinds_and_deletes_group(scene):
    store, faces, slots = scene
    result = store.delete_group("G", 1)
    assert state(store, faces) == {
        "a": ([], True),
        "b": (["H"], True),
        "c": (["H"], True),
        "d": (["default"], True),
    }
    assert group_of(store, "G") is None
    assert (result.group_deleted, result.faces_unbound, result.faces_deleted, result.images_deleted) == (
        True,
        2,
        0,
        0,
    )
    f = faces
    assert index_masks(store) == {
        f["a"].id: 0,
        f["b"].id: slots["H"],
        f["c"].id: slots["H"],
        f["d"].id: slots["default"],
    }


def test_delete_group_mode_2_deletes_every_face_of_the_group(scene):
    store, faces, slots = scene
    result = store.delete_group("G", 2)
    assert state(store, faces) == {
        "a": (None, True),
        "b": (None, True),
        "c": (["H"], True),
        "d": (["default"], True),
    }
    assert group_of(store, "G") is None and group_of(store, "H").face_count == 1
    assert (result.faces_unbound, result.faces_deleted, result.images_deleted) == (0, 2, 0)
    assert index_masks(store) == {faces["c"].id: slots["H"], faces["d"].id: slots["default"]}
    assert counts(store.path)[:3] == (4, 2, 2)


def test_delete_group_mode_3_keeps_group_and_originals(scene):
    store, faces, slots = scene
    result = store.delete_group("G", 3)
    assert state(store, faces) == {
        "a": (None, True),
        "b": (["H"], True),
        "c": (["H"], True),
        "d": (["default"], True),
    }
    g = group_of(store, "G")
    assert g is not None and g.face_count == 0 and g.score == 70
    assert (result.group_deleted, result.faces_unbound, result.faces_deleted, result.images_deleted) == (
        False,
        1,
        1,
        0,
    )
    f = faces
    assert index_masks(store) == {f["b"].id: slots["H"], f["c"].id: slots["H"], f["d"].id: slots["default"]}
    assert counts(store.path)[:3] == (4, 3, 3)


def test_delete_group_mode_4_deletes_lone_faces_with_their_originals(scene):
    store, faces, slots = scene
    result = store.delete_group("G", 4)
    assert state(store, faces) == {
        "a": (None, False),
        "b": (["H"], True),
        "c": (["H"], True),
        "d": (["default"], True),
    }
    assert group_of(store, "G") is None
    assert (result.group_deleted, result.faces_unbound, result.faces_deleted, result.images_deleted) == (
        True,
        1,
        1,
        1,
    )
    f = faces
    assert index_masks(store) == {f["b"].id: slots["H"], f["c"].id: slots["H"], f["d"].id: slots["default"]}
    assert counts(store.path)[:3] == (3, 3, 3)


@pytest.mark.parametrize("mode", [1, 2, 3, 4])
def test_delete_group_refuses_default_protected_and_unknown(scene, mode):
    store, _, _ = scene
    before, index_before = counts(store.path), index_state(store)
    with pytest.raises(GroupInUse) as err:
        store.delete_group("default", mode)
    assert err.value.group_id == "default"
    with pytest.raises(GroupInUse):
        store.delete_group("G", mode, protected={"G"})
    with pytest.raises(GroupNotFound):
        store.delete_group("nope", mode)
    assert counts(store.path) == before and index_state(store) == index_before


def test_delete_group_bad_mode(scene):
    store, _, _ = scene
    with pytest.raises(ValueError):
        store.delete_group("G", 5)


def test_a_new_group_in_a_freed_slot_inherits_no_members(scene):
    store, _, slots = scene
    store.delete_group("G", 1)
    store.create_group("K", "group K")
    k = store.resolve_groups(["K"])[0]
    assert k.mask == slots["G"]
    assert store.list_faces(0, 10, group_id="K") == (0, [])
    assert all(m & k.mask == 0 for m in index_masks(store).values())
    assert store.index.search(template(1), [(k.mask, 10.0)], 5) == []


# -- threads -----------------------------------------------------------------------------------------


def test_fifty_threads_adding_at_once(store: FaceStore):
    store.create_group("g", "G")
    barrier = threading.Barrier(50)
    results, errors = [], []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            rec = add(store, i, groups=("default", "g") if i % 2 else ("default",))
            if i % 3 == 0:
                store.bind(rec.face_token, ["g"])
            results.append(rec)
        except Exception as exc:  # reported below: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({r.id for r in results}) == 50 and len({r.face_token for r in results}) == 50
    total, page = store.list_faces(0, 100)
    assert total == 50 and sorted(f.id for f in page) == sorted(r.id for r in results)
    ids, matrix, masks = store.load_templates(MODEL)
    snap_ids, snap_raw, snap_masks = store.index.snapshot()
    np.testing.assert_array_equal(snap_ids, ids)
    np.testing.assert_array_equal(snap_masks, masks)
    np.testing.assert_allclose(snap_raw, matrix, rtol=1e-5, atol=1e-6)
