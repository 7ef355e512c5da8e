"""`facegate liveness IMG… [--json]` on the MiniFASNet samples."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import DATA, NO_FACES

from daemon.cli import main

SAMPLES = DATA / "minifasnet"


def test_liveness_json_per_image(capsys) -> None:
    paths = [
        SAMPLES / "image_F1.jpg",
        SAMPLES / "image_F2.jpg",
        SAMPLES / "image_T1.jpg",
        NO_FACES / "rocket.jpg",
    ]
    assert main(["liveness", "--json", *map(str, paths)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(r["path"]).name for r in lines] == [p.name for p in paths]
    f1, f2, t1, rocket = (r["face"] for r in lines)
    assert rocket is None
    assert f1["decision"] == f2["decision"] == "spoof"
    assert t1["decision"] == "live"
    assert max(f1["livenessScore"], f2["livenessScore"]) < 40 <= t1["livenessScore"] <= 100
    x1, y1, x2, y2 = t1["box"]
    assert 0 <= x1 < x2 <= 480 and 0 <= y1 < y2 <= 640


def test_liveness_text_and_a_bad_file(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    assert main(["liveness", str(SAMPLES / "image_T1.jpg"), str(bad)]) == 1
    captured = capsys.readouterr()
    assert "livenessScore" in captured.out and " live " in captured.out
    assert "bad.jpg" in captured.err


def test_liveness_disabled_in_the_config(tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("liveness:\n  enabled: false\n")
    assert main(["liveness", "--config", str(config), str(SAMPLES / "image_T1.jpg")]) == 2
    assert "disabled" in capsys.readouterr().err
