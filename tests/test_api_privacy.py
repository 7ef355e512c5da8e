"""The privacy API (PRIVACY_API.md) through a real server: contract, real blurring, metadata, cache, auth."""

from __future__ import annotations

import logging
import struct

import aiohttp
import cv2
import numpy as np
import pytest
from conftest import AUTH, FACES, NO_FACES, read_rgb

from daemon.appkeys import POOL
from daemon.config import with_overrides
from daemon.vision.blur import cover_region, gaussian_kernel_size

OBAMA = FACES / "obama.jpg"
BIDEN = FACES / "biden.jpg"
CLEAN_NO_FACES = [NO_FACES / n for n in ("brick.png", "chelsea.png", "coins.png", "horse.png", "rocket.jpg")]
ROUTES = ("/api/v1/blur-faces", "/process", "/detect")


@pytest.fixture
async def client(make_client, config):
    return await make_client(config)


def encode(rgb: np.ndarray, ext: str = ".jpg", params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params or [])
    assert ok
    return buf.tobytes()


def decode(data: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


async def post(client, path: str, image: bytes | None, fields: dict | None = None, headers=None, **kw):
    form = aiohttp.FormData()
    if image is not None:
        form.add_field("image", image, filename=kw.get("filename", "photo.jpg"), content_type="image/jpeg")
    for name, value in (fields or {}).items():
        form.add_field(name, value)
    return await client.post(path, data=form, headers=AUTH if headers is None else headers)


async def faces_of(client, image: bytes) -> list[dict]:
    r = await post(client, "/detect", image)
    assert r.status == 200
    return (await r.json())["faces"]


def regions_of(faces: list[dict], width: int, height: int) -> list[tuple[int, int, int, int]]:
    out = []
    for f in faces:
        x, y, w, h = f["bbox"]
        out.append(cover_region((x, y, x + w, y + h), width, height))
    return out


def reencoded(rgb: np.ndarray, quality: int = 90) -> np.ndarray:
    """rgb after one JPEG round trip at the service's default quality: the noise any output carries."""
    return decode(encode(rgb, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality]))


