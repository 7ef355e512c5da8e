"""Image decoding with limits: real files from tests/data and files built here byte by byte."""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.errors import ImageError
from daemon.vision.image import (
    ImageLimits,
    decode_base64_image,
    decode_image,
    encode_jpeg,
    encode_png,
    read_dimensions,
    read_header,
    sniff_type,
)

DATA = Path(__file__).parent / "data"
TEST_FILES = sorted(p for p in DATA.glob("*/*") if p.suffix in (".jpg", ".png"))
LIMITS = ImageLimits()


def _error(data: bytes, limits: ImageLimits = LIMITS) -> ImageError:
    with pytest.raises(ImageError) as info:
        decode_image(data, limits)
    return info.value


def _pattern(width: int, height: int) -> np.ndarray:
    """An RGB image with 8x8 solid blocks of distinct colours: survives JPEG, shows any flip."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([(x // 8) * 37 % 256, (y // 8) * 53 % 256, ((x // 8) + (y // 8)) * 29 % 256], axis=2)
    return np.ascontiguousarray(rgb.astype(np.uint8))


def _cv_encode(ext: str, img: np.ndarray, params: tuple[int, ...] = ()) -> bytes:
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


def _png(
    width: int,
    height: int,
    depth: int,
    color: int,
    rows: bytes,
    *chunks: tuple[bytes, bytes],
    idat: bytes = b"",
) -> bytes:
    """A PNG built by hand (filter 0 on every row), for types OpenCV cannot write."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + b"".join(chunk(k, b) for k, b in chunks)
        + chunk(b"IDAT", idat or zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _png_rows(pixels: np.ndarray) -> bytes:
    """Rows with a leading filter byte 0; pixels is HxWxC (any dtype, big-endian for 16 bits)."""
    flat = pixels.reshape(pixels.shape[0], -1)
    return b"".join(b"\x00" + row.tobytes() for row in flat)


# --- every real test image ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_every_test_image_decodes_with_header_dimensions(path: Path) -> None:
    data = path.read_bytes()
    img = decode_image(data, LIMITS)
    assert img.kind == {".jpg": "jpeg", ".png": "png"}[path.suffix] == sniff_type(data)
    assert img.rgb.dtype == np.uint8 and img.rgb.flags.c_contiguous
    assert img.rgb.shape == (img.height, img.width, 3)
    assert read_dimensions(data, img.kind) == (img.orig_width, img.orig_height)
    if path.parent.name == "minifasnet":  # stored 640×480 with EXIF orientation 6: shown 480×640
        assert (img.width, img.height) == (img.orig_height, img.orig_width) == (480, 640)
    else:
        assert (img.orig_width, img.orig_height) == (img.width, img.height)
    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if raw.ndim == 3 and raw.shape[2] == 4 and raw[:, :, 3].min() < 255:  # horse.png: real alpha
        alpha = raw[:, :, 3:].astype(float) / 255
        expected = raw[:, :, 2::-1] * alpha + 255 * (1 - alpha)
        assert np.abs(img.rgb - expected).max() <= 1
    else:  # no alpha to flatten: exactly OpenCV's own RGB decode
        assert np.array_equal(img.rgb, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB))


def test_32bit_png_is_obama2() -> None:
    png = decode_image((DATA / "faces/32bit.png").read_bytes(), LIMITS)
    jpg = decode_image((DATA / "faces/obama2.jpg").read_bytes(), LIMITS)
    assert png.rgb.shape == jpg.rgb.shape
    assert np.abs(png.rgb.astype(int) - jpg.rgb.astype(int)).mean() < 3  # JPEG noise only


# --- sniffing and headers of generated files ------------------------------------------------------


