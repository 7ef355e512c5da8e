"""Facegate's configuration: every setting, its default and its meaning, in one place.

YAML (config/facegate.yaml documents the same keys) → frozen dataclasses, validated by
daemon/config_schema.py. Unknown keys and bad values fail at start naming the key path; environment
variables ``FACEGATE_<SECTION>_<KEY>`` override the file. Secrets never live here: tokens come from a
file (auth.token_file).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from daemon.config_schema import apply_env_overrides, build, section, setting
from daemon.errors import ConfigError
from daemon.ops.packaged import packaged_models_dir
from daemon.services.scores import DEFAULT_ANCHORS, ScoreMapping
from daemon.services.tokens import SCOPES

PACKAGE_MODELS_DIR = packaged_models_dir()  # daemon/models in a wheel, models/ in a checkout


@dataclass(frozen=True)
class ServerConfig:
    """HTTP listener and process-wide settings."""

    host: str = setting("127.0.0.1", "address to listen on; a non-loopback address requires a token file")
    port: int = setting(8080, "TCP port (0: any free port, logged at start)", min=0, max=65535)
    state_dir: str = setting("var", "directory for the library database, tokens and task files")
    shutdown_timeout: float = setting(10.0, "seconds in-flight requests get to finish on SIGTERM", min=0)
    max_request_bytes: int = setting(
        8 * 1024 * 1024, "largest request body accepted (a 4 MB image is ~5.6 MB as base64)", min=1024
    )
    access_log: bool = setting(True, "log one audit line per request (never the image)")


@dataclass(frozen=True)
class LimitsConfig:
    """Hostile clients and bad data: how long, how many and how much one client may take (OPERATIONS.md)."""

    header_timeout: float = setting(
        10.0,
        "seconds a connection has to send a complete request head (also the keep-alive idle time)",
        min=1,
    )
    body_timeout: float = setting(
        30.0, "seconds a request body may stall (no byte received) before the request is refused (408)", min=1
    )
    max_connections: int = setting(
        4096,
        "open connections at most; beyond, the oldest idle one is closed (clamped under the open-file limit)",
        min=16,
    )
    max_buffered_upload_bytes: int = setting(
        128 * 1024 * 1024,
        "request bytes held in memory by all uploads together; beyond, 503 with Retry-After",
        min=1024 * 1024,
    )
    max_decode_bytes: int = setting(
        384 * 1024 * 1024,
        "memory one image may need to decode, computed from its header (size, bit depth, channels): a "
        "16-bit RGBA 40 MP PNG needs ~1.5 GiB and is refused (413); sized for a 2 GB Pi with 2 workers",
        min=16 * 1024 * 1024,
    )
    integrity_check_seconds: float = setting(
        10.0,
        "time budget of the SQLite quick_check of the library and task databases at start (0: skip)",
        min=0,
    )


@dataclass(frozen=True)
class AuthConfig:
    """Who may call what: hashed tokens with scopes, rate limits, the IP allow-list, stream links."""

    token_store: str = setting(
        "",
        "hashed token store (mode 0600; managed with 'facegate token add|list|revoke'); empty: "
        "<state_dir>/tokens.json, created with one admin token on first start when listening on loopback",
    )
    token_file: str = setting(
        "",
        "old plain token file ('token' or 'name:token' per line), imported into the store at start with "
        "migrated_scopes and then removed; empty: <state_dir>/tokens",
    )
    migrated_scopes: list[str] = setting(
        ["library", "recognize", "privacy", "stream", "read"],
        "scopes of tokens imported from the plain token file (everything but admin)",
    )
    privacy_without_token: bool = setting(
        False, "serve the blur API (/api/v1/blur-faces, /process, /detect) without a token; loopback only"
    )
    allow_from: list[str] = setting(
        [], "client addresses or networks (CIDR) allowed to connect; empty: any (loopback is always allowed)"
    )
    max_failures: int = setting(
        10, "failed authentications per client within failure_window before it is answered 429", min=1
    )
    failure_window: float = setting(60.0, "seconds over which failed authentications are counted", min=1)
    expensive_per_minute: float = setting(
        300.0, "requests per minute per client to expensive routes (inference, uploads) before 429", min=1
    )
    expensive_burst: int = setting(30, "expensive requests a client may make at once", min=1)
    client_table_size: int = setting(
        4096, "clients tracked by the rate limiters (the least recently seen are forgotten)", min=16
    )
    stream_key_file: str = setting(
        "", "HMAC key of signed stream URLs (mode 0600, created if missing); empty: <state_dir>/stream.key"
    )
    signed_url_seconds: int = setting(
        300, "lifetime of a signed stream URL when the request names none", min=10
    )
    signed_url_max_seconds: int = setting(86400, "longest lifetime of a signed stream URL", min=10)


@dataclass(frozen=True)
class TlsConfig:
    """HTTPS. With cert_file and key_file set the daemon serves HTTPS only ('facegate cert' makes a pair)."""

    cert_file: str = setting("", "PEM certificate (chain) file; empty with key_file empty: plain HTTP")
    key_file: str = setting("", "PEM private key file (mode 0600)")
    self_signed_days: int = setting(3650, "validity of the certificates 'facegate cert' makes", min=1)
    plain_http: Literal["warn", "refuse"] = setting(
        "warn", "plain HTTP on a non-loopback address: warn loudly at start, or refuse to start"
    )


@dataclass(frozen=True)
class CorsConfig:
    """Cross-origin calls of the blur API (/api/v1/blur-faces, /process, /detect) from browser pages."""

    allowed_origins: list[str] = setting(
        [], "origins allowed, e.g. 'https://oa.example.com'; '*' for any (never with allow_credentials)"
    )
    allow_credentials: bool = setting(
        False, "let browsers send cookies/credentials (Access-Control-Allow-Credentials)"
    )
    max_age: int = setting(600, "seconds a browser may cache a preflight answer", min=0)


@dataclass(frozen=True)
class ModelsConfig:
    """Where the TFLite models are and how they run."""

    dir: str = setting("", "directory holding the .tflite files; empty: the models/ folder of the install")
    num_threads: int = setting(1, "TFLite CPU threads per interpreter", min=1, max=16)
    embedding: Literal["int8", "fp32"] = setting("int8", "embedding model variant")
    flip_average: bool = setting(
        True,
        "embed each face and its mirror image and average the two descriptors (fewer false rejections "
        "at the same false-accept rate, docs/SCORES.md; twice the embedding time)",
    )


@dataclass(frozen=True)
class WorkersConfig:
    """The bounded pool that runs all CPU work (decode, inference, blur, encode) off the event loop."""

    count: int = setting(2, "worker threads, each with its own interpreters", min=1, max=32)
    max_pending: int = setting(8, "jobs queued or running before the API answers 503", min=1)


@dataclass(frozen=True)
class DetectionConfig:
    """Face detection for enrolment and recognition (faces, compare, search, features)."""

    detectors: list[str] = setting(
        ["blazeface_short", "blazeface_full"],
        "detector backends tried in turn until one finds a face (daemon/vision/detectors/registry.py: "
        "blazeface_short, blazeface_full, yunet)",
    )
    short_min_score: float = setting(
        0.65,
        "score threshold of the short-range model (test set: faces ≥ 0.80, no-face images ≤ 0.50)",
        min=0,
        max=1,
    )
    full_min_score: float = setting(
        0.5,
        "score threshold of the full-range model (test set: faces ≥ 0.74, no-face images ≤ 0.26)",
        min=0,
        max=1,
    )


@dataclass(frozen=True)
class ScoresConfig:
    """Distance → score (0–100) mapping shared by compare, search, groups and the feature API."""

    anchors: list[list[float]] = setting(
        DEFAULT_ANCHORS,
        "piecewise-linear [distance, score] points, distance increasing from 0, score decreasing "
        "(docs/SCORES.md gives the data behind the defaults)",
    )


@dataclass(frozen=True)
class LibraryConfig:
    """The face library (SQLite in the state dir) and enrollment (POST /api/faces)."""

    database: str = setting("", "SQLite file; empty: <state_dir>/library.sqlite3")
    min_face_size: float = setting(64, "smallest face (box side, px) accepted for enrollment", min=0)
    max_yaw: float = setting(35, "largest |yaw| in degrees accepted for enrollment", min=0, max=90)
    max_pitch: float = setting(35, "largest |pitch| in degrees accepted for enrollment", min=0, max=90)
    max_roll: float = setting(30, "largest |roll| in degrees accepted for enrollment", min=0, max=180)
    max_blurness: float = setting(
        85, "largest blurness (0 sharp … 100; ordinary photos 5–40) accepted for enrollment", min=0, max=100
    )
    min_brightness: float = setting(40, "darkest mean face brightness (0–255) accepted", min=0, max=255)
    max_brightness: float = setting(220, "brightest mean face brightness (0–255) accepted", min=0, max=255)
    min_contrast: float = setting(18, "lowest face contrast (grey std) accepted", min=0)
    crop_jpeg_quality: int = setting(90, "JPEG quality of the stored face crops", min=10, max=100)
    max_image_bytes: int = setting(
        4 * 1024 * 1024,
        "largest image file for enrollment, compare, search and the feature API (the device API's 4 MB); "
        "to raise it, raise server.max_request_bytes too (base64 adds a third)",
        min=1024,
    )
    max_image_pixels: int = setting(
        50_000_000,
        "images beyond the documented 4096x2160 (phone photos: 4032x3024, 3061x4600) are accepted up to "
        "this many pixels",
        min=1_000_000,
    )
    max_decode_pixels: int = setting(
        16_777_216,
        "largest image decoded in memory (3 bytes a pixel); a larger JPEG is decoded reduced (1/2, 1/4, "
        "1/8), a larger PNG/BMP is refused",
        min=1_000_000,
    )


@dataclass(frozen=True)
class FeaturesConfig:
    """The feature-vector API (FEATURE_API.md)."""

    threshold: float = setting(
        0.7, "similarity (score / 100) at or above which is_same_person is true", min=0, max=1
    )


@dataclass(frozen=True)
class PrivacyConfig:
    """The blur API (PRIVACY_API.md) and the blurring shared with the stream pipeline."""

    detector: str = setting(
        "yunet", "detector backend of the blur API (blazeface_full, blazeface_short or yunet; see detection)"
    )
    min_score: float = setting(
        0.4,
        "detection threshold of privacy.detector for blurring (high recall; faces below sure_score are "
        "checked; see docs/BENCHMARKS.md)",
        min=0, max=1,
    )
    method: Literal["gaussian", "pixelate", "solid"] = setting("gaussian", "default blur method")
    jpeg_quality: int = setting(90, "JPEG quality of blurred output", min=10, max=100)
    max_bytes: int = setting(20 * 1024 * 1024, "largest upload accepted", min=1024)
    max_pixels: int = setting(40_000_000, "largest image (width × height) accepted", min=10_000)
    cache_entries: int = setting(64, "results kept in the LRU cache keyed by the image hash (0: off)", min=0)
    cache_max_bytes: int = setting(
        64 * 1024 * 1024, "largest total size of the cached results (blurred JPEGs)", min=0
    )
    models: Literal["full", "both"] = setting(
        "full", "detectors: the full-range model, or both (the short-range one on the whole frame too)"
    )
    tiling: Literal["none", "grid", "pyramid"] = setting(
        "grid",
        "small faces with a fixed-input detector (BlazeFace; YuNet sees the whole image): none (whole "
        "frame only), grid (whole frame + tiles of tile_size), pyramid (also tiles of 2×, 4× … tile_size)",
    )
    tile_size: int = setting(
        640, "tile side in pixels of the detection image; faces from ~tile_size/20 px are found", min=192
    )
    overlap: float = setting(0.25, "share of a tile overlapping its neighbour", min=0, max=0.75)
    max_side: int = setting(
        640,
        "larger images are shrunk to this longest side for detection (blur stays full size); the fast "
        "default of the blur API, see accurate_max_side",
        min=192,
    )
    accurate_max_side: int = setting(
        1920,
        "max_side of requests asking accurate=true, and of the stream and video tasks (small faces)",
        min=192,
    )
    zoom_side: int = setting(
        0,
        "small-face pass of a free-size detector (yunet): the detection image is also searched enlarged "
        "to this longest side (at most 2x; skipped below 1.25x), keeping faces under zoom_max_face; 0: off "
        "(the fast default)",
        min=0,
    )
    accurate_zoom_side: int = setting(
        2048, "zoom_side of requests asking accurate=true (a 1024-px photo is searched at 2048 px too)", min=0
    )
    zoom_max_face: int = setting(
        64, "the small-face pass keeps faces shorter than this (detection-image pixels)", min=0
    )
    zoom_check_score: float = setting(
        0.6,
        "score the zoomed check must reach to keep a face the small-face pass saw and nothing was sure of",
        min=0,
        max=1,
    )
    max_fine_tiles: int = setting(
        24, "small images are tiled finer (down to 192 px tiles) while the grid has at most this many", min=0
    )
    tile_min_score: float = setting(
        0.25, "detection threshold on tiles (their faces are checked, see verify)", min=0, max=1
    )
    verify: bool = setting(
        True, "check faces found only on tiles with a zoomed second run (textures fool the zoomed model)"
    )
    sure_score: float = setting(
        0.6,
        "a face found by tiles (or by a free-size detector) scoring at least this needs no check",
        min=0,
        max=1,
    )
    verify_score: float = setting(0.3, "score the zoomed check must reach to keep a face", min=0, max=1)
    short_min_score: float = setting(
        0.6, "threshold of the short-range model when models is 'both'", min=0, max=1
    )
    parallel: bool = setting(
        True, "spread one image's tiles over idle workers (lower latency when the daemon is not busy)"
    )


@dataclass(frozen=True)
class CameraConfig:
    """The camera source of the stream pipeline (docs/OPERATIONS.md). Empty source: no camera."""

    source: str = setting("", "'' (none), 'picamera2', '/dev/video0', 'rtsp://…', 'http://…' or 'file:PATH'")
    width: int = setting(1280, "capture width", min=16)
    height: int = setting(720, "capture height", min=16)
    fps: float = setting(25.0, "capture frame rate (file sources are paced to it)", min=0.1, max=240)
    loop: bool = setting(True, "restart a file source at its end")


@dataclass(frozen=True)
class StreamConfig:
    """The camera stream's fail-closed blur pipeline (docs/OPERATIONS.md, The fail-closed guarantee)."""

    method: Literal["gaussian", "pixelate", "solid"] = setting(
        "gaussian", "how faces in the stream are covered"
    )
    detector: str = setting("yunet", "detector backend of the stream (the other privacy.* settings apply)")
    max_side: int = setting(
        960,
        "frames are shrunk to this longest side for detection (720p: a 32-px face is seen at 24 px)",
        min=192,
    )
    detect_every: int = setting(
        1,
        "run detection on every Nth frame at most (1: every frame the detector keeps up with)",
        min=1,
        max=30,
    )
    max_detection_age: float = setting(
        0.25,
        "a frame is published only if detection ran on it or on a frame at most this many seconds away",
        min=0.01,
        max=2,
    )
    tiles_per_frame: int = setting(
        2,
        "tiles of the privacy detector's plan (privacy.tiling, tile_size) run per detection besides "
        "the whole frame, in turn; small faces are found once per tile cycle and held by the tracker "
        "(0: whole frame only)",
        min=0,
        max=64,
    )
    lookahead: int = setting(
        1,
        "frames a frame waits for later detections, so a face found a frame late is blurred in the "
        "frame before too (0: lowest latency)",
        min=0,
        max=5,
    )
    hold_seconds: float = setting(
        1.0, "a face stays blurred at its predicted, enlarged box this long after its last detection", min=0.1
    )
    stall_seconds: float = setting(
        1.5, "detector busy or silent this long: publish failsafe frames until it recovers", min=0.1
    )
    failsafe_style: Literal["blur", "black"] = setting(
        "blur", "failsafe frames (detector failed or stalled): the whole frame blurred to 16 px, or black"
    )
    jpeg_quality: int = setting(80, "JPEG quality of the MJPEG stream and snapshots", min=10, max=100)
    max_pending_frames: int = setting(8, "frames waiting for detection before the oldest is dropped", min=1)
    max_viewers: int = setting(
        8, "concurrent /api/stream.mjpg clients (all share one encode per frame)", min=1
    )
    record: bool = setting(False, "record the blurred stream to rotating files")
    record_dir: str = setting("", "directory of the recordings; empty: <state_dir>/recordings")
    record_segment_seconds: float = setting(300.0, "length of one recording file", min=1)
    record_keep: int = setting(12, "recording files kept (the oldest are deleted)", min=1)


