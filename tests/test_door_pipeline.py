"""The door pipeline on generated clips of real face photos, through `facegate checkin-video`.

The clip (tests/door_clips.py): obama (enrolled from another photo, in the door's group "staff")
enters, lingers, leaves and comes back 1.5 s later; then biden (enrolled, not in "staff") and the
astronaut (a stranger) stand in view together.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import open_library
from door_clips import OFF, keyed_path, make_library, visits_paths, write_clip

from daemon.cli import main
from daemon.config import PACKAGE_MODELS_DIR, BlinkConfig, CheckinConfig
from daemon.library.index import TemplateIndex
from daemon.services.door import DoorPipeline
from daemon.services.door_liveness import blink_settings
from daemon.services.scores import ScoreMapping
from daemon.vision.embed import DESCRIPTOR_SIZE

DURATION = 14.0


@pytest.fixture(scope="module")
def door_env(tmp_path_factory: pytest.TempPathFactory, engine) -> dict:
    root = tmp_path_factory.mktemp("door")
    tokens = make_library(root / "state" / "library.sqlite3", engine)
    clip = write_clip(root / "visits.avi", visits_paths(DURATION), DURATION, fps=10.0)
    return {"root": root, "state": root / "state", "clip": clip, "tokens": tokens}


def run(
    capsys, door_env: dict, *extra: str, checkin: dict | None = None, **sections: dict
) -> tuple[list[dict], dict]:
    args = ["checkin-video", str(door_env["clip"]), "--state-dir", str(door_env["state"]), "--json", *extra]
    if checkin is not None:
        path = door_env["root"] / "door.yaml"
        path.write_text(yaml.safe_dump({"checkin": checkin, **sections}))
        args += ["--config", str(path)]
    assert main(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[-1]["summary"] is True
    return lines[:-1], lines[-1]


def test_one_event_per_visit_known_outside_denied_stranger_unknown(capsys, door_env: dict) -> None:
    events, summary = run(capsys, door_env, "--group", "staff")
    tokens = door_env["tokens"]
    granted = [e for e in events if e["decision"] == "granted"]
    denied = [e for e in events if e["decision"] == "denied"]
    unknown = [e for e in events if e["decision"] == "unknown"]
    # obama's return 1.5 s after leaving is within the 30 s cooldown: one event for both visits.
    assert [(e["faceToken"], e["name"]) for e in granted] == [(tokens["obama"], "obama")]
    assert granted[0]["time"] < 1.0 and granted[0]["score"] >= 80
    assert [(e["faceToken"], e["reason"]) for e in denied] == [(tokens["biden"], "not in the door's groups")]
    assert len(unknown) == 1 and unknown[0]["faceToken"] is None and unknown[0]["time"] >= 8.0
    assert summary["events"] == {"granted": 1, "denied": 1, "unknown": 1}
    assert summary["suppressed"] >= 1  # obama's second visit


def test_a_return_after_the_cooldown_is_a_new_event(capsys, door_env: dict) -> None:
    events, _ = run(capsys, door_env, checkin={"groups": ["staff"], "cooldown": 1.0})
    granted = [e for e in events if e["decision"] == "granted"]
    assert [e["name"] for e in granted] == ["obama", "obama"]
    assert 4.9 <= granted[1]["time"] <= 6.0


def test_biden_is_granted_when_the_door_opens_to_default(capsys, door_env: dict) -> None:
    events, _ = run(capsys, door_env, "--group", "default")
    assert sorted(e["name"] for e in events if e["decision"] == "granted") == ["biden", "obama"]
    assert [e["decision"] for e in events if e["faceToken"] is None] == ["unknown"]


def test_required_liveness_without_a_check_refuses_every_grant(capsys, door_env: dict) -> None:
    # The passive model deliberately disabled (liveness.enabled: false): no check, so no grant.
    checkin = {"groups": ["staff"], "liveness": "passive"}
    events, summary = run(capsys, door_env, checkin=checkin, liveness={"enabled": False})
    assert summary["events"]["granted"] == 0
    obama = [e for e in events if e["name"] == "obama"]
    assert len(obama) == 1 and obama[0]["decision"] == "denied"
    assert obama[0]["reason"].startswith("liveness not available")


def test_faces_below_the_minimum_size_give_no_event(capsys, door_env: dict) -> None:
    events, summary = run(capsys, door_env, checkin={"groups": ["staff"], "min_face_size": 200})
    assert events == [] and summary["embeddings"] == 0


def test_an_empty_library_gives_unknowns_only(capsys, door_env: dict, tmp_path: Path) -> None:
    state = tmp_path / "empty"
    shutil.copytree(door_env["state"], state)
    (state / "library.sqlite3").unlink()
    for suffix in ("-wal", "-shm"):
        (state / f"library.sqlite3{suffix}").unlink(missing_ok=True)
    open_library(state / "library.sqlite3").close()
    env = {**door_env, "state": state}
    events, _ = run(capsys, env)
    assert events and {e["decision"] for e in events} == {"unknown"}


def test_bad_video_is_a_clear_error(capsys, door_env: dict, tmp_path: Path) -> None:
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"not a video at all")
    assert main(["checkin-video", str(bad), "--state-dir", str(door_env["state"])]) == 2
    assert "facegate:" in capsys.readouterr().err


def test_a_person_taking_over_a_track_gets_an_event_of_their_own(capsys, door_env: dict) -> None:
    """obama stands at the door until 3 s; biden steps into the very same spot at once (the tracker
    keeps the track): the door re-checks decided tracks and decides biden's visit on its own."""
    duration = 6.0
    obama = keyed_path(
        "obama.jpg",
        [(0, 320, 180, 110), (3.0, 320, 180, 110), (3.01, OFF, 0, 110), (duration, OFF, 0, 110)],
        duration,
    )
    biden = keyed_path(
        "biden.jpg",
        [(0, OFF, 0, 110), (3.0, OFF, 0, 110), (3.01, 322, 180, 110), (duration, 322, 180, 110)],
        duration,
    )
    clip = write_clip(door_env["root"] / "swap.avi", [obama, biden], duration, fps=10.0)
    env = {**door_env, "clip": clip}
    events, _ = run(capsys, env, "--group", "default")
    assert [(e["decision"], e["name"]) for e in events] == [("granted", "obama"), ("granted", "biden")]
    assert events[1]["time"] >= 3.0
    assert events[0]["trackId"] == events[1]["trackId"]  # the same track: the re-check split it


