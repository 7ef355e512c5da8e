"""Phone-sized photos beyond the documented 4096×2160: accepted up to library.max_image_pixels, decoded
reduced (JPEG scale-on-decode) beyond library.max_decode_pixels, answers in the uploaded image's pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from api_device_support import OBAMA, OBAMA2, call, create_group, enroll, jpeg, png_header_only, search
from conftest import read_rgb

from daemon.config import with_overrides
from daemon.errors import ImageError
from daemon.vision.image import ImageLimits, decode_image


def phone_photo(source, width: int, height: int) -> tuple[bytes, float, tuple[int, int]]:
    """A width×height JPEG holding the source photo scaled to fill the height, centred on a grey canvas
    (a phone photo of a person); also the scale and the offset of the source in it."""
    rgb = read_rgb(source)
    scale = min(height / rgb.shape[0], width / rgb.shape[1])
    scaled = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    canvas = np.full((height, width, 3), 120, np.uint8)
    y0, x0 = (height - scaled.shape[0]) // 2, (width - scaled.shape[1]) // 2
    canvas[y0 : y0 + scaled.shape[0], x0 : x0 + scaled.shape[1]] = scaled
    return jpeg(canvas, 85), scale, (x0, y0)


@pytest.fixture(scope="module")
def landscape():
    return phone_photo(OBAMA, 4032, 3024)


@pytest.fixture(scope="module")
def portrait():
    return phone_photo(OBAMA2, 3061, 4600)


@pytest.fixture
async def client(make_client, config):
    return await make_client(config)


async def test_phone_photos_enrol_and_search(client, landscape, portrait):
    data, scale, (x0, y0) = landscape
    assert len(data) <= 4 * 1024 * 1024
    enrolled = await enroll(client, data, name="obama")
    rect = enrolled["rect"]
    assert 0 <= rect["left"] < rect["right"] <= 4032 and 0 <= rect["top"] < rect["bottom"] <= 3024
    # The face sits where the source photo's face was, in the big photo's pixels.
    small = await enroll(client, OBAMA.read_bytes(), name="obama-original")
    expected = {k: v * scale + (x0 if k in ("left", "right") else y0) for k, v in small["rect"].items()}
    assert all(abs(rect[k] - expected[k]) < 0.08 * (rect["right"] - rect["left"]) for k in rect), (
        rect,
        expected,
    )
    await create_group(client, "door")
    await call(
        client, "POST", f"/api/faceGroups/binding/{enrolled['faceToken']}", {"faceGroupList": ["door"]}
    )
    found = await search(client, portrait[0], ["door"])
    assert found["top1"]["faceToken"] == enrolled["faceToken"], found
    assert found["top1"]["searchScore"] >= 80
    det = found["detectionResult"]
    assert 0 <= det["left"] < det["right"] <= 3061 and 0 <= det["top"] < det["bottom"] <= 4600


async def test_reduced_decode_keeps_answers_in_source_pixels(make_client, config, landscape):
    # With a 4 MP decode budget the 12 MP photo is decoded at 1/2; the rect must still describe the
    # uploaded 4032×3024 image, within the reduced decode's resolution.
    full = await enroll(await make_client(config), landscape[0])
    reduced_config = with_overrides(config, library={"max_decode_pixels": 4_000_000})
    reduced_config = with_overrides(reduced_config, server={"state_dir": str(config.state_path) + "-reduced"})
    reduced = await enroll(await make_client(reduced_config), landscape[0])
    width = full["rect"]["right"] - full["rect"]["left"]
    for key in full["rect"]:
        assert abs(full["rect"][key] - reduced["rect"][key]) <= max(8, 0.05 * width), (full, reduced)


def test_decode_reduced_scale_and_memory_shape(landscape):
    limits = ImageLimits(max_bytes=8 << 20, oversize_pixels=50_000_000, decode_pixels=4_000_000)
    image = decode_image(landscape[0], limits)
    assert image.scale == 2 and image.rgb.shape == (1512, 2016, 3)
    assert image.source_size == (4032, 3024)
    assert image.to_source((10, 20, 2016, 1512)) == (20, 40, 4032, 3024)


async def test_over_budget_images_are_refused_with_104900(client):
    # More pixels than library.max_image_pixels (50 MP): refused from the header.
    huge = jpeg(np.full((7100, 7100, 3), 128, np.uint8), 50)
    answer = await call(client, "POST", "/api/faces", {"image": _b64(huge)}, 400, 104900)
    assert "pixels" in answer["msg"]
    # A 16-bit RGBA PNG of 40 MP: PNG cannot be decoded reduced, so beyond library.max_decode_pixels it
    # is refused before any pixel is decoded (the token IDAT would otherwise read as corrupt).
    bomb = png_header_only(7300, 5480)
    answer = await call(
        client, "POST", "/api/face/search", {"image": _b64(bomb), "group": ["default"]}, 400, 104900
    )
    assert "decodes" in answer["msg"], answer


def test_png_bomb_refused_before_decoding():
    limits = ImageLimits(max_bytes=8 << 20, oversize_pixels=50_000_000, decode_pixels=16_777_216)
    with pytest.raises(ImageError) as info:
        decode_image(png_header_only(7300, 5480), limits)
    assert info.value.reason == "too_large"


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


async def test_device_api_applies_the_decoded_memory_budget(make_client, config):
    # Within the pixel limits, but 16-bit RGBA: the header says what decoding would cost, and the
    # device API refuses it from there (limits.max_decode_bytes) instead of allocating it.
    client = await make_client(with_overrides(config, limits={"max_decode_bytes": 32 * 1024 * 1024}))
    image = png_header_only(3000, 3000)  # 9 MP × 4 channels × 2 bytes = 72 MB
    answer = await call(client, "POST", "/api/faces", {"image": _b64(image)}, 400, 104900)
    assert "decoding needs" in answer["msg"], answer