def laplacian_variance(rgb: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def jpeg_segments(data: bytes) -> list[int]:
    """The marker bytes of a JPEG's segments up to the start of scan."""
    assert data[:2] == b"\xff\xd8"
    markers, pos = [], 2
    while pos + 4 <= len(data):
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    return markers


def with_exif(jpeg: bytes, secret: bytes) -> bytes:
    """jpeg with an APP1 Exif segment: IFD0 → GPS IFD holding latitude ref 'N' and a text tag."""
    gps_ifd_offset = 26
    tiff = b"II*\x00" + struct.pack("<I", 8)
    tiff += struct.pack("<H", 1) + struct.pack("<HHII", 0x8825, 4, 1, gps_ifd_offset) + struct.pack("<I", 0)
    text_offset = gps_ifd_offset + 2 + 2 * 12 + 4
    tiff += struct.pack("<H", 2)
    tiff += struct.pack("<HHI", 0x0001, 2, 2) + b"N\x00\x00\x00"  # GPSLatitudeRef
    tiff += struct.pack("<HHII", 0x001B, 7, len(secret), text_offset)  # GPSProcessingMethod
    tiff += struct.pack("<I", 0) + secret
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


# --- the contract ------------------------------------------------------------------------------------


async def test_blur_faces_returns_a_jpeg_of_the_same_size(client) -> None:
    r = await post(client, "/api/v1/blur-faces", OBAMA.read_bytes())
    assert r.status == 200
    assert r.content_type == "image/jpeg"
    assert r.headers["X-Faces-Count"] == "1"
    out = decode(await r.read())
    assert out.shape == read_rgb(OBAMA).shape


async def test_process_answers_an_image_or_json_by_accept(client) -> None:
    image = BIDEN.read_bytes()
    r = await post(client, "/process", image)
    assert r.status == 200 and r.content_type == "image/jpeg"
    assert r.headers["X-Faces-Count"] == "1"
    decode(await r.read())

    r = await post(client, "/process", image, headers={**AUTH, "Accept": "application/json"})
    assert r.status == 200 and r.content_type == "application/json"
    body = await r.json()
    assert set(body) == {"faces", "total_count", "processing_time_ms"}
    assert body["total_count"] == len(body["faces"]) == 1
    assert isinstance(body["processing_time_ms"], int) and body["processing_time_ms"] >= 0
    (face,) = body["faces"]
    assert set(face) == {"bbox", "confidence", "blur_radius"}
    x, y, w, h = face["bbox"]
    assert all(isinstance(v, int) for v in face["bbox"])
    height, width = read_rgb(BIDEN).shape[:2]
    assert x >= 0 and y >= 0 and x + w <= width and y + h <= height and w > 100 and h > 100
    assert 0.35 <= face["confidence"] <= 1
    region = cover_region((x, y, x + w, y + h), width, height)
    side = max(region[2] - region[0], region[3] - region[1])
    assert face["blur_radius"] == gaussian_kernel_size(side) and face["blur_radius"] % 2 == 1


async def test_detect_answers_json_whatever_the_accept_header(client) -> None:
    r = await post(client, "/detect", OBAMA.read_bytes(), headers={**AUTH, "Accept": "image/jpeg"})
    assert r.status == 200 and r.content_type == "application/json"
    assert (await r.json())["total_count"] == 1
    r = await post(client, "/detect", (NO_FACES / "coins.png").read_bytes())
    assert await r.json() == {
        "faces": [],
        "total_count": 0,
        "processing_time_ms": (await r.json())["processing_time_ms"],
    }


async def test_show_box_draws_green_only_when_asked(client) -> None:
    image = OBAMA.read_bytes()
    rgb = read_rgb(OBAMA)
    height, width = rgb.shape[:2]
    ((x1, y1, x2, y2),) = regions_of(await faces_of(client, image), width, height)

    def green_on_border(out: np.ndarray) -> float:
        border = np.concatenate(
            [out[y1 + 1, x1:x2], out[y2 - 2, x1:x2], out[y1:y2, x1 + 1], out[y1:y2, x2 - 2]]
        )
        r, g, b = border[:, 0].astype(int), border[:, 1].astype(int), border[:, 2].astype(int)
        return float(np.mean((g > 180) & (r < 90) & (b < 90)))

    default = decode(await (await post(client, "/api/v1/blur-faces", image)).read())
    off = decode(await (await post(client, "/api/v1/blur-faces", image, {"show_box": "false"})).read())
    assert green_on_border(default) > 0.9
    assert green_on_border(off) < 0.05
    on_process = decode(await (await post(client, "/process", image, {"show_box": "true"})).read())
    assert green_on_border(on_process) > 0.9


@pytest.mark.parametrize("ext", [".png", ".bmp", ".webp"])
async def test_other_formats_are_sniffed_not_trusted_by_name(client, ext) -> None:
    data = encode(read_rgb(BIDEN), ext)
    r = await post(client, "/process", data, filename="upload.jpg")  # the name and type lie
    assert r.status == 200 and r.headers["X-Faces-Count"] == "1"


async def test_rgba_png_is_accepted(client) -> None:
    r = await post(client, "/api/v1/blur-faces", (FACES / "32bit.png").read_bytes())
    assert r.status == 200 and r.headers["X-Faces-Count"] == "1"


@pytest.mark.parametrize("path", ROUTES)
async def test_missing_or_empty_image_is_no_image_provided(client, path) -> None:
    r = await post(client, path, None, {"show_box": "true"})
    assert r.status == 400 and await r.json() == {"error": "No image provided"}
    r = await post(client, path, b"")
    assert r.status == 400 and await r.json() == {"error": "No image provided"}
    r = await client.post(path, json={"image": "x"}, headers=AUTH)  # not multipart at all
    assert r.status == 400 and await r.json() == {"error": "No image provided"}


@pytest.mark.parametrize("path", ROUTES)
async def test_bad_files_are_invalid_image_format(client, path) -> None:
    truncated = OBAMA.read_bytes()[:300]
    for data in (b"this is not an image at all", truncated, b"GIF89a" + bytes(100)):
        r = await post(client, path, data)
        assert r.status == 400, data[:20]
        assert await r.json() == {"error": "Invalid image format"}


async def test_bad_options_are_refused(client) -> None:
    image = OBAMA.read_bytes()
    r = await post(client, "/api/v1/blur-faces", image, {"method": "swirl"})
    assert r.status == 400 and "method" in (await r.json())["error"]
    r = await post(client, "/api/v1/blur-faces", image, {"show_box": "maybe"})
    assert r.status == 400 and "show_box" in (await r.json())["error"]
    r = await post(client, "/api/v1/blur-faces", image, {"show_box": "x" * 1000})
    assert r.status == 400


async def test_oversized_uploads_are_413(make_client, config) -> None:
    small = with_overrides(config, privacy={"max_bytes": 100_000, "max_pixels": 100_000})
    client = await make_client(small)
    rgb = read_rgb(OBAMA)
    noisy = np.random.default_rng(1).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    big = encode(noisy, ".png")  # ~480 kB: refused from Content-Length before it is read
    assert len(big) > 200_000
    r = await post(client, "/api/v1/blur-faces", big)
    assert r.status == 413 and (await r.json())["error"].startswith("Image too large")
    just_over = encode(noisy[:200, :200], ".png")  # within the form overhead: refused while streaming
    assert 100_000 < len(just_over) < 150_000
    r = await post(client, "/process", just_over)
    assert r.status == 413 and (await r.json())["error"].startswith("Image too large")
    many_pixels = encode(cv2.resize(rgb, (400, 300)), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 50])
    assert len(many_pixels) < 100_000
    r = await post(client, "/detect", many_pixels)  # 120000 px > 100000
    assert r.status == 413 and "pixels" in (await r.json())["error"]


