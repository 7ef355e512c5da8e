"""The decoded-memory budget (issue #11, "Memory blow-up"): a 310 KB 16-bit RGBA PNG of 40 MP passed the
pixel limit and cost +1.5 GiB per request. The budget is checked from the header (size, bit depth,
channels) before a pixel is decoded; tracemalloc (numpy and OpenCV's arrays are traced) shows what a
request really allocates.
"""

from __future__ import annotations

import struct
import tracemalloc
import zlib

import cv2
import numpy as np
import pytest
from conftest import AUTH

from daemon.errors import ImageError
from daemon.vision.image import ImageLimits, check_decode_budget, decode_cost, decode_image, pixel_format

MiB = 2**20


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(width: int = 8000, height: int = 5000, depth: int = 16, colour: int = 6) -> bytes:
    """A real, valid PNG of width×height (all zero pixels): tiny on the wire, huge once decoded."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    row = b"\x00" + bytes(width * channels * depth // 8)  # filter byte "none" + the samples
    z = zlib.compressobj(9)
    idat = bytearray()
    for _ in range(height):
        idat += z.compress(row)
    idat += z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", bytes(idat)) + _chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return png_bomb()


def test_the_bomb_is_what_the_issue_describes(bomb) -> None:
    assert len(bomb) < 400 * 1024
    assert pixel_format(bomb, "png") == (4, 2)
    assert decode_cost(8000, 5000, 4, 2) > 768 * MiB  # 1.5 GiB before 16-bit samples were scaled in place


def test_the_budget_refuses_the_bomb_before_decoding(bomb) -> None:
    limits = ImageLimits(max_bytes=20 * MiB, max_width=16384, max_height=16384, max_pixels=40_000_000)
    budgeted = ImageLimits(**{**limits.__dict__, "max_decode_bytes": 384 * MiB})
    tracemalloc.start()
    try:
        with pytest.raises(ImageError) as refused:
            decode_image(bomb, budgeted)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.reason == "too_much_memory" and "MiB" in str(refused.value)
    assert peak < 4 * MiB  # nothing decoded


def test_the_cost_bounds_what_decoding_really_allocates() -> None:
    rng = np.random.default_rng(1)
    for depth, channels in ((16, 4), (16, 3), (8, 4), (8, 3), (16, 1)):
        dtype = np.uint16 if depth == 16 else np.uint8
        img = rng.integers(0, np.iinfo(dtype).max, size=(600, 800, channels), dtype=dtype)
        img[..., -1] = np.iinfo(dtype).max // 2 if channels == 4 else img[..., -1]
        ok, encoded = cv2.imencode(".png", img if channels > 1 else img[..., 0])
        assert ok
        data = encoded.tobytes()
        cost = check_decode_budget(data, "png", 2**31)
        tracemalloc.start()
        try:
            decoded = decode_image(data, ImageLimits(max_bytes=64 * MiB))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert decoded.rgb.shape == (600, 800, 3)
        assert peak <= cost, (depth, channels, peak, cost)


async def test_the_privacy_api_answers_413_without_allocating(make_client, config, bomb) -> None:
    client = await make_client(config)
    for path in ("/api/v1/blur-faces", "/detect"):
        r = await client.post(path, data={"image": bomb}, headers=AUTH)
        assert r.status == 413
        assert "Image too large" in (await r.json())["error"]


def test_a_budget_large_enough_decodes_the_same_image() -> None:
    small = png_bomb(400, 300)
    limits = ImageLimits(max_bytes=MiB, max_decode_bytes=decode_cost(400, 300, 4, 2))
    decoded = decode_image(small, limits)
    assert decoded.rgb.shape == (300, 400, 3) and int(decoded.rgb.max()) == 255  # transparent → white
