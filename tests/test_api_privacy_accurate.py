"""accurate=true on the blur API: detection at privacy.accurate_max_side, for small faces in big photos."""

from __future__ import annotations

import aiohttp
import cv2
import pytest
from conftest import AUTH, FACES, NO_FACES, read_rgb

SIZE = (1920, 1080)
FACE_HEIGHT = 36  # ~12 px once a 1920-px photo is shrunk to the default max_side (640): too small


def scene(engine) -> tuple[bytes, list[tuple[float, float, float, float]]]:
    """A 1920×1080 JPEG of four ~36-px faces on a textured photo, and their boxes."""
    canvas = cv2.resize(read_rgb(NO_FACES / "brick.png"), SIZE, interpolation=cv2.INTER_LINEAR)
    truth = []
    names = ("obama.jpg", "biden.jpg", "obama3.jpg", "obama.jpg")
    centres = ((300, 300), (900, 200), (1500, 500), (700, 850))
    for name, (cx, cy) in zip(names, centres, strict=True):
        src = read_rgb(FACES / name)
        x1, y1, x2, y2 = max(engine.detect(src, "full", 0.5), key=lambda f: f.score).box
        k = FACE_HEIGHT / (y2 - y1)
        pad = 0.6 * (x2 - x1)
        sx1, sy1 = max(0, int(x1 - pad)), max(0, int(y1 - pad))
        sx2, sy2 = min(src.shape[1], int(x2 + pad)), min(src.shape[0], int(y2 + pad))
        patch = cv2.resize(src[sy1:sy2, sx1:sx2], None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        ox, oy = round(cx - ((x1 + x2) / 2 - sx1) * k), round(cy - ((y1 + y2) / 2 - sy1) * k)
        canvas[oy : oy + patch.shape[0], ox : ox + patch.shape[1]] = patch
        w, h = (x2 - x1) * k, (y2 - y1) * k
        truth.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return buf.tobytes(), truth


def found(faces: list[dict], truth) -> int:
    def iou(a, b) -> float:
        iw, ih = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
        inter = max(0.0, iw) * max(0.0, ih)
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    boxes = [(x, y, x + w, y + h) for x, y, w, h in (f["bbox"] for f in faces)]
    return sum(any(iou(b, t) >= 0.4 for b in boxes) for t in truth)


async def detect(client, image: bytes, accurate: str | None) -> list[dict]:
    form = aiohttp.FormData()
    form.add_field("image", image, filename="scene.jpg", content_type="image/jpeg")
    if accurate is not None:
        form.add_field("accurate", accurate)
    r = await client.post("/detect", data=form, headers=AUTH)
    assert r.status == 200, await r.text()
    assert "X-Cache" not in r.headers  # no cross-client cache hint
    return (await r.json())["faces"]


@pytest.fixture
async def client(make_client, config):
    return await make_client(config)


async def test_accurate_finds_the_small_faces_the_fast_default_misses(client, engine, config) -> None:
    assert config.privacy.max_side < config.privacy.accurate_max_side == 1920
    image, truth = scene(engine)
    fast = await detect(client, image, None)
    # Not the fast answer from the result cache: accuracy is part of the cache key.
    accurate = await detect(client, image, "true")
    assert found(accurate, truth) == len(truth)
    assert len(accurate) == len(truth)
    assert found(fast, truth) < len(truth)
    again = await detect(client, image, "false")
    assert again == fast


async def test_accurate_must_be_a_flag(client) -> None:
    image = (FACES / "obama.jpg").read_bytes()
    form = aiohttp.FormData()
    form.add_field("image", image, filename="a.jpg", content_type="image/jpeg")
    form.add_field("accurate", "very")
    r = await client.post("/detect", data=form, headers=AUTH)
    assert r.status == 400 and "accurate" in (await r.json())["error"]
