"""Device API 2.1–2.7 through a real server: groups, their limits and errors, the four deleteAllFace
modes row by row, and binding with partial failures."""

from __future__ import annotations

import pytest
from api_device_support import (
    ASTRONAUT,
    BIDEN,
    OBAMA,
    OBAMA2,
    OBAMA3,
    api_state,
    bind,
    call,
    create_group,
    db_state,
    enroll,
    search,
    unbind,
)

from daemon.api.device_keys import LIBRARY


@pytest.fixture
async def client(make_client, config):
    return await make_client(config)


def group_rows(groups: list[dict]) -> list[tuple]:
    return [(g["groupId"], g["groupType"], g["groupName"], g["groupScore"], g["groupFaces"]) for g in groups]


# -- 2.1, 2.2, 2.7: the original's examples --------------------------------------------------------


async def test_groups_replay_the_original_examples(client):
    groups = (await call(client, "GET", "/api/faceGroups"))["data"]
    assert set(groups) == {"faceGroupList"}
    assert group_rows(groups["faceGroupList"]) == [("default", "", "default", 80, 0)]
    assert set(groups["faceGroupList"][0]) == {
        "groupId",
        "groupType",
        "groupName",
        "groupScore",
        "groupFaces",
    }

    # 2.2 request example
    created = await call(
        client,
        "POST",
        "/api/faceGroups",
        {"groupId": "1", "groupName": "员工", "groupScore": 80, "groupType": "白名单"},
    )
    assert created["data"] == {}
    face = await enroll(client, OBAMA)
    # 2.5 request example, then bind to "1"
    assert await bind(client, face["faceToken"], ["default"]) == {
        "totalCnt": 1,
        "successCnt": 1,
        "failCnt": 0,
        "failInfo": [],
    }
    await bind(client, face["faceToken"], ["1"])
    rows = group_rows((await call(client, "GET", "/api/faceGroups"))["data"]["faceGroupList"])
    assert rows == [("default", "", "default", 80, 1), ("1", "白名单", "员工", 80, 1)]

    # 2.4 request example
    listed = (await call(client, "GET", "/api/faceGroups/default?pageOffset=0&pageSize=10"))["data"]
    assert listed["totalFaces"] == 1
    assert listed["face"][0]["faceToken"] == face["faceToken"]
    assert set(listed["face"][0]) == {"id", "imageId", "imgId", "faceToken", "description", "name", "gender"}

    # 2.7 request example
    modified = await call(
        client,
        "PUT",
        "/api/faceGroups",
        {"groupId": "1", "groupName": "1222", "groupScore": 80, "groupType": "1"},
    )
    assert modified["data"] == {}
    rows = group_rows((await call(client, "GET", "/api/faceGroups"))["data"]["faceGroupList"])
    assert rows[1] == ("1", "1", "1222", 80, 1)

    # 2.6 request example
    assert (await unbind(client, face["faceToken"], ["default"]))["successCnt"] == 1
    # 2.3 request example
    assert (await call(client, "DELETE", "/api/faceGroups/1", {"deleteAllFace": 4}))["data"] == {}
    assert (await call(client, "GET", "/api/faces"))["data"]["totalFaces"] == 0


async def test_create_group_defaults_and_errors(client, config):
    await call(client, "POST", "/api/faceGroups", {"groupId": "staff", "groupName": "Staff"})
    rows = group_rows((await call(client, "GET", "/api/faceGroups"))["data"]["faceGroupList"])
    assert rows[1] == ("staff", "", "Staff", 80, 0)
    before = db_state(config.database_path)
    again = {"groupId": "staff", "groupName": "Other"}
    assert (await call(client, "POST", "/api/faceGroups", again, 400, 104310))["msg"] == "GROUP_ID_CONFLICT"
    clash = {"groupId": "other", "groupName": "Staff"}
    assert (await call(client, "POST", "/api/faceGroups", clash, 400, 104300))["msg"] == "GROUP_NAME_CONFLICT"
    assert db_state(config.database_path) == before


async def test_at_most_64_groups_including_default(client, config):
    for i in range(63):
        await create_group(client, f"g{i}")
    body = await call(client, "POST", "/api/faceGroups", {"groupId": "g63", "groupName": "x"}, 400, 104302)
    assert body["msg"] == "GROUP_OVER_LIMIT"
    assert len(db_state(config.database_path)["groups"]) == 64
    # Deleting one frees a place.
    await call(client, "DELETE", "/api/faceGroups/g5", {"deleteAllFace": 1})
    await create_group(client, "g63")
    assert len((await call(client, "GET", "/api/faceGroups"))["data"]["faceGroupList"]) == 64