@dataclass(frozen=True)
class TasksConfig:
    """Asynchronous jobs (POST /api/v1/tasks/blur-video): uploads, results, workers, retention."""

    dir: str = setting("", "directory of the task database, uploads and results; empty: <state_dir>/tasks")
    max_upload_bytes: int = setting(512 * 1024 * 1024, "largest video upload accepted", min=1024)
    keep_hours: float = setting(
        24.0, "finished tasks, their uploads and results are deleted this long after they end", min=0
    )
    workers: int = setting(1, "tasks processed at the same time (each with its own detector)", min=1, max=8)
    detector: str = setting("yunet", "detector backend of video tasks (the other privacy.* settings apply)")
    max_queued: int = setting(16, "tasks queued or running before a new one is refused (503)", min=1)
    max_attempts: int = setting(
        3, "a task interrupted by this many restarts is failed instead of resumed again", min=1
    )
    output: Literal["webm", "mp4", "avi"] = setting(
        "webm",
        "container of the results: webm (VP9, plays in browsers, BSD-licensed encoder), mp4 (H.264 via "
        "x264: GPL encoder, patent-licensed codec) or avi (Motion JPEG)",
    )


@dataclass(frozen=True)
class CheckinConfig:
    """The door: camera check-in with 1:N recognition and events (docs/OPERATIONS.md, Setting up a door)."""

    enabled: bool = setting(False, "run the door pipeline on the camera (needs camera.source)")
    camera_name: str = setting("door", "name of this camera in events")
    groups: list[str] = setting(["default"], "groups whose faces are granted (each with its own groupScore)")
    cooldown: float = setting(
        30.0, "one event per person per visit: seconds after a person was last seen before a new event", min=0
    )
    decision_timeout: float = setting(
        3.0,
        "seconds an undecided face is watched before it is 'unknown' (or denied, pending liveness)",
        min=0.1,
    )
    min_face_size: float = setting(80, "faces narrower than this (px) are tracked but not recognised", min=16)
    max_yaw: float = setting(
        35, "frames with a larger |yaw| (degrees) are not used for recognition", min=0, max=90
    )
    max_pitch: float = setting(35, "frames with a larger |pitch| are not used for recognition", min=0, max=90)
    max_blurness: float = setting(
        85,
        "frames blurrier than this (0 sharp … 100, the enrollment gate's scale) are not used",
        min=0,
        max=100,
    )
    unknown_min_frames: int = setting(
        2, "usable frames a face needs before it can be reported 'unknown' (glimpses give no event)", min=1
    )
    detector: Literal["short", "full"] = setting(
        "full", "BlazeFace model: full range (faces from ~1/20 of the frame) or short range (close faces)"
    )
    detect_fps: float = setting(15.0, "detection rate at most while a face is in view", min=0.5, max=60)
    idle_detect_fps: float = setting(4.0, "detection rate while no face is in view (CPU)", min=0.5, max=60)
    liveness: Literal["off", "passive", "passive+blink"] = setting(
        "off", "liveness a grant requires; a policy whose check is not installed refuses every grant"
    )
    liveness_min_score: float = setting(
        40.0,
        "passive and passive+blink: mean passive score (0–100) over liveness_frames frames to count as "
        "live (the device API's liveness.min_score has the same scale; docs/BENCHMARKS.md, the trade-off)",
        min=0,
        max=100,
    )
    liveness_frames: int = setting(
        3, "passive and passive+blink: passive scores averaged before deciding", min=1, max=30
    )
    snapshots: Literal["none", "known", "all"] = setting(
        "known", "store the face crop of events: none, known faces only (privacy default), or all"
    )
    snapshot_quality: int = setting(85, "JPEG quality of stored snapshots", min=10, max=100)
    keep_days: float = setting(30.0, "events older than this are deleted (0: keep by count only)", min=0)
    keep_events: int = setting(100_000, "at most this many events are kept (the oldest go first)", min=10)
    sse_max_clients: int = setting(8, "concurrent GET /api/events/stream clients", min=1, max=256)
    sse_queue: int = setting(256, "events queued per SSE client; a client this far behind is dropped", min=8)
    sse_heartbeat: float = setting(15.0, "seconds between SSE heartbeat comments", min=1, max=300)

    def __post_init__(self) -> None:
        if len(self.groups) > 64:  # the library holds at most 64 groups
            raise ValueError(f"groups: at most 64 groups, got {len(self.groups)}")
        for group in self.groups:
            if not 0 < len(group.encode()) <= 32:  # a groupId's limit (DEVICE_API.md)
                raise ValueError(f"groups: {group[:40]!r} is not a groupId (1-32 bytes)")


