"""`facegate liveness IMG…`: the passive liveness of the largest face of each image, offline.

Per image: the face box, livenessScore (0–100) and the decision the device API would make with the
config's liveness settings (``live``, ``spoof``, or ``no_context`` for an image too tight around the
face to judge). Exit status 1 if an image could not be read (the others are still printed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from daemon.config import load_config
from daemon.errors import FacegateError
from daemon.services.recognition import judge_liveness
from daemon.vision.liveness import context_of


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("liveness", help="passive liveness score and decision of the largest face per image")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.add_argument("--config", type=Path, help="YAML config (models dir, liveness settings)")
    p.set_defaults(func=_cmd_liveness)


def _cmd_liveness(args: argparse.Namespace) -> int:
    from daemon.cli_tools import _engine, _for_each_image, _read

    config = load_config(args.config)
    if not config.liveness.enabled:
        raise FacegateError("liveness is disabled in the config (liveness.enabled: false)")
    engine = _engine(config)
    policy = config.liveness

    def work(path: Path) -> None:
        rgb = _read(path)
        analysis = engine.analyze_largest(rgb)
        record: dict[str, Any] = {"path": str(path), "face": None}
        if analysis is not None:
            score, decision = judge_liveness(engine, rgb, analysis, policy)
            record["face"] = {
                "box": [round(v, 1) for v in analysis.face.box],
                "livenessScore": round(score, 2),
                "decision": decision,
                "context": round(context_of(rgb, analysis.face), 2),
            }
        if args.json:
            print(json.dumps(record))
        elif analysis is None:
            print(f"{path}: no face")
        else:
            face = record["face"]
            x1, y1, x2, y2 = face["box"]
            print(
                f"{path}: box ({x1:.0f}, {y1:.0f})-({x2:.0f}, {y2:.0f})  "
                f"livenessScore {face['livenessScore']:.1f}  {face['decision']} "
                f"(threshold {policy.min_score:g}, context {face['context']:.2f})"
            )

    return _for_each_image(args.images, work)
