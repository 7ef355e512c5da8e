"""`facegate detect | embed | compare` as a person runs them."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import FACES, NO_FACES, REPO


def facegate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=120,
    )


def test_detect_json_one_line_per_image():
    run = facegate(
        "detect", str(FACES / "obama.jpg"), str(NO_FACES / "coffee.png"), "--json", "--model", "full"
    )
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [len(line["faces"]) for line in lines] == [1, 0]
    face = lines[0]["faces"][0]
    assert len(face["box"]) == 4 and len(face["keypoints"]) == 6 and 0.5 < face["score"] <= 1


def test_embed_json_and_bad_file(tmp_path):
    bad = tmp_path / "not-an-image.jpg"
    bad.write_text("hello")
    run = facegate("embed", str(FACES / "biden.jpg"), str(bad), "--json")
    assert run.returncode == 1  # one image failed, the other was still processed
    (record,) = [json.loads(line) for line in run.stdout.splitlines()]
    assert record["model"] == "dlib_resnet_v1/int8" and len(record["embedding"]) == 128
    assert "not-an-image.jpg" in run.stderr and "not a supported image" in run.stderr


def test_compare_same_and_different_people():
    same = facegate("compare", str(FACES / "obama.jpg"), str(FACES / "obama2.jpg"), "--json")
    other = facegate("compare", str(FACES / "obama.jpg"), str(FACES / "biden.jpg"), "--json")
    assert same.returncode == other.returncode == 0, same.stderr + other.stderr
    same, other = json.loads(same.stdout), json.loads(other.stdout)
    assert same["distance"] < 0.5 and same["score"] > 80
    assert other["distance"] > 0.7 and other["score"] < 70


def test_compare_without_a_face_is_an_error():
    run = facegate("compare", str(FACES / "obama.jpg"), str(NO_FACES / "coffee.png"))
    assert run.returncode == 2 and "no face found" in run.stderr