@dataclass(frozen=True)
class LoggingConfig:
    """Logging."""

    level: Literal["debug", "info", "warning", "error"] = setting("info", "log level")
    journald: Literal["auto", "always", "never"] = setting(
        "auto", "log to journald; auto: when started by systemd (JOURNAL_STREAM set)"
    )


@dataclass(frozen=True)
class OpsConfig:
    """Disk floor, library bundles (export/import) and backups (docs/OPERATIONS.md)."""

    min_free_mb: int = setting(
        256,
        "below this much free space (MiB) on the state dir's filesystem, writes are refused "
        "(device code 104930, HTTP 507) and reads keep working (0: no floor)",
        min=0,
    )
    disk_check_seconds: float = setting(5.0, "how often the free space is measured", min=0.5, max=600)
    bundle_key_file: str = setting(
        "",
        "HMAC-SHA256 key that signs and checks library bundles; empty: <state_dir>/bundle.key "
        "(created, mode 0600, on first use)",
    )
    max_import_bytes: int = setting(
        16 * 1024 * 1024 * 1024, "largest bundle POST /api/admin/library/import accepts", min=1024
    )


@dataclass(frozen=True)
class BlinkConfig:
    """Temporal liveness of a door visit (daemon/vision/blink.py): passive scores plus a blink."""

    time_limit: float = setting(
        3.0, "seconds from a track's first frame until it is denied: liveness", min=0.1
    )
    closed_ratio: float = setting(
        0.7,
        "an eye reads closed below this share of its open level (iris-model eye aspect ratio)",
        min=0.05,
        max=0.95,
    )
    open_ratio: float = setting(
        0.85, "an eye reads open again above this share of its open level", min=0.1, max=1
    )
    max_closed: float = setting(0.5, "seconds a blink may keep both eyes closed", min=0.01)
    min_open_samples: int = setting(3, "open-eye readings needed before a blink can start", min=1)
    baseline_samples: int = setting(10, "open-eye readings whose median is an eye's open level", min=1)
    min_presence: float = setting(
        0.5, "face-mesh presence below which a frame gives no eye reading", min=0, max=1
    )


