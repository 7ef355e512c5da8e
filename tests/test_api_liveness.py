"""Device API 3.1/3.2 with livenessEnabled, through a real server and the shipped liveness models.

The MiniFASNet demo images (tests/data/minifasnet) are one person: image_T1 live, image_F1 and
image_F2 presentation attacks (a photo and a screen held to the camera). Enrolled from T1, the attacks
match that person without liveness (score ≥ 80), so a search that finds nobody with liveness on is
the liveness check at work, not the face matcher.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from api_device_support import OBAMA, OBAMA2, call, data_url, enroll, jpeg, search
from conftest import DATA, read_rgb

from daemon.config import with_overrides

SAMPLES = DATA / "minifasnet"
LIVE = SAMPLES / "image_T1.jpg"
ATTACKS = [SAMPLES / "image_F1.jpg", SAMPLES / "image_F2.jpg"]


@pytest.fixture
async def client(make_client, config):
    return await make_client(config)


def tight_crop(path: Path, box: tuple[int, int, int, int]) -> bytes:
    """The face cropped tight (1.3× its box), as a terminal might send it."""
    x1, y1, x2, y2 = box
    cx, cy, half = (x1 + x2) // 2, (y1 + y2) // 2, int((x2 - x1) * 0.65)
    return jpeg(read_rgb(path)[cy - half : cy + half, cx - half : cx + half])


async def test_search_reports_a_liveness_score_and_matches_only_the_live_face(client):
    enrolled = await enroll(client, LIVE)
    live = await search(client, LIVE, ["default"], livenessEnabled=True)
    result = live["detectionResult"]
    assert isinstance(result["livenessScore"], float) and 0 <= result["livenessScore"] <= 100
    assert result["liveness"] == "live"
    assert result["livenessScore"] >= 40  # the default liveness.min_score
    assert live["top1"]["faceToken"] == enrolled["faceToken"]
    for attack in ATTACKS:
        # The matcher alone lets the attack in ...
        plain = await search(client, attack, ["default"])
        assert plain["top1"]["faceToken"] == enrolled["faceToken"], attack.name
        assert "livenessScore" not in plain["detectionResult"]
        # ... liveness keeps it out, and says why.
        checked = await search(client, attack, ["default"], livenessEnabled=True, topN=5)
        assert all(checked[f"top{i}"] == {} for i in range(1, 6)), attack.name
        assert checked["detectionResult"]["liveness"] == "spoof", attack.name
        assert checked["detectionResult"]["livenessScore"] < result["livenessScore"] - 30, attack.name


async def test_compare_reports_each_images_liveness(client):
    payload = {"image1": data_url(LIVE), "image2": data_url(ATTACKS[0]), "livenessEnabled": True}
    data = (await call(client, "POST", "/api/face/compare", payload))["data"]
    first, second = data["detectionResult1"], data["detectionResult2"]
    assert first["liveness"] == "live" and second["liveness"] == "spoof"
    assert first["livenessScore"] > second["livenessScore"]
    # The compare score itself is unchanged by liveness: the terminal decides (docs/API.md 3.1).
    payload["livenessEnabled"] = False
    plain = (await call(client, "POST", "/api/face/compare", payload))["data"]
    assert plain["compareScore"] == data["compareScore"] >= 80
    assert "livenessScore" not in plain["detectionResult1"]


async def test_scores_vary_with_the_input(client):
    scores = []
    for path in [LIVE, *ATTACKS, OBAMA, OBAMA2]:
        payload = {"image1": data_url(path), "image2": data_url(path), "livenessEnabled": True}
        data = (await call(client, "POST", "/api/face/compare", payload))["data"]
        assert data["detectionResult1"]["livenessScore"] == data["detectionResult2"]["livenessScore"]
        scores.append(data["detectionResult1"]["livenessScore"])
    assert len(set(scores)) >= 4
    assert max(scores[1:3]) < min(scores[0], scores[3], scores[4])


async def test_a_tight_face_crop_has_no_context_and_is_never_live(client):
    enrolled = await enroll(client, LIVE)
    rect = enrolled["rect"]
    crop = tight_crop(LIVE, (rect["left"], rect["top"], rect["right"], rect["bottom"]))
    plain = await search(client, crop, ["default"])
    assert plain["top1"]["faceToken"] == enrolled["faceToken"]  # a usable face for the matcher
    checked = await search(client, crop, ["default"], livenessEnabled=True)
    assert checked["detectionResult"]["liveness"] == "no_context"
    assert checked["detectionResult"]["livenessScore"] == 0.0
    assert checked["top1"] == {}


async def test_the_thresholds_come_from_the_config(make_client, config, tmp_path):
    lax = await make_client(with_overrides(config, liveness={"min_score": 0.0}))
    enrolled = await enroll(lax, LIVE)
    data = await search(lax, ATTACKS[0], ["default"], livenessEnabled=True)
    assert data["detectionResult"]["liveness"] == "live"  # every score passes 0
    assert data["top1"]["faceToken"] == enrolled["faceToken"]
    other_state = {"state_dir": str(tmp_path / "other")}
    picky = await make_client(with_overrides(config, liveness={"min_context": 10.0}, server=other_state))
    await enroll(picky, LIVE)
    data = await search(picky, LIVE, ["default"], livenessEnabled=True)
    assert data["detectionResult"]["liveness"] == "no_context" and data["top1"] == {}