class EngineWithPassiveModel:
    """The real engine plus the method the passive liveness model will add (``liveness_score``), here
    returning a fixed score: it checks the door's plumbing of the policy, not a model."""

    def __init__(self, engine, score: float) -> None:
        self._engine, self._score = engine, score
        self.calls = 0

    def __getattr__(self, name: str):
        return getattr(self._engine, name)

    def liveness_score(self, image_bgr, face) -> float:
        assert image_bgr.ndim == 3 and face.width > 0
        self.calls += 1
        return self._score


@pytest.mark.parametrize(("passive", "decision"), [(90.0, "granted"), (10.0, "denied")])
def test_passive_policy_uses_the_engines_passive_model(door_env: dict, engine, passive, decision) -> None:
    wrapped = EngineWithPassiveModel(engine, passive)
    store = open_library(door_env["state"] / "library.sqlite3")
    try:
        store.attach_index(TemplateIndex(DESCRIPTOR_SIZE), engine.embedder.model_id)
        settings = CheckinConfig(groups=["staff"], liveness="passive", liveness_frames=3)
        pipeline = DoorPipeline(wrapped, store, ScoreMapping(), settings)  # type: ignore[arg-type]
        assert pipeline.policy.available
        cap = cv2.VideoCapture(str(door_env["clip"]))
        events = []
        for k in range(40):  # obama's first visit
            ok, bgr = cap.read()
            assert ok
            events += pipeline.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), k / 10, k / 10)
        cap.release()
    finally:
        store.close()
    assert [(d.event.decision, d.event.name) for d in events] == [(decision, "obama")]
    assert events[0].event.liveness_score == passive and wrapped.calls >= 3


@pytest.mark.parametrize(
    ("policy", "with_snapshot"),
    [("none", set()), ("known", {"denied"}), ("all", {"denied", "unknown"})],
)
def test_snapshots_follow_the_policy(door_env: dict, engine, policy: str, with_snapshot: set[str]) -> None:
    store = open_library(door_env["state"] / "library.sqlite3")
    try:
        store.attach_index(TemplateIndex(DESCRIPTOR_SIZE), engine.embedder.model_id)
        settings = CheckinConfig(groups=["staff"], snapshots=policy)  # type: ignore[arg-type]
        pipeline = DoorPipeline(engine, store, ScoreMapping(), settings)
        cap = cv2.VideoCapture(str(door_env["clip"]))
        cap.set(cv2.CAP_PROP_POS_FRAMES, 78)
        decisions = []
        for k in range(78, 118):  # biden and the astronaut, 8–11 s
            ok, bgr = cap.read()
            assert ok
            decisions += pipeline.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), k / 10, k / 10)
        decisions += pipeline.finish(11.8, 11.8)
        cap.release()
    finally:
        store.close()
    assert sorted(d.event.decision for d in decisions) == ["denied", "unknown"]
    assert {d.event.decision for d in decisions if d.snapshot is not None} == with_snapshot
    for d in decisions:
        if d.snapshot is not None:
            image = cv2.imdecode(np.frombuffer(d.snapshot, np.uint8), cv2.IMREAD_COLOR)
            assert image is not None and min(image.shape[:2]) >= 100


def test_a_photo_that_never_blinks_is_denied_under_passive_blink(door_env: dict, engine) -> None:
    """passive+blink with the real face-mesh and iris models: the clip's faces are still photos, so even
    with passing passive scores no blink comes and the grant is refused when the check's time is up."""
    wrapped = EngineWithPassiveModel(engine, 90.0)
    store = open_library(door_env["state"] / "library.sqlite3")
    try:
        store.attach_index(TemplateIndex(DESCRIPTOR_SIZE), engine.embedder.model_id)
        settings = CheckinConfig(groups=["staff"], liveness="passive+blink")
        blink = blink_settings(BlinkConfig(), CheckinConfig())
        pipeline = DoorPipeline(wrapped, store, ScoreMapping(), settings, blink, PACKAGE_MODELS_DIR)  # type: ignore[arg-type]
        assert pipeline.policy.available
        cap = cv2.VideoCapture(str(door_env["clip"]))
        events = []
        for k in range(36):  # obama's first visit, 0–3.5 s
            ok, bgr = cap.read()
            assert ok
            events += pipeline.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), k / 10, k / 10)
        cap.release()
    finally:
        store.close()
    assert [(d.event.decision, d.event.name) for d in events] == [("denied", "obama")]
    assert events[0].event.reason.startswith("liveness failed") and "blink" in events[0].event.reason