@dataclass(frozen=True)
class UiConfig:
    """The web admin page served at /ui/."""

    enabled: bool = setting(True, "serve the web admin page at /ui/")
    session_hours: float = setting(8.0, "a signed-in page stays signed in this long", min=0.05, max=720)
    max_sessions: int = setting(64, "sessions kept at once (the oldest is dropped beyond)", min=1, max=10_000)


@dataclass(frozen=True)
class WebhookConfig:
    """One webhook receiver (docs/API.md, Webhooks)."""

    url: str = setting("", "http:// or https:// URL the events are POSTed to")
    name: str = setting("", "name in /health and the outbox; empty: host and path of the URL")
    secret_file: str = setting(
        "", "file holding the HMAC secret; empty: <state_dir>/webhook_secret, created on first start"
    )
    timeout: float = setting(5.0, "seconds one delivery may take", min=0.1, max=120)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {self.url!r}")


@dataclass(frozen=True)
class MqttConfig:
    """MQTT: events, availability (last will) and Home Assistant discovery (docs/API.md, MQTT)."""

    host: str = setting("", "broker host name or address; empty: no MQTT")
    port: int = setting(1883, "broker port", min=1, max=65535)
    username: str = setting("", "user name; empty: anonymous")
    password_file: str = setting("", "file holding the password (never in this file)")
    tls: bool = setting(False, "connect with TLS, checking the broker against the system CAs")
    topic_prefix: str = setting("facegate", "topics are <topic_prefix>/<device>/…")
    discovery: bool = setting(True, "publish Home Assistant discovery (a 'Last person' sensor, a 'Door')")
    discovery_prefix: str = setting("homeassistant", "Home Assistant's discovery prefix")
    keepalive: int = setting(30, "seconds between keep-alive pings", min=5, max=3600)
    timeout: float = setting(10.0, "seconds to connect, or for the broker to acknowledge a message", min=0.5)