# --- faces really are blurred, the rest is untouched -------------------------------------------------


@pytest.mark.parametrize("method", ["gaussian", "pixelate", "solid"])
async def test_faces_lose_their_detail_and_the_detector_loses_them(client, engine, method) -> None:
    for path in (OBAMA, BIDEN):
        image = path.read_bytes()
        rgb = read_rgb(path)
        height, width = rgb.shape[:2]
        faces = await faces_of(client, image)
        r = await post(client, "/api/v1/blur-faces", image, {"method": method, "show_box": "false"})
        assert r.status == 200
        out = decode(await r.read())
        for f in faces:
            x, y, w, h = f["bbox"]
            before = laplacian_variance(rgb[y : y + h, x : x + w])
            after = laplacian_variance(out[y : y + h, x : x + w])
            # Pixelation keeps the edges between its blocks: less of a drop, still no face detail.
            assert after < (0.3 if method == "pixelate" else 0.05) * before, (
                path.name,
                method,
                before,
                after,
            )
        for kind in ("full", "short"):  # at their normal thresholds
            assert engine.detect(out, kind) == [], (path.name, method, kind)
        mask = np.zeros((height, width), bool)
        for x1, y1, x2, y2 in regions_of(faces, width, height):
            mask[max(0, y1 - 16) : y2 + 16, max(0, x1 - 16) : x2 + 16] = True  # JPEG blocks at the edge
        diff = np.abs(out.astype(int) - reencoded(rgb).astype(int)).max(axis=2)[~mask]
        assert diff.mean() < 0.1 and np.percentile(diff, 99.9) <= 4, (path.name, method)


@pytest.mark.parametrize("path", CLEAN_NO_FACES, ids=lambda p: p.name)
async def test_no_face_images_come_back_unchanged(client, path) -> None:
    r = await post(client, "/api/v1/blur-faces", path.read_bytes())
    assert r.status == 200 and r.headers["X-Faces-Count"] == "0"
    out = decode(await r.read())
    original = read_rgb(path)
    assert out.shape == original.shape
    diff = np.abs(out.astype(int) - reencoded(original).astype(int))
    assert diff.max() <= 2  # nothing but one JPEG re-encoding


async def test_exif_and_gps_are_stripped(client) -> None:
    secret = b"SECRET-GPS-48.8584N-2.2945E\x00"
    original = with_exif(OBAMA.read_bytes(), secret)
    assert 0xE1 in jpeg_segments(original)
    for path in ("/api/v1/blur-faces", "/process"):
        r = await post(client, path, original)
        assert r.status == 200
        out = await r.read()
        assert 0xE1 not in jpeg_segments(out)  # no APP1 (Exif, XMP)
        assert b"Exif" not in out and b"SECRET-GPS" not in out


# --- cache, audit, auth ------------------------------------------------------------------------------