GENERATED = {
    "jpeg": (".jpg", ()),
    "jpeg-progressive": (".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),  # SOF2
    "png": (".png", ()),
    "bmp": (".bmp", ()),
    "webp-lossless": (".webp", (cv2.IMWRITE_WEBP_QUALITY, 101)),  # VP8L
    "webp-lossy": (".webp", (cv2.IMWRITE_WEBP_QUALITY, 80)),  # VP8
}


@pytest.mark.parametrize("name", [*GENERATED, "webp-alpha"])
def test_generated_files_sniff_and_header_dimensions(name: str) -> None:
    bgr = cv2.cvtColor(_pattern(37, 23), cv2.COLOR_RGB2BGR)
    if name == "webp-alpha":  # lossy + alpha is written as VP8X
        ext, params, bgr = ".webp", (cv2.IMWRITE_WEBP_QUALITY, 80), cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    else:
        ext, params = GENERATED[name]
    data = _cv_encode(ext, bgr, params)
    kind = name.split("-")[0]
    assert sniff_type(data) == kind
    assert read_header(data, kind) == (37, 23, 1)
    img = decode_image(data, LIMITS)
    assert (img.kind, img.width, img.height, img.rgb.shape) == (kind, 37, 23, (23, 37, 3))
    assert np.abs(img.rgb.astype(int) - _pattern(37, 23)).mean() < 8


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, world\n",
        b"BMW is a car brand, not a bitmap",
        b"GIF89a\x01\x00\x01\x00",
        b"\xff\xd8",
        b"RIFF",
    ],
)
def test_sniff_rejects_other_bytes(data: bytes) -> None:
    assert sniff_type(data) is None


def test_jpeg_header_skips_dht_before_the_frame() -> None:
    """A DHT (0xC4) lies inside the SOF range: a copy placed before SOF0 must not be read as one."""
    data = _cv_encode(".jpg", _pattern(64, 40))
    dht = data.index(b"\xff\xc4")
    length = struct.unpack_from(">H", data, dht + 2)[0]
    sof = data.index(b"\xff\xc0")
    assert dht > sof  # OpenCV writes DHT after the frame header: move a copy in front of it
    moved = data[:sof] + data[dht : dht + 2 + length] + b"\xff\xff" + data[sof:]  # plus a fill byte
    assert read_dimensions(moved, "jpeg") == (64, 40)
    assert decode_image(moved, LIMITS).rgb.shape == (40, 64, 3)