@dataclass(frozen=True)
class RelayConfig:
    """The door relay: a GPIO line pulsed on every granted decision (docs/OPERATIONS.md, Door outputs)."""

    pin: str = setting("", "GPIO of the relay: '17' (BCM number), 'GPIO17' or 'BOARD11'; empty: no relay")
    active_high: bool = setting(True, "the relay closes when the line is high (false: when it is low)")
    pulse_seconds: float = setting(1.0, "how long the line stays active per grant", min=0.05, max=60)


@dataclass(frozen=True)
class OutputsConfig:
    """Door outputs: webhooks and MQTT from a durable outbox, the relay at once (docs/OPERATIONS.md)."""

    device: str = setting(
        "", "this device's name in MQTT topics and discovery (letters, digits, _ and -); empty: host name"
    )
    webhooks: list[WebhookConfig] = setting(
        [], "webhook receivers, each {url, name, secret_file, timeout} (docs/API.md, Webhooks)"
    )
    outbox_max_rows: int = setting(
        10000, "undelivered events kept per webhook/MQTT; beyond, the oldest are dropped (counted)", min=1
    )
    retry_initial_seconds: float = setting(1.0, "first retry delay after a failed delivery", min=0.01)
    retry_max_seconds: float = setting(300.0, "the retry delay doubles up to this", min=0.01)
    mqtt: MqttConfig = section(MqttConfig)
    relay: RelayConfig = section(RelayConfig)

    def __post_init__(self) -> None:
        if self.device and not all(c.isascii() and (c.isalnum() or c in "_-") for c in self.device):
            raise ValueError(f"device {self.device!r}: use letters, digits, _ and - only")


