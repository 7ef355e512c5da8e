"""Door benchmarks (docs/BENCHMARKS.md, "Door"): decision latency and event counts at 720p with the
blur stream running on the same capture, and the door's CPU cost with nobody in view.

    .venv/bin/python scripts/bench_door.py [--visits 8] [--fps 15] [--idle-seconds 15]

Latency: from the capture time of the first frame in which an enrolled face is at least 80 px wide
(the clip's ground truth) to the moment the granted event is committed. The clip: real face photos
(tests/data/faces) walking in from the left edge, growing from 60 to 150 px, lingering, leaving to
the right; enrolled people (obama, biden) and a stranger (the astronaut) in turn. CPU: process CPU
time over wall time while a clip with nobody in it plays, with the door on and off (the stream runs
in both), so the difference is the door's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from door_clips import OFF, keyed_path, make_library, write_clip

from daemon.app import engine_from_config
from daemon.camera.capture import CaptureLoop
from daemon.camera.file_source import VideoFileSource
from daemon.camera.pipeline import StreamPipeline
from daemon.config import load_config, with_overrides
from daemon.library.keys import resolve_key_path
from daemon.services.door_service import DoorService
from daemon.services.library_service import LibraryService
from daemon.services.stream import StreamService
from daemon.services.video_blur import privacy_detector
from daemon.vision.embed import DESCRIPTOR_SIZE, model_id_of
from daemon.vision.engine import ModelPaths

SIZE = (1280, 720)
PEOPLE = ["obama.jpg", "biden.jpg", "astronaut.png"]
VISIT, GAP = 4.0, 2.0


def visit_clip(path: Path, visits: int, fps: float) -> tuple[list[tuple[str, float]], float]:
    """The clip and, per visit, (photo, time in s when the face first reaches 80 px)."""
    duration = visits * (VISIT + GAP) + GAP
    paths, truth = [], []
    for photo in PEOPLE:
        keys: list[tuple[float, float, float, float]] = [(0.0, OFF, 0, 60)]
        for v in range(visits):
            if PEOPLE[v % len(PEOPLE)] != photo:
                continue
            s = GAP + v * (VISIT + GAP)
            keys += [
                (s - 0.01, OFF, 0, 60),
                (s, 60, 360, 60),
                (s + 1.5, 640, 360, 150),
                (s + 3.0, 660, 360, 150),
                (s + VISIT, 1260, 360, 140),
                (s + VISIT + 0.01, OFF, 0, 140),
            ]
            truth.append((photo, s + 1.5 * (80 - 60) / (150 - 60)))
        keys.append((duration, OFF, 0, 60))
        paths.append(keyed_path(photo, keys, duration))
    write_clip(path, paths, duration, fps=fps, size=SIZE)
    return sorted(truth, key=lambda x: x[1]), duration


async def run(config, clip: Path, fps: float, door_on: bool, library: LibraryService) -> dict:
    config = with_overrides(
        config, camera={"source": f"file:{clip}", "fps": fps, "loop": False}, checkin={"enabled": door_on}
    )
    paths = ModelPaths.resolve(config.models_path, config.models.embedding)
    capture = CaptureLoop(VideoFileSource(clip, fps=fps))
    stream_settings = StreamService(config, lambda: None).settings  # type: ignore[arg-type,return-value]

    def detector():
        engine = engine_from_config(config, paths, with_embedder=False)
        s = config.stream
        return privacy_detector(engine, config, s.tiles_per_frame, s.detector, s.max_side)

    stream = StreamPipeline(capture, detector, stream_settings, want_jpeg=lambda: True)  # one viewer
    times: dict[int, float] = {}
    stop = threading.Event()

    def clock() -> None:  # a third consumer: the capture time of every frame index
        last = -1
        while not stop.is_set():
            frame = capture.wait_frame(last, 0.5)
            if frame is not None:
                times[frame.index], last = frame.timestamp, frame.index
            elif capture.state.value in ("ended", "failed", "stopped"):
                return

    door = DoorService(config, lambda: engine_from_config(config, paths), library, lambda: capture)
    events: list[tuple[dict, float]] = []
    stream.start()
    threading.Thread(target=clock, daemon=True).start()
    await door.start(asyncio.get_running_loop())
    assert door.events is not None
    door.events.add_listener(lambda e: events.append((e, time.monotonic())))
    cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    while capture.state.value not in ("ended", "failed"):
        await asyncio.sleep(0.2)
    cpu1, wall1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    await asyncio.sleep(1.0)
    health = door.health()
    stop.set()
    await door.stop()
    stream.stop()
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return {
        "events": events,
        "times": times,
        "cpu": cpu / (wall1 - wall0),
        "health": health,
        "stream": stream.stats(),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--visits", type=int, default=8)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--idle-seconds", type=float, default=15.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_door_"))
    config = with_overrides(
        load_config(None, environ={}),
        server={"state_dir": str(root / "state")},
        checkin={"groups": ["default"], "cooldown": 1.0},
    )
    paths = ModelPaths.resolve(config.models_path, config.models.embedding)
    tokens = make_library(config.database_path, engine_from_config(config, paths))
    names = {tokens["obama"]: "obama.jpg", tokens["biden"]: "biden.jpg"}
    clip = root / "visits.avi"
    truth, duration = visit_clip(clip, args.visits, args.fps)
    key_path = resolve_key_path(config.security.key_file, config.state_path)
    library = LibraryService(
        config.database_path, model_id_of(config.models.embedding), DESCRIPTOR_SIZE, key_path
    )
    await library.start()
    result = await run(config, clip, args.fps, True, library)
    times = result["times"]

    def captured(seconds: float) -> float:
        """Capture time of the clip's frame at ``seconds`` (the first recorded frame from there)."""
        k = round(seconds * args.fps)
        return times[min((i for i in times if i >= k), default=max(times))]

    latencies, granted = [], 0
    pending = list(truth)
    for event, at in result["events"]:
        if event["decision"] == "granted":
            granted += 1
            photo = names.get(event["faceToken"])
            match = next((v for v in pending if v[0] == photo and captured(v[1]) <= at + 0.5), None)
            if match is not None:
                pending.remove(match)
                latencies.append((at - captured(match[1])) * 1000)
    enrolled = sum(1 for p, _ in truth if p != "astronaut.png")
    decisions = [e["decision"] for e, _ in result["events"]]
    print(
        f"clip {SIZE[0]}x{SIZE[1]} {args.fps:g} fps {duration:.0f} s, {len(truth)} visits "
        f"({enrolled} enrolled, {len(truth) - enrolled} stranger)"
    )
    print(
        f"events: granted {decisions.count('granted')}, denied {decisions.count('denied')}, "
        f"unknown {decisions.count('unknown')}; enrolled visits without a grant: "
        f"{len([v for v in pending if v[0] != 'astronaut.png'])}; grants not matching an enrolled "
        f"visit: {granted - len(latencies)}"
    )
    if latencies:
        print(
            f"latency first >=80px frame -> granted event: p50 {percentile(latencies, 0.5):.0f} ms, "
            f"p95 {percentile(latencies, 0.95):.0f} ms, max {max(latencies):.0f} ms (n={len(latencies)})"
        )
    print(
        f"door: {result['health'].get('frames_processed')} frames processed, dropped "
        f"{result['health'].get('frames_dropped')}, detection {result['health'].get('detection_ms')} ms; "
        f"stream processed_fps {result['stream']['processed_fps']}, "
        f"dropped {result['stream']['dropped_total']}"
    )
    print(f"process CPU with the door, visits clip: {result['cpu'] * 100:.0f}% of one core")
    idle = root / "idle.avi"
    write_clip(
        idle,
        [keyed_path("obama.jpg", [(0, OFF, 0, 60), (args.idle_seconds, OFF, 0, 60)], args.idle_seconds)],
        args.idle_seconds,
        fps=args.fps,
        size=SIZE,
    )
    off = await run(config, idle, args.fps, False, library)
    on = await run(config, idle, args.fps, True, library)
    print(
        f"nobody in view: process CPU stream only {off['cpu'] * 100:.0f}%, stream + door "
        f"{on['cpu'] * 100:.0f}% of one core -> door {100 * (on['cpu'] - off['cpu']):.0f}% "
        f"({on['health'].get('frames_processed')} door frames)"
    )
    await library.close()


if __name__ == "__main__":
    asyncio.run(main())
