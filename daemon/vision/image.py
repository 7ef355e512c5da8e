"""Turning untrusted image bytes into RGB arrays, with limits checked before any pixel is decoded.

Why the header parsing: a 40 kB PNG can claim 30000x30000 pixels and make a decoder allocate
gigabytes. So the type is sniffed from the magic bytes (never from a filename or Content-Type), the
dimensions are read from the file header, the limits are enforced, and only then is OpenCV asked to
decode. EXIF orientation is read by the same header walk and applied here, so the dimensions the
limits see and the pixels the detector sees agree (OpenCV is told to ignore orientation).
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import simplejpeg

from daemon.errors import ImageError

ImageKind = Literal["jpeg", "png", "bmp", "webp"]

ALL_KINDS: frozenset[str] = frozenset({"jpeg", "png", "bmp", "webp"})
_KIND_NAMES = {"jpeg": "JPEG", "png": "PNG", "bmp": "BMP", "webp": "WebP"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# BITMAPCOREHEADER, OS/2 v2 short, BITMAPINFOHEADER, V2, V3, OS/2 v2, V4, V5.
_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
# SOF0..SOF15 minus DHT (C4), JPG (C8) and DAC (CC), which share the range but are not frame headers.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0..7: no length field
_EXIF_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class ImageLimits:
    """What an endpoint accepts. The defaults suit any caller; see device_api() for enrollment."""

    max_bytes: int = 4 * 1024 * 1024
    min_side: tuple[int, int] = (1, 1)  # (min_width, min_height)
    max_width: int = 4096
    max_height: int = 2160
    either_orientation: bool = True  # 4096x2160 also accepted as 2160x4096 (portrait photos)
    kinds: frozenset[str] = field(default=ALL_KINDS)
    max_pixels: int | None = None
    # Beyond max_width × max_height (the documented guarantee), images are still accepted up to
    # oversize_pixels (width × height); None: refused. Whatever is accepted is decoded to at most
    # decode_pixels: a JPEG is decoded reduced (1/2, 1/4, 1/8: libjpeg scales while decoding, so the full
    # size never sits in memory); another type has no such decode and must fit decode_pixels as it is.
    oversize_pixels: int | None = None
    decode_pixels: int | None = None
    max_decode_bytes: int | None = None  # see decode_cost(); None: only the size limits bound it
    strict: bool = False  # a decoder warning (corrupt or truncated data) is an error: see check_jpeg_data

    @classmethod
    def device_api(cls) -> ImageLimits:
        """DEVICE_API.md "Images": JPEG/PNG/BMP, <= 4 MB, 100x100 .. 4096x2160 in either orientation."""
        return cls(min_side=(100, 100), kinds=frozenset({"jpeg", "png", "bmp"}), strict=True)


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image: rgb is HxWx3 uint8 RGB, C-contiguous, with EXIF orientation applied.

    width/height describe rgb (after orientation); orig_width/orig_height are the stored
    dimensions from the file header (they differ for EXIF orientations 5..8). scale is 1, or 2, 4 or 8
    when a large JPEG was decoded reduced: a pixel of rgb then covers scale × scale source pixels, and
    coordinates found in rgb are multiplied by scale to describe the uploaded image.
    """

    rgb: np.ndarray
    kind: ImageKind
    width: int
    height: int
    orig_width: int
    orig_height: int
    scale: int = 1

    @property
    def source_size(self) -> tuple[int, int]:
        """(width, height) of the uploaded image once upright, at full resolution."""
        if self.scale == 1:
            return self.width, self.height
        swapped = (self.width > self.height) != (self.orig_width > self.orig_height)
        return (self.orig_height, self.orig_width) if swapped else (self.orig_width, self.orig_height)

    def to_source(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A (x1, y1, x2, y2) box in rgb's pixels as pixels of the uploaded image, clipped to it."""
        if self.scale == 1:
            return box
        w, h = self.source_size
        x1, y1, x2, y2 = (v * self.scale for v in box)
        return min(x1, w), min(y1, h), min(x2, w), min(y2, h)


def sniff_type(data: bytes) -> ImageKind | None:
    """The image type from the magic bytes, or None when it is none of the accepted types."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(_PNG_SIGNATURE):
        return "png"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    # "BM" alone is too weak (plain text can start with it): also require a known DIB header size.
    if data.startswith(b"BM") and int.from_bytes(data[14:18], "little") in _BMP_HEADER_SIZES:
        return "bmp"
    return None


def _need(data: bytes, end: int, what: str) -> None:
    if len(data) < end:
        raise ImageError(f"image is truncated: the {what} is incomplete", "corrupt")


def read_header(data: bytes, kind: ImageKind) -> tuple[int, int, int]:
    """(width, height, exif_orientation) from the file header, without decoding any pixels.

    width/height are as stored; orientation is 1..8 (always 1 except for JPEG with EXIF).
    """
    reader = {"jpeg": _read_jpeg, "png": _read_png, "bmp": _read_bmp, "webp": _read_webp}.get(kind)
    if reader is None:
        raise ImageError(f"unsupported image type {kind!r}", "unsupported_type")
    width, height, orientation = reader(data)
    if width <= 0 or height <= 0:
        raise ImageError(f"{_KIND_NAMES[kind]} header gives an empty size {width}x{height}", "corrupt")
    return width, height, orientation


def pixel_format(data: bytes, kind: ImageKind) -> tuple[int, int]:
    """(channels, bytes per sample) the decoder will produce, from the header: PNG's colour type and
    bit depth (16-bit samples are 2 bytes; a palette may expand to RGBA); JPEG and BMP decode to
    8-bit RGB; WebP may carry alpha. Call after read_header (which checks the header is there)."""
    if kind == "png":
        depth, colour = data[24], data[25]
        channels = {0: 1, 2: 3, 3: 4, 4: 2, 6: 4}.get(colour, 4)
        return channels, 2 if depth == 16 else 1
    if kind == "webp":
        return 4, 1
    return 3, 1


def decode_cost(width: int, height: int, channels: int, sample_bytes: int) -> int:
    """Peak bytes decode_image holds for one image: the decoder's output, its 8-bit copy (16-bit
    input), the RGB array, and the working copies: alpha compositing (16-bit RGB, the alpha and its
    temporaries, the 8-bit result: 16 bytes a pixel) or the orientation (3 bytes a pixel)."""
    pixels = width * height
    decoded = pixels * channels * sample_bytes
    eight_bit = pixels * channels if sample_bytes > 1 else 0
    working = pixels * (16 if channels in (2, 4) else 3)
    return decoded + eight_bit + pixels * 3 + working


def check_decode_budget(data: bytes, kind: ImageKind, budget: int, scale: int = 1) -> int:
    """Refuse, from the header alone, an image whose decoding would hold more than ``budget`` bytes
    (ImageError "too_much_memory"): a small 16-bit RGBA PNG of 40 MP would need ~1.5 GiB. ``scale``: a
    JPEG decoded reduced (1/2, 1/4, 1/8) costs its reduced size. Returns the cost."""
    width, height, _ = read_header(data, kind)
    width, height = -(-width // scale), -(-height // scale)
    channels, sample_bytes = pixel_format(data, kind)
    cost = decode_cost(width, height, channels, sample_bytes)
    if cost > budget:
        depth = f"{8 * sample_bytes}-bit, {channels} channel{'s' if channels > 1 else ''}"
        raise ImageError(
            f"image is {width}x{height} ({depth}): decoding needs {cost / 2**20:.0f} MiB, "
            f"the limit is {budget / 2**20:.0f} MiB",
            "too_much_memory",
        )
    return cost


def read_dimensions(data: bytes, kind: ImageKind) -> tuple[int, int]:
    """(width, height) as stored in the file header, without decoding any pixels."""
    return read_header(data, kind)[:2]


def oriented_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """The displayed (width, height) once the EXIF orientation is applied (5..8 swap the axes)."""
    return (height, width) if orientation >= 5 else (width, height)


def _read_jpeg(data: bytes) -> tuple[int, int, int]:
    if not data.startswith(b"\xff\xd8"):
        raise ImageError("not a JPEG file (no start-of-image marker)", "corrupt")
    orientation, pos = 1, 2
    while True:
        _need(data, pos + 2, "JPEG marker")
        if data[pos] != 0xFF:
            raise ImageError(f"JPEG header is garbled: expected a marker at byte {pos}", "corrupt")
        while pos + 1 < len(data) and data[pos + 1] == 0xFF:  # fill bytes before a marker
            pos += 1
        _need(data, pos + 2, "JPEG marker")
        marker = data[pos + 1]
        pos += 2
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA, 0xD8, 0x00):  # EOI, SOS, a second SOI, or a stuffed byte
            raise ImageError("JPEG has no frame header before its image data", "corrupt")
        _need(data, pos + 2, "JPEG segment length")
        length = struct.unpack_from(">H", data, pos)[0]
        if length < 2:
            raise ImageError(f"JPEG header is garbled: segment length {length}", "corrupt")
        _need(data, pos + length, "JPEG segment")
        segment = data[pos + 2 : pos + length]
        if marker in _JPEG_SOF:
            if len(segment) < 6:
                raise ImageError("JPEG frame header is too short", "corrupt")
            height, width = struct.unpack_from(">HH", segment, 1)
            if height == 0:
                raise ImageError("JPEG defines its height later in the stream (DNL): unsupported", "corrupt")
            return width, height, orientation
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00") and orientation == 1:
            orientation = _exif_orientation(segment[6:])
        pos += length


def _exif_orientation(tiff: bytes) -> int:
    """Tag 0x0112 of IFD0 in a TIFF block. Broken EXIF is common in camera files and must not make
    an otherwise valid photo unusable, so anything unreadable here counts as "no rotation" (1)."""
    if tiff[:4] == b"II*\x00":
        order = "<"
    elif tiff[:4] == b"MM\x00*":
        order = ">"
    else:
        return 1
    try:
        (ifd,) = struct.unpack_from(order + "I", tiff, 4)
        (count,) = struct.unpack_from(order + "H", tiff, ifd)
        for i in range(count):
            tag, typ, n = struct.unpack_from(order + "HHI", tiff, ifd + 2 + 12 * i)
            if tag == _EXIF_ORIENTATION_TAG and typ == 3 and n >= 1:  # SHORT, left-justified
                (value,) = struct.unpack_from(order + "H", tiff, ifd + 2 + 12 * i + 8)
                return value if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1


def _read_png(data: bytes) -> tuple[int, int, int]:
    _need(data, 33, "PNG header")
    length, chunk_type = struct.unpack_from(">I4s", data, 8)
    if chunk_type != b"IHDR" or length != 13:
        raise ImageError("PNG header is garbled: the first chunk is not IHDR", "corrupt")
    if zlib.crc32(data[12:29]) != struct.unpack_from(">I", data, 29)[0]:
        raise ImageError("PNG header is garbled: IHDR checksum mismatch", "corrupt")
    return *struct.unpack_from(">II", data, 16), 1


def _read_bmp(data: bytes) -> tuple[int, int, int]:
    _need(data, 18, "BMP header")
    header_size = struct.unpack_from("<I", data, 14)[0]
    if header_size == 12:  # BITMAPCOREHEADER (OS/2 1.x): unsigned 16-bit sizes
        _need(data, 22, "BMP header")
        return *struct.unpack_from("<HH", data, 18), 1
    if header_size not in _BMP_HEADER_SIZES:
        raise ImageError(f"BMP header is garbled: unknown header size {header_size}", "corrupt")
    _need(data, 26, "BMP header")
    width, height = struct.unpack_from("<ii", data, 18)
    if width <= 0 or height in (0, -(2**31)):
        raise ImageError(f"BMP header is garbled: size {width}x{height}", "corrupt")
    return width, abs(height), 1  # a negative height marks a top-down bitmap


def _read_webp(data: bytes) -> tuple[int, int, int]:
    _need(data, 30, "WebP header")
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: frame tag (3 bytes), start code, 14-bit sizes
        if data[23:26] != b"\x9d\x01\x2a":
            raise ImageError("WebP header is garbled: missing VP8 start code", "corrupt")
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF, 1
    if chunk == b"VP8L":  # lossless: signature 0x2f, then 14-bit width-1 and height-1
        if data[20] != 0x2F:
            raise ImageError("WebP header is garbled: bad VP8L signature", "corrupt")
        (bits,) = struct.unpack_from("<I", data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 1
    if chunk == b"VP8X":  # extended: 24-bit canvas width-1 and height-1 after flags + reserved
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1, 1
    raise ImageError(f"WebP header is garbled: unknown chunk {chunk!r}", "corrupt")


def _check_limits(width: int, height: int, limits: ImageLimits) -> None:
    """Limits apply to the displayed size (after orientation)."""
    max_w, max_h = limits.max_width, limits.max_height
    fits = width <= max_w and height <= max_h
    if limits.either_orientation:
        fits = fits or (width <= max_h and height <= max_w)
    if not fits and (limits.oversize_pixels is None or width * height > limits.oversize_pixels):
        either = " (in either orientation)" if limits.either_orientation else ""
        beyond = "" if limits.oversize_pixels is None else f", or {limits.oversize_pixels} pixels in all"
        raise ImageError(
            f"image is {width}x{height}, the limit is {max_w}x{max_h}{either}{beyond}", "too_large"
        )
    if limits.max_pixels is not None and width * height > limits.max_pixels:
        raise ImageError(
            f"image is {width}x{height} = {width * height} pixels, the limit is {limits.max_pixels}",
            "too_many_pixels",
        )
    min_w, min_h = limits.min_side
    if width < min_w or height < min_h:
        raise ImageError(f"image is {width}x{height}, the minimum is {min_w}x{min_h}", "too_small")


def _too_many_bytes(size: int, limit: int) -> ImageError:
    return ImageError(
        f"image is {size} bytes, the limit is {limit} bytes ({limit / 2**20:.1f} MB)", "too_large"
    )


def decode_image(data: bytes, limits: ImageLimits) -> DecodedImage:
    """Check, then decode, untrusted image bytes into an upright RGB array.

    Order matters: size, type, header dimensions and limits are all checked before any pixel
    is decoded, so a hostile file costs a few header bytes of work.
    """
    if not data:
        raise ImageError("image is empty", "empty")
    if len(data) > limits.max_bytes:
        raise _too_many_bytes(len(data), limits.max_bytes)
    kind = sniff_type(data)
    if kind is None or kind not in limits.kinds:
        what = (
            "not a supported image" if kind is None else f"{_KIND_NAMES[kind]} images are not accepted here"
        )
        accepted = ", ".join(_KIND_NAMES[k] for k in sorted(limits.kinds))
        raise ImageError(f"{what} (accepted: {accepted})", "unsupported_type")
    orig_w, orig_h, orientation = read_header(data, kind)
    width, height = oriented_size(orig_w, orig_h, orientation)
    _check_limits(width, height, limits)
    scale = _reduction(orig_w, orig_h, kind, limits.decode_pixels)
    if limits.max_decode_bytes is not None:
        check_decode_budget(data, kind, limits.max_decode_bytes, scale)
    if limits.strict and kind == "jpeg":
        check_jpeg_data(data)
    rgb = _decode_pixels(data, kind, scale)
    if rgb.shape[:2] != (-(-orig_h // scale), -(-orig_w // scale)):
        # The decoder saw other dimensions than the header we checked: never trust such a file.
        raise ImageError(f"{_KIND_NAMES[kind]} image is corrupt: header and data disagree", "corrupt")
    rgb = np.ascontiguousarray(apply_orientation(rgb, orientation))
    out_h, out_w = rgb.shape[:2]
    return DecodedImage(rgb, kind, out_w, out_h, orig_w, orig_h, scale)


def check_jpeg_data(data: bytes) -> None:
    """ImageError "corrupt" when libjpeg-turbo reports a warning (bad Huffman code, premature end,
    extraneous bytes …) while reading every coefficient. OpenCV decodes such files silently into
    damaged pixels; an enrolled template must not come from them. Decoded at 1/8 scale, in grey: the
    whole entropy-coded data is read at ~1/64 of the memory. JPEG has no checksum: a flipped bit that
    still decodes cleanly cannot be told from a real image."""
    try:
        simplejpeg.decode_jpeg(data, colorspace="GRAY", min_factor=8, strict=True)
    except ValueError as exc:
        raise ImageError(f"JPEG image is corrupt: {exc}", "corrupt") from None


# The scale bits alone (IMREAD_REDUCED_GRAYSCALE_N); the colour order comes from IMREAD_COLOR_RGB.
_REDUCED_JPEG_FLAGS = {
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


def _reduction(width: int, height: int, kind: ImageKind, decode_pixels: int | None) -> int:
    """1, or the smallest JPEG scale-on-decode factor that brings the image within decode_pixels."""
    if decode_pixels is None or width * height <= decode_pixels:
        return 1
    if kind == "jpeg":
        for factor in _REDUCED_JPEG_FLAGS:
            if -(-width // factor) * -(-height // factor) <= decode_pixels:
                return factor
    raise ImageError(
        f"image is {width}x{height} = {width * height} pixels: more than the {decode_pixels} this device "
        f"decodes{'' if kind == 'jpeg' else ' (only JPEG can be decoded reduced)'}",
        "too_large",
    )


def _decode_pixels(data: bytes, kind: ImageKind, scale: int = 1) -> np.ndarray:
    """HxWx3 uint8 RGB as stored (orientation not applied); a JPEG reduced by scale (1, 2, 4, 8)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    if scale != 1:
        flags = _REDUCED_JPEG_FLAGS[scale] | cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
    elif kind in ("jpeg", "bmp"):
        # JPEG has no alpha; BMP alpha (32 bpp) is an unused byte in most writers, so ignore it.
        flags = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
    else:
        flags = cv2.IMREAD_UNCHANGED  # keeps 16 bits and alpha so they are converted properly here
    try:
        img = cv2.imdecode(buf, flags)
    except cv2.error as exc:  # OpenCV raises rather than returning None for some broken files
        raise ImageError(f"{_KIND_NAMES[kind]} image is corrupt", "corrupt") from exc
    if img is None or img.size == 0:
        raise ImageError(f"{_KIND_NAMES[kind]} image is corrupt or truncated", "corrupt")
    if img.dtype == np.uint16:  # scale with rounding (65535 -> 255), straight to 8 bits (no wider copy)
        img = cv2.convertScaleAbs(img, alpha=255 / 65535)
    elif img.dtype != np.uint8:
        raise ImageError(f"{_KIND_NAMES[kind]} image has unsupported sample type {img.dtype}", "corrupt")
    if flags != cv2.IMREAD_UNCHANGED:
        return img
    if img.ndim == 2:
        img = img[:, :, None]
    channels = img.shape[2]
    if channels <= 2:  # grey, grey + alpha
        rgb = cv2.cvtColor(np.ascontiguousarray(img[:, :, 0]), cv2.COLOR_GRAY2RGB)
    else:  # BGR, BGRA (palette PNGs arrive here already expanded by libpng)
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB if channels == 3 else cv2.COLOR_BGRA2RGB)
    return rgb if channels in (1, 3) else _composite_on_white(rgb, img[:, :, -1])


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Flatten transparency onto white.

    Why composite rather than drop alpha: the RGB under a transparent pixel is arbitrary (often
    black, sometimes leftover content nobody sees), so dropping alpha would detect faces in pixels
    no viewer shows and turn transparent logos into black boxes. White is what documents and web
    pages put behind a transparent image, and the JPEG we send back cannot carry alpha anyway.
    """
    if alpha.min() == 255:
        return rgb
    a = alpha.astype(np.uint16)[:, :, None]
    # c*a + 255*(255-a) <= 65025 fits uint16; +127 rounds the division. In place: 4K RGBA stays small.
    out = rgb.astype(np.uint16)
    out *= a
    out += 255 * (255 - a) + 127
    out //= 255
    return out.astype(np.uint8)


# EXIF orientation -> the operation that turns stored pixels into displayed pixels (1: none).
_ORIENT_OPS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: cv2.flip(a, 1),  # mirrored left-right
    3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
    4: lambda a: cv2.flip(a, 0),  # mirrored top-bottom
    5: cv2.transpose,  # row 0 is the left column
    6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),  # row 0 is the right column
    7: lambda a: cv2.flip(cv2.transpose(a), -1),  # row 0 is the right column, read upwards
    8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),  # row 0 is the left column, read upwards
}


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels into displayed pixels for an EXIF orientation value (1..8)."""
    op = _ORIENT_OPS.get(orientation)
    return img if op is None else op(img)


