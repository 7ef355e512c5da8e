"""`facegate checkin-video VIDEO`: the door pipeline on a video file, offline.

The very same DoorPipeline as the live door (daemon/services/door.py), fed with the file's frames
and their times (frame index / the file's frame rate), against the face library of a state dir. It
prints one line per event (time in the video, decision, faceToken, name, score), then a summary.
Integrators tune a door on recorded footage with it; the tests evaluate the pipeline with it.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2

from daemon.app import engine_from_config
from daemon.cli_args import add_config_args, config_from_args
from daemon.library.index import TemplateIndex
from daemon.library.keys import resolve_key_path
from daemon.library.store import FaceStore, open_keys
from daemon.services.door import DoorPipeline
from daemon.services.door_liveness import blink_settings
from daemon.services.scores import ScoreMapping
from daemon.services.video_blur import VideoError
from daemon.vision.embed import DESCRIPTOR_SIZE, model_id_of
from daemon.vision.engine import ModelPaths

DEFAULT_FPS = 25.0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("checkin-video", help="run the door pipeline on a video file and print its events")
    p.add_argument("video", type=Path, help="video file to read")
    add_config_args(
        p,
        "YAML config (checkin, models, scores)",
        "state dir holding the face library (default: server.state_dir)",
    )
    p.add_argument(
        "--group", action="append", default=None, help="door group (repeat); default checkin.groups"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line, then a JSON summary")
    p.set_defaults(func=_cmd_checkin_video)


def _cmd_checkin_video(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    settings = config.checkin if args.group is None else replace(config.checkin, groups=list(args.group))
    if not args.video.is_file():
        raise VideoError(f"video file not found: {args.video}")
    if not config.database_path.is_file():
        raise VideoError(f"no face library at {config.database_path} (use --state-dir)")
    engine = engine_from_config(
        config, ModelPaths.resolve(config.models_path, config.models.embedding, config.liveness.enabled)
    )
    store = FaceStore(
        config.database_path,
        open_keys(config.database_path, resolve_key_path(config.security.key_file, config.state_path)),
    )
    try:
        store.attach_index(TemplateIndex(DESCRIPTOR_SIZE), model_id_of(config.models.embedding))
        blink = blink_settings(config.blink, config.checkin)
        pipeline = DoorPipeline(
            engine, store, ScoreMapping(config.scores.anchors), settings, blink, config.models_path
        )
        summary = run_video(pipeline, args.video, args.json)
    finally:
        store.close()
    if args.json:
        print(json.dumps(summary))
    else:
        counts = summary["events"]
        print(
            f"{summary['frames']} frames ({summary['seconds']:.1f} s), {summary['processed']} processed: "
            f"{counts['granted']} granted, {counts['denied']} denied, {counts['unknown']} unknown"
        )
    return 0


def run_video(pipeline: DoorPipeline, path: Path, as_json: bool) -> dict[str, Any]:
    """Feed every frame; print each event as it is decided; return the summary."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoError(f"cannot open video {path}")
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and 0 < fps < 1000 else DEFAULT_FPS
    counts: collections.Counter[str] = collections.Counter()
    index, t = 0, 0.0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            t = index / fps
            index += 1
            if not pipeline.due(t):
                continue
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            for decision in pipeline.process(rgb, t, t):
                counts[decision.event.decision] += 1
                _print_event(decision.event, as_json)
    finally:
        cap.release()
    if index == 0:
        raise VideoError(f"no frame could be decoded from {path}")
    for decision in pipeline.finish(t, t):
        counts[decision.event.decision] += 1
        _print_event(decision.event, as_json)
    return {
        "summary": True,
        "frames": index,
        "fps": fps,
        "seconds": round(index / fps, 3),
        "processed": pipeline.counts["frames"],
        "embeddings": pipeline.counts["embeddings"],
        "events": {k: counts[k] for k in ("granted", "denied", "unknown")},
        "suppressed": pipeline.counts["suppressed"],
    }


def _print_event(event: Any, as_json: bool) -> None:
    if as_json:
        body = {
            "time": round(event.time, 3),
            "decision": event.decision,
            "reason": event.reason,
            "faceToken": event.face_token,
            "name": event.name,
            "score": event.score,
            "trackId": event.track_id,
        }
        print(json.dumps(body), flush=True)
    else:
        who = event.name or event.face_token or "-"
        score = "-" if event.score is None else f"{event.score:.1f}"
        print(
            f"{event.time:8.2f}s  {event.decision:8s} {who:20s} score {score:>5s}  {event.reason}", flush=True
        )
    sys.stdout.flush()
