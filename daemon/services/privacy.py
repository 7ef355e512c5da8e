"""The blur API's use case: decode an upload, find every face, blur it at full resolution, encode.

Detection is the tiled high-recall detector of daemon/vision/privacy_detect.py; it runs on a copy
shrunk to ``privacy.max_side`` while the blur is applied to the full-resolution pixels. When workers
are idle, one image's tiles are spread over them (a single request on an idle 2-core device then uses
both cores); when the daemon is busy, a request takes one worker from decode to encode, so throughput
is not paid for with scheduling overhead.

The output is always a fresh JPEG written by OpenCV: no EXIF, GPS, maker notes or thumbnail survive,
whatever the upload carried. A bounded LRU cache keyed by the upload's sha256 (computed while it is
received) and the request's options answers a repeated image without any worker job. Each request
leaves one audit line (client, principal, image size, faces, time), never the image.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from daemon.config import PrivacyConfig
from daemon.errors import ImageError
from daemon.services.workers import InferencePool
from daemon.vision.blur import blur_regions, cover_region, draw_boxes, gaussian_kernel_size
from daemon.vision.engine import VisionEngine
from daemon.vision.image import ImageLimits, decode_image, encode_jpeg
from daemon.vision.privacy_detect import (
    Candidate,
    DetectPass,
    PassResult,
    PrivacyDetectSettings,
    confirm,
    detect_for_privacy,
    detection_image,
    merge_faces,
    plan_passes,
    run_passes,
    scale_faces,
    verifier,
    verify_passes,
)
from daemon.vision.types import Face

audit = logging.getLogger("facegate.privacy")

Output = Literal["image", "json"]
# JPEG's own limit on a side; the real bound on size is privacy.max_pixels.
MAX_SIDE_PIXELS = 65535
# A single pass is not worth a hand-over (~0.2 ms each; a pass costs ~6 ms).
MIN_PASSES_TO_SPLIT = 2


def detect_settings(
    config: PrivacyConfig,
    detector: str | None = None,
    accurate: bool = False,
    max_side: int | None = None,
    zoom: bool = False,
) -> PrivacyDetectSettings:
    """The detector settings of config section ``privacy`` (shared with the stream and video blur, which
    name their own detector and size: stream.detector/max_side, tasks.detector). accurate:
    privacy.accurate_max_side; max_side overrides both. zoom (the blur API): the small-face pass of
    privacy.zoom_side (accurate: privacy.accurate_zoom_side); the stream and videos have none."""
    return PrivacyDetectSettings(
        detector=config.detector if detector is None else detector,
        min_score=config.min_score,
        models=config.models,
        tiling=config.tiling,
        tile_size=config.tile_size,
        overlap=config.overlap,
        max_side=max_side or (config.accurate_max_side if accurate else config.max_side),
        max_fine_tiles=config.max_fine_tiles,
        short_min_score=config.short_min_score,
        tile_min_score=config.tile_min_score,
        verify=config.verify,
        sure_score=config.sure_score,
        verify_score=config.verify_score,
        zoom_side=(config.accurate_zoom_side if accurate else config.zoom_side) if zoom else 0,
        zoom_max_face=config.zoom_max_face,
        zoom_check_score=config.zoom_check_score,
    )


def split_passes(passes: Sequence[DetectPass], parts: int) -> list[list[DetectPass]]:
    """Passes dealt into ``parts`` lists of about equal cost (to run on several engines at once)."""
    parts = max(1, min(parts, len(passes)))
    buckets: list[list[DetectPass]] = [[] for _ in range(parts)]
    loads = [0] * parts
    for p in sorted(passes, key=lambda p: -p.cost):
        i = loads.index(min(loads))
        buckets[i].append(p)
        loads[i] += p.cost
    return buckets


def image_limits(config: PrivacyConfig, max_decode_bytes: int | None = None) -> ImageLimits:
    return ImageLimits(
        max_bytes=config.max_bytes,
        max_width=MAX_SIDE_PIXELS,
        max_height=MAX_SIDE_PIXELS,
        max_pixels=config.max_pixels,
        max_decode_bytes=max_decode_bytes,
    )


@dataclass(frozen=True)
class BlurOptions:
    """What the caller asked for. output "json" means detection only (no image is made)."""

    output: Output = "image"
    method: str = "gaussian"
    show_box: bool = False
    accurate: bool = False  # detect at privacy.accurate_max_side (slower, finds smaller faces)

    def cache_key(self, digest: str) -> tuple[str, ...]:
        if self.output == "json":
            return (digest, "json", str(self.accurate))
        return (digest, "image", self.method, str(self.show_box), str(self.accurate))


@dataclass(frozen=True)
class FaceReport:
    """One face as the API reports it: box (x, y, w, h) clipped to the image, score, kernel size."""

    bbox: tuple[int, int, int, int]
    confidence: float
    blur_radius: int


@dataclass(frozen=True)
class PrivacyResult:
    width: int
    height: int
    faces: tuple[FaceReport, ...]
    jpeg: bytes | None  # None for output "json"

    @property
    def size(self) -> int:
        return len(self.jpeg or b"") + 100 * len(self.faces) + 200


@dataclass(frozen=True)
class Answer:
    result: PrivacyResult
    elapsed_ms: float
    cached: bool


@dataclass(frozen=True)
class Caller:
    """Who asked (for the audit line)."""

    client: str
    principal: str
    operation: str


class ResultCache:
    """LRU cache bounded by entry count and total bytes. Used from the event loop only."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._entries: OrderedDict[tuple[str, ...], PrivacyResult] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, ...]) -> PrivacyResult | None:
        result = self._entries.get(key)
        if result is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return result

    def put(self, key: tuple[str, ...], result: PrivacyResult) -> None:
        if self._max_entries <= 0 or result.size > self._max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        self._entries[key] = result
        self._bytes += result.size
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._entries), "bytes": self._bytes, "hits": self.hits, "misses": self.misses}


