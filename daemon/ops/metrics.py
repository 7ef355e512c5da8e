"""Prometheus metrics: one registry per app (tests build many apps; no global default registry).

Two kinds of metric live here:

- **Instrumented** as things happen: HTTP requests (count and latency per route pattern), auth
  failures, inference time per model (observed from the worker threads; prometheus-client's metrics
  are thread-safe).
- **Collected** at scrape time from the ``stats()`` / ``info()`` dicts the components already keep for
  /health and /api/stream/info: the worker pool, the library, the camera pipeline, the disk floor. A
  source is a callable returning such a dict (or None when the component is absent), so this module
  imports nothing of the services and a scrape costs no SQL and no lock beyond theirs.

Label values are bounded: a route is its canonical pattern (``/api/faces/{faceToken}``), never the raw
path; methods outside the standard set count as ``other``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"  # 404/405 from the router: no pattern, and the raw path is unbounded
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
INFERENCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28)

Source = Callable[[], Mapping[str, Any] | None]


class Metrics:
    """The app's registry and the metrics the daemon instruments directly."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)  # process_*: CPU seconds, resident memory, open fds
        self.requests = Counter(
            "facegate_http_requests",
            "HTTP requests answered, by method, route pattern and status",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "facegate_http_request_duration_seconds",
            "Time from the request's arrival to its answer (a stream: until it ends), by route pattern",
            ("method", "route"),
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "facegate_auth_failures",
            "Requests refused by authentication: missing/malformed header (unauthenticated), "
            "unknown token (invalid_token), valid token without the right (forbidden)",
            ("reason",),
            registry=self.registry,
        )
        self.inference = Histogram(
            "facegate_inference_duration_seconds",
            "Time of one TFLite interpreter invoke, by model",
            ("model",),
            buckets=INFERENCE_BUCKETS,
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "other"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_auth_failure(self, reason: str) -> None:
        self.auth_failures.labels(reason).inc()

    def observe_inference(self, model: str, seconds: float) -> None:
        """Called from worker threads (the interpreter's invoke)."""
        self.inference.labels(model).observe(seconds)

    def add_collector(self, collector: Collector) -> None:
        self.registry.register(collector)

    def render(self) -> bytes:
        """The exposition text of every metric of this app."""
        return generate_latest(self.registry)


class _SourceCollector(Collector):
    """Reads one component's stats dict at scrape time; a failing source is logged, not fatal."""

    def __init__(self, source: Source) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        try:
            stats = self._source()
        except Exception:  # a scrape must never take /metrics down with it
            log.exception("metrics source %s failed", type(self).__name__)
            return
        if stats:
            yield from self.metrics(stats)

    def describe(self) -> Iterable[Metric]:
        return ()  # unchecked collector: its families depend on what the source reports

    def metrics(self, stats: Mapping[str, Any]) -> Iterator[Metric]:
        raise NotImplementedError


def _gauge(name: str, doc: str, value: Any) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value or 0))


def _counter(name: str, doc: str, value: Any) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=float(value or 0))


class PoolCollector(_SourceCollector):
    """InferencePool.stats(): the bounded queue in front of the inference workers."""

    def metrics(self, stats: Mapping[str, Any]) -> Iterator[Metric]:
        yield _gauge("facegate_pool_workers", "Inference worker threads", stats.get("workers"))
        yield _gauge("facegate_pool_pending", "Jobs queued or running in the pool", stats.get("pending"))
        yield _gauge(
            "facegate_pool_max_pending",
            "Jobs that may be queued or running before requests are refused (503)",
            stats.get("max_pending"),
        )
        yield _counter(
            "facegate_pool_jobs", "Pool jobs finished (successfully or not)", stats.get("completed")
        )
        yield _counter(
            "facegate_pool_rejected", "Jobs refused because the pool was full (503)", stats.get("rejected")
        )


class LibraryCollector(_SourceCollector):
    """LibraryService.stats(): in-memory figures, no SQL."""

    def metrics(self, stats: Mapping[str, Any]) -> Iterator[Metric]:
        if "indexed_faces" not in stats:  # not open yet
            return
        yield _gauge(
            "facegate_library_faces",
            "Faces in the 1:N search index (templates of this device's embedding model)",
            stats.get("indexed_faces"),
        )
        yield _gauge(
            "facegate_library_other_model_faces",
            "Stored faces whose template is of another embedding model (not searchable)",
            stats.get("other_model_faces"),
        )


class DiskCollector(_SourceCollector):
    """DiskGuard.stats(): free space of the state dir's filesystem and the write floor."""

    def metrics(self, stats: Mapping[str, Any]) -> Iterator[Metric]:
        if stats.get("free_mb") is not None:
            yield _gauge(
                "facegate_disk_free_bytes",
                "Free space on the state dir's filesystem",
                stats["free_mb"] * 2**20,
            )
        yield _gauge(
            "facegate_disk_floor_bytes",
            "Writes are refused below this free space",
            stats.get("floor_mb", 0) * 2**20,
        )
        yield _gauge(
            "facegate_disk_writes_refused",
            "1 while writes are refused (disk floor)",
            stats.get("writes") == "refused",
        )


CAMERA_STATES = ("starting", "running", "failsafe", "ended", "stopped")


class CameraCollector(_SourceCollector):
    """StreamService.info(): rates, frame counters and drops of the fail-closed camera pipeline."""

    def metrics(self, stats: Mapping[str, Any]) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "facegate_camera_state", "1 for the pipeline's current state, 0 for the others", labels=("state",)
        )
        for name in CAMERA_STATES:
            state.add_metric((name,), float(stats.get("state") == name))
        yield state
        fps = GaugeMetricFamily(
            "facegate_camera_fps",
            "Frames per second over the last 5 s: read from the camera (capture), published (processed), "
            "detector runs (detection)",
            labels=("stage",),
        )
        for stage in ("capture", "processed", "detection"):
            fps.add_metric((stage,), float(stats.get(f"{stage}_fps") or 0))
        yield fps
        frames = CounterMetricFamily(
            "facegate_camera_frames", "Frames by stage since start", labels=("stage",)
        )
        frames.add_metric(("captured",), float(stats.get("frames_captured") or 0))
        frames.add_metric(("published",), float(stats.get("frames_published") or 0))
        frames.add_metric(("failsafe",), float(stats.get("failsafe_frames") or 0))
        yield frames
        dropped = CounterMetricFamily(
            "facegate_camera_dropped_frames",
            "Frames never published, by reason (capture, queue, unsafe, failsafe_skipped)",
            labels=("reason",),
        )
        for reason, count in sorted((stats.get("dropped") or {}).items()):
            dropped.add_metric((reason,), float(count or 0))
        yield dropped
        yield _counter(
            "facegate_camera_detector_errors", "Detector runs that raised", stats.get("detector_errors")
        )
        yield _counter("facegate_camera_reconnects", "Times the camera was reopened", stats.get("reconnects"))
        yield _gauge("facegate_camera_viewers", "Clients watching /api/stream.mjpg", stats.get("viewers"))
