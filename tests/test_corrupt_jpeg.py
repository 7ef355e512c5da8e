"""Corrupt JPEGs (issue #11: "A bit-flipped JPEG is accepted and enrolled"). OpenCV decodes a JPEG whose
entropy-coded data is damaged into damaged pixels, silently; enrolment now reads it strictly
(libjpeg-turbo's warnings are errors) and answers INVALID_PARAMETER. Real images, real server.
"""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest
from api_device_support import call, data_url
from conftest import FACES

from daemon.errors import ImageError
from daemon.vision.image import ImageLimits, check_jpeg_data, decode_image

GOOD = (FACES / "obama.jpg").read_bytes()


def flipped(data: bytes) -> bytes:
    """The first single-bit flip in the entropy-coded data (seeded, so always the same) that libjpeg
    reports, and that OpenCV decodes anyway: the case the issue found."""
    start = data.find(b"\xff\xda") + 64
    rng = random.Random(11)
    for _ in range(500):
        offset, bit = rng.randrange(start, len(data) - 4), 1 << rng.randrange(8)
        damaged = bytearray(data)
        damaged[offset] ^= bit
        try:
            check_jpeg_data(bytes(damaged))
        except ImageError:
            if cv2.imdecode(np.frombuffer(bytes(damaged), np.uint8), cv2.IMREAD_COLOR) is not None:
                return bytes(damaged)
    raise AssertionError("no detectable flip found")


@pytest.fixture(scope="module")
def bad() -> bytes:
    return flipped(GOOD)


def test_opencv_alone_accepts_the_flipped_file(bad) -> None:
    assert cv2.imdecode(np.frombuffer(bad, np.uint8), cv2.IMREAD_COLOR) is not None


def test_strict_limits_refuse_it_and_lenient_ones_do_not(bad) -> None:
    with pytest.raises(ImageError) as refused:
        decode_image(bad, ImageLimits.device_api())
    assert refused.value.reason == "corrupt"
    assert decode_image(bad, ImageLimits(max_bytes=8 * 2**20)).rgb.size  # search/privacy: best effort
    assert decode_image(GOOD, ImageLimits.device_api()).rgb.size  # a sound file passes


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_jpegs_are_refused(cut) -> None:
    with pytest.raises(ImageError):
        decode_image(GOOD[: int(len(GOOD) * cut)], ImageLimits.device_api())


async def test_enrolment_of_a_bit_flipped_jpeg_is_invalid_parameter(make_client, config, bad) -> None:
    client = await make_client(config)
    payload = {"image": data_url(bad), "description": "", "imageMd5": "", "name": "", "gender": ""}
    body = await call(client, "POST", "/api/faces", payload, status=400, code=104900)
    assert "corrupt" in body["msg"]
    assert (await call(client, "GET", "/api/faces"))["data"]["totalFaces"] == 0
    await call(client, "POST", "/api/faces", {**payload, "image": data_url(GOOD)})  # the sound file enrols
    assert (await call(client, "GET", "/api/faces"))["data"]["totalFaces"] == 1