@dataclass
class _Prepared:
    rgb: np.ndarray  # full resolution, RGB
    small: np.ndarray  # the detection image
    scale: float
    passes: list[DetectPass]


class PrivacyService:
    def __init__(
        self,
        config: PrivacyConfig,
        pool: InferencePool[VisionEngine],
        workers: int,
        max_decode_bytes: int | None = None,
    ) -> None:
        self.config = config
        self.settings = detect_settings(config, zoom=True)
        self.accurate_settings = detect_settings(config, accurate=True, zoom=True)
        self.limits = image_limits(config, max_decode_bytes)
        self.cache = ResultCache(config.cache_entries, config.cache_max_bytes)
        self._pool = pool
        self._workers = workers

    async def process(
        self, data: bytes | bytearray, digest: str, options: BlurOptions, caller: Caller
    ) -> Answer:
        """Blur (or only detect) the faces of an uploaded image; ImageError for a bad upload.

        digest is the upload's sha256 hex digest (the caller hashes while receiving).
        """
        started = time.perf_counter()
        # One client's uploads never answer another's: a shared hit would tell a caller that someone
        # else sent the same image (by its speed), so the cache is partitioned by who asks.
        key = (*options.cache_key(digest), caller.principal if caller.principal != "-" else caller.client)
        result = self.cache.get(key)
        cached = result is not None
        if result is None:
            try:
                result = await self._compute(data, options)
            except ImageError as exc:
                audit.info(
                    "%s client=%s principal=%s bytes=%d rejected=%s ms=%.1f",
                    caller.operation,
                    caller.client,
                    caller.principal,
                    len(data),
                    exc.reason,
                    (time.perf_counter() - started) * 1000,
                )
                raise
            self.cache.put(key, result)
        elapsed = (time.perf_counter() - started) * 1000
        audit.info(
            "%s client=%s principal=%s image=%dx%d bytes=%d faces=%d ms=%.1f cache=%s",
            caller.operation,
            caller.client,
            caller.principal,
            result.width,
            result.height,
            len(data),
            len(result.faces),
            elapsed,
            "hit" if cached else "miss",
        )
        return Answer(result, elapsed, cached)

    async def _compute(self, data: bytes | bytearray, options: BlurOptions) -> PrivacyResult:
        settings = self.accurate_settings if options.accurate else self.settings
        if not self._spread_worth_it():
            return await self._pool.run(lambda engine: self._whole_job(engine, data, options, settings))
        prepared = await self._pool.run(lambda engine: self._prepare(data, settings))
        results = await self._run_spread(prepared, prepared.passes, settings)
        candidates = merge_faces(results, settings)
        height, width = prepared.small.shape[:2]
        check_plan = verify_passes(candidates, width, height, verifier(settings))
        checks = await self._run_spread(prepared, check_plan, settings)
        return await self._pool.run(lambda engine: self._finish(prepared, candidates, checks, options))

    def _spread_worth_it(self) -> bool:
        stats = self._pool.stats()
        return self.config.parallel and self._workers > 1 and stats["pending"] < self._workers - 1

    async def _run_spread(
        self, prepared: _Prepared, passes: list[DetectPass], settings: PrivacyDetectSettings
    ) -> list[PassResult]:
        if not passes:
            return []
        idle = self._workers - self._pool.stats()["pending"]
        parts = split_passes(passes, max(1, idle)) if len(passes) >= MIN_PASSES_TO_SPLIT else [passes]

        def job(part: list[DetectPass]) -> Callable[[VisionEngine], list[PassResult]]:
            return lambda engine: run_passes(engine, prepared.small, part, settings)

        done = await asyncio.gather(*(self._pool.run(job(part)) for part in parts))
        return [result for part in done for result in part]

    # --- worker-thread jobs -------------------------------------------------------------------------

    def _prepare(self, data: bytes | bytearray, settings: PrivacyDetectSettings) -> _Prepared:
        decoded = decode_image(bytes(data), self.limits)
        small, scale = detection_image(decoded.rgb, settings.max_side)
        height, width = small.shape[:2]
        return _Prepared(decoded.rgb, small, scale, plan_passes(width, height, settings))

    def _whole_job(
        self,
        engine: VisionEngine,
        data: bytes | bytearray,
        options: BlurOptions,
        settings: PrivacyDetectSettings,
    ) -> PrivacyResult:
        rgb = decode_image(bytes(data), self.limits).rgb
        faces = detect_for_privacy(engine, rgb, settings)
        return render(rgb, faces, options, self.config.jpeg_quality)

    def _finish(
        self, prepared: _Prepared, candidates: list[Candidate], checks: list[PassResult], options: BlurOptions
    ) -> PrivacyResult:
        faces = scale_faces(confirm(candidates, checks), prepared.scale)
        rgb = prepared.rgb
        return render(rgb, faces, options, self.config.jpeg_quality)


def render(rgb: np.ndarray, faces: list[Face], options: BlurOptions, quality: int) -> PrivacyResult:
    """Reports for the faces and, for output "image", rgb blurred in place and encoded as JPEG."""
    height, width = rgb.shape[:2]
    reports = []
    regions = []
    for face in faces:
        region = cover_region(face.box, width, height)
        x1, y1, x2, y2 = face.clipped_box(width, height)
        kernel = (
            0 if region is None else gaussian_kernel_size(max(region[2] - region[0], region[3] - region[1]))
        )
        reports.append(FaceReport((x1, y1, x2 - x1, y2 - y1), round(face.score, 3), kernel))
        if region is not None:
            regions.append(region)
    jpeg = None
    if options.output == "image":
        blur_regions(rgb, regions, options.method)
        if options.show_box:
            draw_boxes(rgb, regions)
        jpeg = encode_jpeg(rgb, quality)
    return PrivacyResult(width, height, tuple(reports), jpeg)