async def test_modify_group_fields_and_errors(client):
    await create_group(client, "a", 70, "A")
    await create_group(client, "b", 70, "B")
    await call(client, "PUT", "/api/faceGroups", {"groupId": "a", "groupScore": 95})
    rows = group_rows((await call(client, "GET", "/api/faceGroups"))["data"]["faceGroupList"])
    assert rows[1] == ("a", "", "A", 95, 0)
    unknown = {"groupId": "zzz", "groupName": "Z"}
    assert (await call(client, "PUT", "/api/faceGroups", unknown, 400, 104311))["msg"] == "GROUP_ID_NOT_EXIST"
    await call(client, "PUT", "/api/faceGroups", {"groupId": "a", "groupName": "B"}, 400, 104300)
    await call(client, "PUT", "/api/faceGroups", {"groupId": "a", "groupName": "A"})  # its own name: fine
    # The default group's threshold may be changed.
    await call(client, "PUT", "/api/faceGroups", {"groupId": "default", "groupScore": 90})
    rows = group_rows((await call(client, "GET", "/api/faceGroups"))["data"]["faceGroupList"])
    assert rows == [("default", "", "default", 90, 0), ("a", "", "A", 95, 0), ("b", "", "B", 70, 0)]


async def test_group_faces_pages_and_unknown_group(client):
    faces = [await enroll(client, p) for p in (OBAMA, BIDEN, ASTRONAUT)]
    await create_group(client, "g")
    for f in faces[1:]:
        await bind(client, f["faceToken"], ["g"])
    data = (await call(client, "GET", "/api/faceGroups/g?pageOffset=1&pageSize=5"))["data"]
    assert data["totalFaces"] == 2
    assert [f["faceToken"] for f in data["face"]] == [faces[2]["faceToken"]]
    body = await call(client, "GET", "/api/faceGroups/nope?pageOffset=0&pageSize=10", status=400, code=104311)
    assert body["msg"] == "GROUP_ID_NOT_EXIST"


# -- 2.3: deleting groups --------------------------------------------------------------------------


async def test_default_and_protected_groups_cannot_be_deleted(client, config):
    await create_group(client, "door")
    client.server.app[LIBRARY].protected_groups = lambda: {"door"}
    before = db_state(config.database_path)
    for mode in (1, 2, 3, 4):
        for gid in ("default", "door"):
            body = await call(
                client, "DELETE", f"/api/faceGroups/{gid}", {"deleteAllFace": mode}, 400, 104304
            )
            assert body["msg"] == "GROUP_BEUSED"
    body = await call(client, "DELETE", "/api/faceGroups/nope", {"deleteAllFace": 1}, 400, 104311)
    assert body["msg"] == "GROUP_ID_NOT_EXIST"
    assert db_state(config.database_path) == before


@pytest.fixture
async def scene(client):
    """Four faces: f1 in default+A, f2 only in A, f3 only in B, f4 in A+B."""
    f1, f2, f3, f4 = [await enroll(client, p, description=p.name) for p in (OBAMA, BIDEN, ASTRONAUT, OBAMA3)]
    await create_group(client, "A", 80)
    await create_group(client, "B", 70)
    await bind(client, f1["faceToken"], ["A"])
    await bind(client, f2["faceToken"], ["A"])
    await unbind(client, f2["faceToken"], ["default"])
    await bind(client, f3["faceToken"], ["B"])
    await unbind(client, f3["faceToken"], ["default"])
    await bind(client, f4["faceToken"], ["A", "B"])
    await unbind(client, f4["faceToken"], ["default"])
    return client, {"f1": f1, "f2": f2, "f3": f3, "f4": f4}


# mode → (faces left, originals left, bindings left, groups left); names of the scene's faces.
DELETE_MODES = {
    1: (
        {"f1", "f2", "f3", "f4"},
        {"f1", "f2", "f3", "f4"},
        {("f1", "default"), ("f3", "B"), ("f4", "B")},
        ["B", "default"],
    ),
    2: ({"f3"}, {"f1", "f2", "f3", "f4"}, {("f3", "B")}, ["B", "default"]),
    3: (
        {"f1", "f3", "f4"},
        {"f1", "f2", "f3", "f4"},
        {("f1", "default"), ("f3", "B"), ("f4", "B")},
        ["A", "B", "default"],
    ),
    4: (
        {"f1", "f3", "f4"},
        {"f1", "f3", "f4"},
        {("f1", "default"), ("f3", "B"), ("f4", "B")},
        ["B", "default"],
    ),
}