async def test_cache_answers_a_repeat_without_running_a_job(client) -> None:
    pool = client.app[POOL]
    image = BIDEN.read_bytes()
    first = await post(client, "/api/v1/blur-faces", image)
    body = await first.read()
    assert "X-Cache" not in first.headers  # whether an answer was cached is never told
    done = pool.stats()["completed"]
    again = await post(client, "/api/v1/blur-faces", image)
    assert await again.read() == body and "X-Cache" not in again.headers
    assert again.headers["X-Faces-Count"] == "1"
    assert pool.stats()["completed"] == done  # no decode, no detection, no encode
    other = await post(client, "/api/v1/blur-faces", image, {"show_box": "false"})  # other options
    assert await other.read() != body
    assert pool.stats()["completed"] > done


async def test_cache_is_not_shared_between_clients(make_client, config, tokens) -> None:
    """Another token's identical upload is computed again: a hit would reveal the first client's image."""
    from daemon.services.tokens import PRIVACY, TokenRegistry

    second = "second-client-token-8c7b6a5f4e3d"
    registry = TokenRegistry((*tokens.entries, *TokenRegistry.of([("other", second, [PRIVACY])]).entries))
    client = await make_client(config, tokens=registry)
    pool = client.app[POOL]
    image = OBAMA.read_bytes()
    first = await post(client, "/detect", image)
    done = pool.stats()["completed"]
    assert (await post(client, "/detect", image)).status == 200
    assert pool.stats()["completed"] == done  # the same client: a hit
    other = await post(client, "/detect", image, headers={"Authorization": f"Bearer {second}"})
    assert (await other.json())["faces"] == (await first.json())["faces"] and "X-Cache" not in other.headers
    assert pool.stats()["completed"] > done  # another client: computed again


async def test_cache_can_be_turned_off(make_client, config) -> None:
    client = await make_client(with_overrides(config, privacy={"cache_entries": 0}))
    pool = client.app[POOL]
    image = OBAMA.read_bytes()
    for _ in range(2):
        done = pool.stats()["completed"]
        r = await post(client, "/detect", image)
        assert r.status == 200 and pool.stats()["completed"] > done


async def test_one_audit_line_per_request_without_the_image(client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="facegate.privacy")
    await post(client, "/api/v1/blur-faces", OBAMA.read_bytes())
    (record,) = [r for r in caplog.records if r.name == "facegate.privacy"]
    line = record.getMessage()
    for part in ("blur-faces", "client=127.0.0.1", "principal=tester", "image=", "faces=1", "ms="):
        assert part in line
    assert len(line) < 300
    caplog.clear()
    await post(client, "/detect", b"not an image")
    (record,) = [r for r in caplog.records if r.name == "facegate.privacy"]
    assert "rejected=unsupported_type" in record.getMessage()


@pytest.mark.parametrize("path", ROUTES)
async def test_routes_need_a_token(client, path) -> None:
    r = await post(client, path, OBAMA.read_bytes(), headers={})
    assert r.status == 401 and await r.json() == {"error": "Missing Authorization header"}
    r = await post(
        client, path, OBAMA.read_bytes(), headers={"Authorization": "Bearer wrong-token-0123456789"}
    )
    assert r.status == 403 and await r.json() == {"error": "Invalid token"}


async def test_loopback_exemption(make_client, config) -> None:
    exempt = await make_client(with_overrides(config, auth={"privacy_without_token": True}))
    r = await post(exempt, "/api/v1/blur-faces", OBAMA.read_bytes(), headers={})
    assert r.status == 200
    assert (await exempt.get("/api/faces")).status == 401  # other routes still need the token
    exposed = await make_client(
        with_overrides(config, auth={"privacy_without_token": True}, server={"host": "0.0.0.0"})
    )
    r = await post(exposed, "/detect", OBAMA.read_bytes(), headers={})
    assert r.status == 401  # never without a token off loopback


async def test_spreading_tiles_over_workers_changes_nothing(make_client, config) -> None:
    image = BIDEN.read_bytes()  # 970×2204: whole frame and 640-px tiles
    answers = []
    for parallel in (True, False):
        client = await make_client(with_overrides(config, privacy={"parallel": parallel}))
        done = client.app[POOL].stats()["completed"]
        body = await (await post(client, "/detect", image)).json()
        jobs = client.app[POOL].stats()["completed"] - done
        answers.append((body["faces"], jobs))
    (spread, spread_jobs), (single, single_jobs) = answers
    assert spread == single and len(spread) == 1
    assert spread_jobs > single_jobs == 1  # decode, tiles on both workers, checks, finish vs one job