@dataclass(frozen=True)
class LivenessConfig:
    """Passive liveness (MiniFASNet) for device API 3.1/3.2 with livenessEnabled (docs/API.md)."""

    enabled: bool = setting(
        True, "load the liveness models; false: livenessEnabled requests get 104906 LIVENESS_NOT_AVAILABLE"
    )
    min_score: float = setting(
        40.0,
        "livenessScore (0–100) below which a face counts as a spoof (docs/BENCHMARKS.md)",
        min=0,
        max=100,
    )
    min_context: float = setting(
        1.8,
        "an image spanning fewer face sizes than this (a tight face crop) has too little context to judge: "
        "livenessScore 0, spoof",
        min=0,
    )


@dataclass(frozen=True)
class SecurityConfig:
    """Data at rest: the keys that seal the library's originals, crops and templates (docs/OPERATIONS.md)."""

    key_file: str = setting(
        "",
        "library key ring (AES-256-GCM, mode 0600); empty: $CREDENTIALS_DIRECTORY/facegate-library-keys "
        "when systemd passes that credential, else <state_dir>/library.keys (created on first start)",
    )
    rotate_batch: int = setting(
        500, "rows re-sealed per transaction by `facegate key rotate` (the daemon writes between)", min=1
    )


@dataclass(frozen=True)
class AuditConfig:
    """The audit trail of mutations (who changed what, when), in a SQLite file of its own."""

    database: str = setting("", "SQLite file of the audit records; empty: <state_dir>/audit.sqlite3")
    keep_days: float = setting(
        365.0, "records older than this many days are deleted (0: no age limit)", min=0
    )
    max_records: int = setting(
        100_000, "records kept at most, the oldest deleted first (0: no count limit)", min=0
    )