def test_bmp_top_down_and_core_header() -> None:
    rgb = _pattern(30, 20)
    data = _cv_encode(".bmp", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    offset, stride = struct.unpack_from("<I", data, 10)[0], (30 * 3 + 3) // 4 * 4
    rows = [data[offset + i * stride : offset + (i + 1) * stride] for i in range(20)]
    top_down = bytearray(data[:offset] + b"".join(reversed(rows)))
    struct.pack_into("<i", top_down, 22, -20)  # negative height: first row is the top one
    img = decode_image(bytes(top_down), LIMITS)
    assert (img.width, img.height) == (30, 20) and np.array_equal(img.rgb, rgb)
    # BITMAPCOREHEADER (12 bytes, 16-bit sizes), as OS/2 1.x wrote it.
    core = b"BM" + struct.pack("<IHHI", 26 + len(rows) * stride, 0, 0, 26)
    core += struct.pack("<IHHHH", 12, 30, 20, 1, 24) + b"".join(rows)
    assert sniff_type(core) == "bmp" and read_dimensions(core, "bmp") == (30, 20)
    assert np.array_equal(decode_image(core, LIMITS).rgb, rgb)


# --- limits ---------------------------------------------------------------------------------------


def _grey_png(width: int, height: int) -> bytes:
    return _cv_encode(".png", np.full((height, width), 128, np.uint8))


def test_limits_on_bytes_and_dimensions() -> None:
    err = _error(_grey_png(20, 20), ImageLimits(max_bytes=50))
    assert err.reason == "too_large" and "the limit is 50 bytes" in str(err)
    err = _error(_png(5000, 3000, 8, 0, b""))  # header only: never decoded
    assert (err.reason, str(err)) == (
        "too_large",
        "image is 5000x3000, the limit is 4096x2160 (in either orientation)",
    )
    assert decode_image(_grey_png(2160, 4096), LIMITS).rgb.shape == (4096, 2160, 3)
    assert _error(_grey_png(2160, 4096), ImageLimits(either_orientation=False)).reason == "too_large"
    assert _error(_grey_png(40, 30), ImageLimits(max_pixels=1000)).reason == "too_many_pixels"
    assert decode_image(_grey_png(40, 25), ImageLimits(max_pixels=1000)).width == 40


def test_device_api_limits() -> None:
    limits = ImageLimits.device_api()
    assert decode_image(_grey_png(100, 100), limits).rgb.shape == (100, 100, 3)
    err = _error(_grey_png(99, 300), limits)
    assert (err.reason, str(err)) == ("too_small", "image is 99x300, the minimum is 100x100")
    webp = _cv_encode(".webp", _pattern(120, 120))
    assert _error(webp, limits).reason == "unsupported_type"
    assert _error((DATA / "faces/obama.jpg").read_bytes(), ImageLimits(kinds=frozenset({"png"}))).reason == (
        "unsupported_type"
    )


def test_decompression_bomb_is_rejected_from_the_header() -> None:
    # 30000x30000 RGB would need 2.7 GB; the file is a few hundred bytes (its IDAT is cut short,
    # so a decode attempt would answer "corrupt": "too_large" proves no decode was attempted).
    rows = zlib.compress(b"\x00" * (1 + 30000 * 3) * 64)
    bomb = _png(30000, 30000, 8, 2, b"", idat=rows[:200])
    assert len(bomb) < 1000 and read_dimensions(bomb, "png") == (30000, 30000)
    assert _error(bomb).reason == "too_large"
    huge = ImageLimits(max_width=40000, max_height=40000, max_pixels=50_000_000)
    err = _error(bomb, huge)
    assert err.reason == "too_many_pixels" and "900000000" in str(err)


# --- broken input ---------------------------------------------------------------------------------


def test_broken_files() -> None:
    jpeg = (DATA / "faces/obama2.jpg").read_bytes()
    png = (DATA / "no_faces/coins.png").read_bytes()
    assert _error(b"").reason == "empty"
    assert _error(np.random.default_rng(1).bytes(5000)).reason == "unsupported_type"
    assert _error(b"Name,Age\nAda,36\n").reason == "unsupported_type"
    for data in (jpeg[: len(jpeg) // 2], jpeg[:-2], png[: len(png) // 2], jpeg[:3000], png[:20]):
        assert _error(data).reason == "corrupt"
    assert "truncated" in str(_error(jpeg[:3000]))  # cut inside the EXIF segment
    garbled_ihdr = png[:18] + bytes([png[18] ^ 1]) + png[19:]  # width changed, CRC not
    assert "checksum" in str(_error(garbled_ihdr))
    jpeg_noise = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + np.random.default_rng(2).bytes(3000)
    assert _error(jpeg_noise).reason == "corrupt"
    # Not tested: noise inside the entropy-coded scan. libjpeg decodes it to garbage pixels with a
    # warning OpenCV does not surface, as browsers do; only a missing or cut scan is "corrupt".


# --- pixel formats --------------------------------------------------------------------------------


def test_sixteen_bit_png_is_scaled_not_truncated() -> None:
    values = np.array([[0, 255, 257, 511, 32896, 65279, 65535]], np.uint16)
    img = decode_image(_cv_encode(".png", values), LIMITS)
    expected = [0, 1, 1, 2, 128, 254, 255]  # round(v / 257); v >> 8 would give 0, 1, 1, 1, 128, 254, 255
    assert img.rgb[0, :, 0].tolist() == expected and np.array_equal(img.rgb[..., 0], img.rgb[..., 2])
    rgb16 = np.zeros((2, 3, 3), np.uint16)
    rgb16[..., 0] = 65535  # red in RGB order
    img = decode_image(_png(3, 2, 16, 2, _png_rows(rgb16.astype(">u2"))), LIMITS)
    assert (img.rgb == [255, 0, 0]).all()


def test_grey_grey_alpha_and_palette_png() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    img = decode_image(_png(4, 3, 8, 0, _png_rows(grey)), LIMITS)
    assert np.array_equal(img.rgb, np.repeat(grey[:, :, None], 3, axis=2))
    grey_alpha = np.array([[[40, 255], [40, 0], [40, 128]]], np.uint8)  # opaque, transparent, half
    img = decode_image(_png(3, 1, 8, 4, _png_rows(grey_alpha)), LIMITS)
    assert img.rgb[0, :, 0].tolist() == [40, 255, 147]  # on white: 40*a + 255*(1-a), a = 128/255
    palette = bytes([255, 0, 0, 0, 0, 255, 0, 0, 0])  # red, blue, black (transparent via tRNS)
    indices = np.array([[0, 1, 2]], np.uint8)
    data = _png(3, 1, 8, 3, _png_rows(indices), (b"PLTE", palette), (b"tRNS", b"\xff\xff\x00"))
    assert decode_image(data, LIMITS).rgb[0].tolist() == [[255, 0, 0], [0, 0, 255], [255, 255, 255]]


def test_rgba_png_transparent_pixels_become_white() -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)  # black everywhere; alpha decides
    rgba[0, 0] = [10, 20, 30, 255]
    img = decode_image(_png(2, 2, 8, 6, _png_rows(rgba)), LIMITS)
    assert img.rgb[0, 0].tolist() == [10, 20, 30] and (img.rgb[1] == 255).all()


# --- EXIF orientation -----------------------------------------------------------------------------


def _with_exif(jpeg: bytes, orientation: int, order: str) -> bytes:
    """The JPEG with an APP1 Exif segment whose IFD0 holds another tag, then Orientation."""
    o = "<" if order == "II" else ">"
    head = (b"II*\x00" if order == "II" else b"MM\x00*") + struct.pack(o + "I", 8)
    make = struct.pack(o + "HHII", 0x010F, 2, 4, 0)  # Make, ASCII, 4 bytes inline
    orient = struct.pack(o + "HHIH", 0x0112, 3, 1, orientation) + b"\x00\x00"
    tiff = head + struct.pack(o + "H", 2) + make + orient + struct.pack(o + "I", 0)
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(tiff)) + b"Exif\x00\x00" + tiff
    return jpeg[:2] + app1 + jpeg[2:]


# How the stored pixels look for each orientation, given the upright picture D (numpy, on purpose
# not the module's cv2 operations): 5..8 store the picture transposed, so width and height swap.
STORED = {
    1: lambda d: d,
    2: lambda d: d[:, ::-1],
    3: lambda d: d[::-1, ::-1],
    4: lambda d: d[::-1],
    5: lambda d: d.transpose(1, 0, 2),
    6: lambda d: np.rot90(d, 1),  # displayed by turning 90 degrees clockwise
    7: lambda d: d.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda d: np.rot90(d, -1),  # displayed by turning 90 degrees counter-clockwise
}


@pytest.mark.parametrize("order", ["II", "MM"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(orientation: int, order: str) -> None:
    upright = _pattern(48, 32)
    stored = np.ascontiguousarray(STORED[orientation](upright))
    data = _with_exif(encode_jpeg(stored, quality=95), orientation, order)
    assert read_header(data, "jpeg") == (stored.shape[1], stored.shape[0], orientation)
    img = decode_image(data, LIMITS)
    assert (img.width, img.height, img.orig_width, img.orig_height) == (48, 32, *stored.shape[1::-1])
    assert img.rgb.shape == (32, 48, 3) and img.rgb.flags.c_contiguous
    assert np.abs(img.rgb.astype(int) - upright).mean() < 4
    # OpenCV applies EXIF itself in IMREAD_COLOR mode: an independent oracle, same pixels exactly.
    assert np.array_equal(img.rgb, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB))


def test_orientation_counts_for_limits_and_broken_exif_is_ignored() -> None:
    tall = _with_exif(encode_jpeg(_pattern(150, 100)), 6, "MM")  # stored 150x100, shown 100x150
    limits = ImageLimits(max_width=120, max_height=200, either_orientation=False)
    assert decode_image(tall, limits).rgb.shape == (150, 100, 3)
    assert _error(_with_exif(encode_jpeg(_pattern(150, 100)), 1, "MM"), limits).reason == "too_large"
    jpeg = encode_jpeg(_pattern(40, 24))
    for bad in (b"Exif\x00\x00II*\x00\xff\xff\xff\x7f", b"Exif\x00\x00XX", b"Exif\x00\x00"):
        data = jpeg[:2] + b"\xff\xe1" + struct.pack(">H", 2 + len(bad)) + bad + jpeg[2:]
        assert decode_image(data, LIMITS).rgb.shape == (24, 40, 3)
    assert read_header(_with_exif(jpeg, 9, "II"), "jpeg")[2] == 1  # out of range: upright


# --- base64 ---------------------------------------------------------------------------------------


def test_base64_forms() -> None:
    data = bytes(range(256)) * 3 + b"\xfb\xff"  # hits '+', '/' and padding
    plain = base64.b64encode(data).decode()
    assert decode_base64_image(plain, 10_000) == data
    assert decode_base64_image("data:image/jpeg;base64," + plain, 10_000) == data
    assert decode_base64_image("  DATA:image/png;BASE64," + plain + "\n", 10_000) == data
    wrapped = "\r\n".join(plain[i : i + 76] for i in range(0, len(plain), 76))
    assert decode_base64_image(wrapped, 10_000) == data
    assert decode_base64_image(base64.urlsafe_b64encode(data).decode(), 10_000) == data
    assert decode_base64_image(plain.rstrip("="), 10_000) == data  # unpadded
    png = _grey_png(20, 20)
    assert decode_image(decode_base64_image(base64.b64encode(png).decode(), 10_000), LIMITS).width == 20


@pytest.mark.parametrize(
    "text",
    [
        "QUJD*RA==",
        "QUJD RA=x",
        "QU=JD",
        "QUJDR",
        "QUJDRA=",
        "QUJDRA===",
        "QUJDRA==QUJD",
        "data:image/png,QUJD",
        "QUJDé",
    ],
)
def test_base64_rejects(text: str) -> None:
    with pytest.raises(ImageError) as info:
        decode_base64_image(text, 1000)
    assert info.value.reason == "bad_base64"


def test_base64_size_is_checked_before_decoding() -> None:
    text = base64.b64encode(b"\x00" * 3001).decode()
    assert len(decode_base64_image(text, 3001)) == 3001
    with pytest.raises(ImageError) as info:
        decode_base64_image(text, 3000)
    assert info.value.reason == "too_large" and "3001 bytes" in str(info.value)
    with pytest.raises(ImageError) as info:
        decode_base64_image(" \n ", 3000)
    assert info.value.reason == "empty"


# --- encoding -------------------------------------------------------------------------------------


def test_encoders_round_trip_without_metadata() -> None:
    exif = _with_exif((DATA / "faces/obama2.jpg").read_bytes(), 6, "II")
    rgb = decode_image(exif, LIMITS).rgb
    out = encode_jpeg(rgb, quality=85)
    assert b"Exif" not in out and b"\xff\xe1" not in out[: out.index(b"\xff\xda")]
    again = decode_image(out, LIMITS)
    assert again.rgb.shape == rgb.shape and np.abs(again.rgb.astype(int) - rgb).mean() < 3
    assert np.array_equal(decode_image(encode_png(rgb), LIMITS).rgb, rgb)
    with pytest.raises(ValueError):
        encode_jpeg(rgb[:, :, 0])