@pytest.mark.parametrize("mode", [1, 2, 3, 4])
async def test_delete_group_modes_row_by_row(scene, config, mode):
    client, faces = scene
    faces_left, originals_left, bindings_left, groups_left = DELETE_MODES[mode]
    name_of = {f["faceToken"]: n for n, f in faces.items()}
    name_of_image = {f["imageId"]: n for n, f in faces.items()}

    await call(client, "DELETE", "/api/faceGroups/A", {"deleteAllFace": mode})

    rows = db_state(config.database_path)
    assert {name_of[t] for t in rows["faces"]} == faces_left
    assert all(r["crop"] > 0 and r["template"] == 512 for r in rows["faces"].values())
    assert {name_of_image[i] for i in rows["images"]} == originals_left
    assert {(name_of[t], g) for t, g in rows["bindings"]} == bindings_left
    assert rows["groups"] == groups_left

    # The same through the API.
    state = await api_state(client)
    assert {name_of[f["faceToken"]] for f in state["faces"]["face"]} == faces_left
    assert sorted(state["members"]) == groups_left
    for name, face in faces.items():
        token, image_id = face["faceToken"], face["imageId"]
        if name in faces_left:
            groups = (await call(client, "GET", f"/api/faces/faceToken/{token}"))["data"]["faceGroupList"]
            assert {(name, g["groupId"]) for g in groups} == {b for b in bindings_left if b[0] == name}
        else:
            await call(client, "GET", f"/api/faces/faceToken/{token}", status=404, code=104903)
        if name in originals_left:
            tokens = (await call(client, "GET", f"/api/faces/image/{image_id}"))["data"]["faceToken"]
            assert tokens == ([token] if name in faces_left else [])
        else:
            await call(client, "GET", f"/api/faces/image/{image_id}", status=404, code=104903)
    if mode == 3:
        assert state["members"]["A"] == []

    # The index followed: obama2 finds obama (f1) exactly when f1 is still there (mode 2 also
    # deleted obama3, f4, the only other face of him).
    found = await search(client, OBAMA2, ["default", "B"] + (["A"] if mode == 3 else []))
    expected = faces["f1"]["faceToken"] if "f1" in faces_left else None
    assert found["top1"].get("faceToken") == expected


# -- 2.5, 2.6: binding -----------------------------------------------------------------------------


async def test_bind_and_unbind_with_partial_failures(client, config):
    face = await enroll(client, OBAMA)
    token = face["faceToken"]
    await create_group(client, "x")
    result = await bind(client, token, ["x", "123", "default", "456"])
    assert result == {
        "totalCnt": 4,
        "successCnt": 2,
        "failCnt": 2,
        "failInfo": [
            {"groupId": "123", "errorMsg": "GROUP_ID_NOT_EXIST"},
            {"groupId": "456", "errorMsg": "GROUP_ID_NOT_EXIST"},
        ],
    }
    assert {g for t, g in db_state(config.database_path)["bindings"] if t == token} == {"default", "x"}
    # Only failures: nothing changes, still HTTP 200 with the counts.
    assert (await bind(client, token, ["nope"]))["failCnt"] == 1
    result = await unbind(client, token, ["x", "nope", "x"])
    assert (result["totalCnt"], result["successCnt"], result["failCnt"]) == (3, 2, 1)
    assert result["failInfo"] == [{"groupId": "nope", "errorMsg": "GROUP_ID_NOT_EXIST"}]
    assert db_state(config.database_path)["bindings"] == [(token, "default")]
    # Unbinding from every group leaves the face in the library but in no search.
    await unbind(client, token, ["default"])
    assert (await call(client, "GET", f"/api/faces/faceToken/{token}"))["data"]["faceGroupList"] == []
    assert (await search(client, OBAMA2, ["default", "x"]))["top1"] == {}
    await bind(client, token, ["x"])
    assert (await search(client, OBAMA2, ["x"]))["top1"]["faceToken"] == token