@dataclass(frozen=True)
class MetricsConfig:
    """Prometheus metrics at GET /metrics (docs/API.md, "Metrics")."""

    enabled: bool = setting(True, "serve GET /metrics (Prometheus text format) and count every request")
    public_on_loopback: bool = setting(
        False,
        "serve /metrics without a token (for a local scraper); only when server.host is a loopback "
        "address, otherwise the setting has no effect",
    )


@dataclass(frozen=True)
class ApiDocsConfig:
    """The OpenAPI document and its viewer (docs/API.md, "OpenAPI and /docs")."""

    enabled: bool = setting(
        True, "serve GET /openapi.json and the Swagger UI at /docs (no token: they hold no data)"
    )


@dataclass(frozen=True)
class Config:
    server: ServerConfig = section(ServerConfig)
    limits: LimitsConfig = section(LimitsConfig)
    auth: AuthConfig = section(AuthConfig)
    tls: TlsConfig = section(TlsConfig)
    cors: CorsConfig = section(CorsConfig)
    models: ModelsConfig = section(ModelsConfig)
    workers: WorkersConfig = section(WorkersConfig)
    detection: DetectionConfig = section(DetectionConfig)
    scores: ScoresConfig = section(ScoresConfig)
    library: LibraryConfig = section(LibraryConfig)
    features: FeaturesConfig = section(FeaturesConfig)
    privacy: PrivacyConfig = section(PrivacyConfig)
    camera: CameraConfig = section(CameraConfig)
    stream: StreamConfig = section(StreamConfig)
    tasks: TasksConfig = section(TasksConfig)
    logging: LoggingConfig = section(LoggingConfig)
    ops: OpsConfig = section(OpsConfig)
    blink: BlinkConfig = section(BlinkConfig)
    ui: UiConfig = section(UiConfig)
    checkin: CheckinConfig = section(CheckinConfig)
    outputs: OutputsConfig = section(OutputsConfig)
    liveness: LivenessConfig = section(LivenessConfig)
    security: SecurityConfig = section(SecurityConfig)
    audit: AuditConfig = section(AuditConfig)
    metrics: MetricsConfig = section(MetricsConfig)
    api_docs: ApiDocsConfig = section(ApiDocsConfig)

    def __post_init__(self) -> None:
        try:
            ScoreMapping(self.scores.anchors)
        except ValueError as exc:
            raise ConfigError(f"scores.anchors: {exc}") from None
        _check_access(self)
        check_detector_names(self)

    @property
    def state_path(self) -> Path:
        return Path(self.server.state_dir)

    @property
    def models_path(self) -> Path:
        return Path(self.models.dir) if self.models.dir else PACKAGE_MODELS_DIR

    def _state_file(self, configured: str, name: str) -> Path:
        """A file's configured path, or ``name`` in the state dir when the key is empty."""
        return Path(configured) if configured else self.state_path / name

    @property
    def database_path(self) -> Path:
        return self._state_file(self.library.database, "library.sqlite3")

    @property
    def bundle_key_path(self) -> Path:
        return self._state_file(self.ops.bundle_key_file, "bundle.key")

    @property
    def audit_path(self) -> Path:
        return Path(self.audit.database) if self.audit.database else self.state_path / "audit.sqlite3"

    @property
    def token_path(self) -> Path:
        return self._state_file(self.auth.token_file, "tokens")

    @property
    def token_store_path(self) -> Path:
        return self._state_file(self.auth.token_store, "tokens.json")

    @property
    def stream_key_path(self) -> Path:
        return self._state_file(self.auth.stream_key_file, "stream.key")

    @property
    def tasks_path(self) -> Path:
        return self._state_file(self.tasks.dir, "tasks")

