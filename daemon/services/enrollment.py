"""Registering a face (device API 1.1): decode, find the largest face, quality gate, embed, store.

The CPU part (base64, image decoding, detection, alignment, embedding, the JPEG crop, the MD5 of the
original) runs as one job in the inference pool; only the finished row goes to the library thread,
where one transaction stores the original, the crop, the template and the `default` binding.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace

import numpy as np

from daemon.config import LibraryConfig
from daemon.errors import ImageError
from daemon.library.ids import image_id_from_bytes
from daemon.library.types import FaceRecord
from daemon.services.face_errors import BadQuality, ModelMismatch, NoFaceDetected
from daemon.services.library_service import LibraryService, NewFace
from daemon.services.workers import InferencePool
from daemon.vision.blur import cover_region
from daemon.vision.engine import FaceAnalysis, VisionEngine
from daemon.vision.image import (
    DecodedImage,
    ImageLimits,
    decode_base64_image,
    decode_image,
    encode_jpeg,
)
from daemon.vision.quality import QualityThresholds, failed_checks

CAMERA_JPEG_QUALITY = 95  # the stored original of a face enrolled from the camera


@dataclass(frozen=True)
class EnrollRequest:
    """A validated registration request; ``image`` is still the base64 text (or data URL)."""

    image: str
    description: str = ""
    image_md5: str = ""  # empty: the imageId is derived from the image bytes
    name: str = ""
    gender: str = ""


@dataclass(frozen=True)
class EnrollmentSettings:
    limits: ImageLimits
    thresholds: QualityThresholds
    crop_quality: int

    @classmethod
    def from_config(cls, library: LibraryConfig, max_decode_bytes: int | None = None) -> EnrollmentSettings:
        thresholds = QualityThresholds(
            min_size=library.min_face_size,
            max_yaw=library.max_yaw,
            max_pitch=library.max_pitch,
            max_roll=library.max_roll,
            max_blurness=library.max_blurness,
            min_brightness=library.min_brightness,
            max_brightness=library.max_brightness,
            min_contrast=library.min_contrast,
        )
        return cls(device_limits(library, max_decode_bytes), thresholds, library.crop_jpeg_quality)


def device_limits(library: LibraryConfig, max_decode_bytes: int | None = None) -> ImageLimits:
    """DEVICE_API.md "Images" (JPEG/PNG/BMP, 100×100 … 4096×2160 in either orientation) as the
    guarantee, plus what config admits beyond it: larger photos up to library.max_image_pixels, decoded
    within library.max_decode_pixels, files up to library.max_image_bytes; and the decoded-memory
    budget (limits.max_decode_bytes: bit depth and channels counted from the header)."""
    return replace(
        ImageLimits.device_api(),
        max_bytes=library.max_image_bytes,
        oversize_pixels=library.max_image_pixels,
        decode_pixels=library.max_decode_pixels,
        max_decode_bytes=max_decode_bytes,
    )


class EnrollmentService:
    def __init__(
        self, pool: InferencePool[VisionEngine], library: LibraryService, settings: EnrollmentSettings
    ) -> None:
        self._pool = pool
        self._library = library
        self._settings = settings

    async def enroll(self, request: EnrollRequest) -> FaceRecord:
        """Register the largest face of the image, bound to `default`.

        Raises ImageError (bad image), NoFaceDetected, BadQuality, ImageAlreadyExists,
        ModelMismatch, Overloaded. Nothing is stored unless everything succeeded.
        """
        settings, model_id = self._settings, self._library.model_id
        face = await self._pool.run(lambda engine: prepare_face(engine, request, settings, model_id))
        return await self._library.add_face(face)

    async def enroll_frame(self, rgb: np.ndarray, name: str, description: str, gender: str) -> FaceRecord:
        """Register the largest face of a camera frame (never sent anywhere: encoded here as the
        stored original, exactly as an uploaded photo would be). Same errors as enroll()."""
        settings, model_id = self._settings, self._library.model_id

        def job(engine: VisionEngine) -> NewFace:
            text = base64.b64encode(encode_jpeg(rgb, CAMERA_JPEG_QUALITY)).decode("ascii")
            request = EnrollRequest(image=text, description=description, name=name, gender=gender)
            return prepare_face(engine, request, settings, model_id)

        return await self._library.add_face(await self._pool.run(job))


def analyze_field(
    engine: VisionEngine, text: str, field: str, limits: ImageLimits
) -> tuple[bytes, DecodedImage, FaceAnalysis]:
    """Bytes, decoded image and largest face of one base64 image field (enrollment and recognition).

    ImageError and NoFaceDetected name the field, so a request with two images says which one failed.
    """
    try:
        data = decode_base64_image(text, limits.max_bytes)
        image = decode_image(data, limits)
    except ImageError as exc:
        raise ImageError(f"{field}: {exc}", exc.reason) from exc
    analysis = engine.analyze_largest(image.rgb)
    if analysis is None:
        raise NoFaceDetected(field)
    return data, image, analysis


def prepare_face(
    engine: VisionEngine, request: EnrollRequest, settings: EnrollmentSettings, model_id: str
) -> NewFace:
    """The pool job: everything of a registration but the database write."""
    data, image, analysis = analyze_field(engine, request.image, "image", settings.limits)
    failed = failed_checks(analysis.quality, settings.thresholds)
    if failed:
        raise BadQuality(failed)
    if engine.embedder.model_id != model_id:
        raise ModelMismatch(engine.embedder.model_id, model_id)
    rect = analysis.face.clipped_box(image.width, image.height)
    region = cover_region(analysis.face.box, image.width, image.height) or rect
    x1, y1, x2, y2 = region
    crop = np.ascontiguousarray(image.rgb[y1:y2, x1:x2])
    width, height = image.source_size
    return NewFace(
        image_id=request.image_md5 or image_id_from_bytes(data),
        original=data,
        kind=image.kind,
        width=width,
        height=height,
        description=request.description,
        name=request.name,
        gender=request.gender,
        rect=image.to_source(rect),
        crop_jpeg=encode_jpeg(crop, settings.crop_quality),
        template=np.asarray(analysis.embedding, dtype=np.float32).copy(),
        model_id=model_id,
        quality=analysis.quality.quality,
    )