_DATA_URL = re.compile(r"data:([^,]*),", re.IGNORECASE)
_WHITESPACE = b" \t\r\n\f\v"
_B64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_"


def decode_base64_image(text: str, max_bytes: int) -> bytes:
    """Bytes from plain base64 or a data URL; whitespace tolerated, URL-safe alphabet accepted.

    The decoded size is checked against max_bytes before decoding. The data URL's media type is
    ignored on purpose: the type is sniffed from the bytes later.
    """
    start = len(text) - len(text.lstrip())
    match = _DATA_URL.match(text, start)
    if match:
        if not match.group(1).lower().rstrip().endswith(";base64"):
            raise ImageError("data URL is not base64-encoded (expected ';base64,')", "bad_base64")
        start = match.end()
    if not text.isascii():
        raise ImageError("image is not valid base64: it contains non-ASCII characters", "bad_base64")
    raw = text[start:].encode("ascii")
    raw = raw.translate(None, _WHITESPACE)
    if not raw:
        raise ImageError("image is empty", "empty")
    body = raw.rstrip(b"=")
    pad = len(raw) - len(body)
    bad = body.translate(None, _B64_CHARS)
    if bad:
        char = chr(bad[0])
        where = "'=' inside the data" if char == "=" else f"character {char!r}"
        raise ImageError(f"image is not valid base64: unexpected {where}", "bad_base64")
    if len(body) % 4 == 1 or pad > 2 or (pad and len(raw) % 4):
        raise ImageError("image is not valid base64: wrong length or padding", "bad_base64")
    size = len(body) * 3 // 4
    if size > max_bytes:
        raise _too_many_bytes(size, max_bytes)
    if b"-" in body or b"_" in body:
        body = body.translate(bytes.maketrans(b"-_", b"+/"))
    body += b"=" * (-len(body) % 4)
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as exc:  # unreachable after the checks above, kept as the last guard
        raise ImageError(f"image is not valid base64: {exc}", "bad_base64") from exc


def _encode(ext: str, rgb: np.ndarray, params: list[int]) -> bytes:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 RGB array, got {rgb.shape} {rgb.dtype}")
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"{ext} encoding failed")
    return buf.tobytes()


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB array. OpenCV writes only a JFIF header: no EXIF, GPS or thumbnail."""
    return _encode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB array (lossless; OpenCV adds no metadata chunks)."""
    return _encode(".png", rgb, [])