def _check_access(config: Config) -> None:
    """Cross-key rules of auth, tls and cors (the checks need no file access)."""
    for scope in config.auth.migrated_scopes:
        if scope not in SCOPES:
            raise ConfigError(f"auth.migrated_scopes: unknown scope {scope!r} (one of {', '.join(SCOPES)})")
    for network in config.auth.allow_from:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(f"auth.allow_from: {network!r} is not an address or network") from None
    if bool(config.tls.cert_file) != bool(config.tls.key_file):
        raise ConfigError("tls: set both cert_file and key_file, or neither")
    if "*" in config.cors.allowed_origins and config.cors.allow_credentials:
        raise ConfigError("cors: the wildcard origin '*' cannot be combined with allow_credentials")
    for origin in config.cors.allowed_origins:
        if origin != "*" and (not origin.startswith(("http://", "https://")) or origin.rstrip("/") != origin):
            raise ConfigError(f"cors.allowed_origins: {origin!r} is not an origin like https://host[:port]")


def check_detector_names(config: Config) -> None:
    """Every detector a use names is a registered backend (ConfigError names the key and the known ones)."""
    from daemon.vision.detectors.registry import DETECTOR_BACKENDS  # vision imports config's layer-mates

    named = [("detection.detectors", n) for n in config.detection.detectors] + [
        ("privacy.detector", config.privacy.detector),
        ("stream.detector", config.stream.detector),
        ("tasks.detector", config.tasks.detector),
    ]
    if not config.detection.detectors:
        raise ConfigError("detection.detectors: name at least one detector")
    for key, name in named:
        if name not in DETECTOR_BACKENDS:
            raise ConfigError(f"{key}: unknown detector {name!r}; known: {', '.join(DETECTOR_BACKENDS)}")


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read, overlay the environment, validate. ConfigError names the offending key path."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    data = apply_env_overrides(data, Config, os.environ if environ is None else environ)
    return build(Config, data)


def with_overrides(config: Config, **sections: dict[str, Any]) -> Config:
    """A copy of config with some keys of some sections replaced, validated again (CLI flags, tests)."""
    data = asdict(config)
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return build(Config, data)
