"""Moving a library: signed bundles over HTTP and the CLI, online backups, and the disk floor.

Real daemons (aiohttp on 127.0.0.1, real models, real SQLite files); faces are enrolled through the
device API, so what is exported is what a device really stores.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from api_device_support import (
    ASTRONAUT,
    BIDEN,
    OBAMA,
    OBAMA2,
    api_state,
    bind,
    call,
    create_group,
    enroll,
    search,
)
from conftest import AUTH

from daemon.api.device_keys import LIBRARY
from daemon.cli import main
from daemon.config import with_overrides

EXPORT = "/api/admin/library/export"
IMPORT = "/api/admin/library/import"


def configured(config, state: Path, key: Path, **ops):
    return with_overrides(
        config,
        server={"state_dir": str(state)},
        ops={"bundle_key_file": str(key), **ops},
        library={"min_face_size": 40},
    )


async def populated(make_client, config, tmp_path):
    """A daemon with three faces, a `staff` group (score 70) holding Obama."""
    client = await make_client(configured(config, tmp_path / "a", tmp_path / "bundle.key"))
    obama = await enroll(client, OBAMA, name="obama", imageId="img-obama")
    await enroll(client, BIDEN, name="biden", imageId="img-biden")
    await enroll(client, ASTRONAUT, name="astronaut", imageId="img-astronaut")
    await create_group(client, "staff", score=70)
    await bind(client, obama["faceToken"], ["staff"])
    return client


async def export_bytes(client, query: str = "") -> bytes:
    response = await client.get(EXPORT + query, headers=AUTH)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    assert response.headers.get("Transfer-Encoding") == "chunked"  # streamed, not built whole first
    return await response.read()


async def test_http_export_then_import_into_an_empty_daemon_searches_the_same(make_client, config, tmp_path):
    source = await populated(make_client, config, tmp_path)
    data = await export_bytes(source)
    target = await make_client(configured(config, tmp_path / "b", tmp_path / "bundle.key"))
    response = await target.post(IMPORT + "?mode=merge", data=data, headers=AUTH)
    body = await response.json()
    assert response.status == 200 and body["code"] == 0, body
    assert body["data"] == {"mode": "merge", "images": 3, "faces": 3, "groupsCreated": 1}
    assert await api_state(target) == await api_state(source)
    for groups in (["default"], ["staff"], ["default", "staff"]):
        assert await search(target, OBAMA2, groups) == await search(source, OBAMA2, groups)
    hit = await search(target, OBAMA2, ["staff"])
    assert hit["top1"]["group"] == [{"groupId": "default"}, {"groupId": "staff"}]


async def test_export_of_one_group_carries_only_its_faces(make_client, config, tmp_path):
    source = await populated(make_client, config, tmp_path)
    data = await export_bytes(source, "?group=staff")
    target = await make_client(configured(config, tmp_path / "b", tmp_path / "bundle.key"))
    body = (await call(target, "POST", IMPORT, data=data))["data"]
    assert body["images"] == 1 and body["faces"] == 1
    state = await api_state(target)
    assert [f["name"] for f in state["faces"]["face"]] == ["obama"]
    token = state["faces"]["face"][0]["faceToken"]
    assert state["members"] == {"default": [token], "staff": [token]}  # its bindings came along
    await call(source, "GET", EXPORT + "?group=nope", status=400, code=104311)


@pytest.mark.parametrize("offset", [10, -200, -3])
async def test_a_bundle_with_one_byte_changed_is_refused_and_the_target_untouched(
    make_client, config, tmp_path, offset
):
    source = await populated(make_client, config, tmp_path)
    data = bytearray(await export_bytes(source))
    data[offset] ^= 0x01
    target = await make_client(configured(config, tmp_path / "b", tmp_path / "bundle.key"))
    await enroll(target, OBAMA2, name="already here")
    before = await api_state(target)
    body = await call(target, "POST", IMPORT + "?mode=replace", data=bytes(data), status=400, code=104931)
    assert body["msg"].startswith("BUNDLE_REFUSED:")
    assert await api_state(target) == before
    assert not list((tmp_path / "b").glob(".import-*")), "the spool file must not be left behind"


async def test_import_refuses_another_key_and_a_conflicting_merge(make_client, config, tmp_path):
    source = await populated(make_client, config, tmp_path)
    data = await export_bytes(source)
    other = tmp_path / "other.key"
    other.write_text("ab" * 32 + "\n")
    stranger = await make_client(configured(config, tmp_path / "c", other))
    body = await call(stranger, "POST", IMPORT, data=data, status=400, code=104931)
    assert "signature" in body["msg"]
    # Importing into the source itself: the images exist, so a merge is refused as a whole …
    before = await api_state(source)
    body = await call(source, "POST", IMPORT + "?mode=merge", data=data, status=400, code=104931)
    assert "already in the library" in body["msg"]
    assert await api_state(source) == before
    # … and a replace gives the same library back.
    await call(source, "POST", IMPORT + "?mode=replace", data=data)
    assert await api_state(source) == before


def test_cli_export_import_round_trip_and_refusals(tmp_path, config):
    from daemon.library import bundle

    state = tmp_path / "a"
    assert main(["import", str(tmp_path / "missing.bundle"), "--state-dir", str(state)]) == 2
    # A library with one face, written through the store.
    import numpy as np
    from conftest import open_library

    from daemon.vision.embed import DESCRIPTOR_SIZE, model_id_of

    state.mkdir()
    with open_library(state / "library.sqlite3") as store:
        store.create_group("g1", "group one", "", 75)
        template = np.linspace(-1, 1, DESCRIPTOR_SIZE, dtype=np.float32)
        store.add_face(
            "img1",
            b"original",
            "jpeg",
            10,
            10,
            "d",
            "n",
            "",
            (1, 2, 3, 4),
            b"crop",
            template,
            model_id_of("int8"),
            0.9,
            ["default", "g1"],
        )
    out = tmp_path / "lib.bundle"
    assert main(["export", str(out), "--state-dir", str(state)]) == 0
    assert (state / "bundle.key").stat().st_mode & 0o777 == 0o600
    key = ["--key", str(state / "bundle.key")]
    empty = tmp_path / "b"
    tampered = tmp_path / "tampered.bundle"
    raw = bytearray(out.read_bytes())
    raw[len(raw) // 2] ^= 0x20
    tampered.write_bytes(bytes(raw))
    assert main(["import", str(tampered), "--state-dir", str(empty), *key]) == 2
    assert not empty.exists(), "a refused bundle must not even create the target library"
    other_model = tmp_path / "fp32.bundle"
    assert main(["export", str(other_model), "--state-dir", str(state)]) == 0
    with pytest.raises(bundle.BundleError, match="embedding model"), other_model.open("rb") as f:
        bundle.verify(f, bytes.fromhex((state / "bundle.key").read_text()), model_id_of("fp32"), 128)
    assert main(["import", str(out), "--state-dir", str(empty), *key]) == 0
    with open_library(empty / "library.sqlite3") as copy, open_library(state / "library.sqlite3") as original:
        assert copy.list_faces(0, 10) == original.list_faces(0, 10)
        assert copy.list_groups() == original.list_groups()
        assert copy.load_templates(model_id_of("int8"))[1].tobytes() == template.tobytes()


async def test_backup_while_the_daemon_runs_is_a_complete_consistent_copy(make_client, config, tmp_path):
    client = await populated(make_client, config, tmp_path)
    out = tmp_path / "backup.sqlite3"
    assert main(["backup", str(out), "--state-dir", str(tmp_path / "a")]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(out) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("SELECT count(*) FROM faces").fetchone()[0] == 3
        assert {r[0] for r in copy.execute("SELECT group_id FROM groups")} == {"default", "staff"}
    await enroll(client, OBAMA2, imageId="after-backup")  # the daemon kept its write access


async def test_under_the_disk_floor_writes_get_507_and_reads_keep_working(make_client, config, tmp_path):
    client = await populated(make_client, config, tmp_path)
    guard_app = client.app
    from daemon.api.ops_api import DISK

    guard = guard_app[DISK]
    guard.floor_bytes = 1 << 62  # more than any disk: the next measurement is under the floor
    guard.measure()
    body = await call(client, "POST", "/api/faces", {"image": "x"}, status=507, code=104930)
    assert body["msg"].startswith("STORAGE_FULL:") and "MiB free" in body["msg"]
    await call(client, "POST", "/api/faceGroups", {"groupId": "g", "groupName": "g"}, status=507, code=104930)
    assert (await search(client, OBAMA2, ["default"]))["top1"]["searchScore"] > 70
    assert len((await call(client, "GET", "/api/faces"))["data"]["face"]) == 3
    health = await (await client.get("/health", headers=AUTH)).json()
    assert health["disk"]["writes"] == "refused"
    response = await client.post("/api/extract_feature", headers=AUTH, data={"image": "x"})
    assert response.status != 507  # a read-only POST of the feature API is not refused
    guard.floor_bytes = 0
    guard.measure()
    await create_group(client, "later")


async def test_a_real_sqlite_full_during_enrollment_is_507_and_nothing_is_written(
    make_client, config, tmp_path
):
    client = await populated(make_client, config, tmp_path)
    before = await api_state(client)
    conn = client.app[LIBRARY].store._conn  # the daemon's own connection: cap the file where it is
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    body = await call(client, "POST", "/api/faces", _payload(OBAMA2), status=507, code=104930)
    assert body["msg"].startswith("STORAGE_FULL:")
    conn.execute("PRAGMA max_page_count = 1073741823")
    assert await api_state(client) == before
    await enroll(client, OBAMA2, imageId="after-full")


def _payload(path: Path) -> dict:
    from api_device_support import data_url

    return {"image": data_url(path), "imageId": "too-much", "description": "", "name": "", "gender": ""}
