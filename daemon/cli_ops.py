"""`facegate doctor | backup | export | import`: looking after a device and moving its library.

These work on the files directly (state dir, library file), not through a running daemon: ``backup``
and ``export`` are safe while the daemon runs (a read snapshot); ``import`` writes the library file, so
stop the daemon first (or use ``POST /api/admin/library/import`` on a running one).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from daemon.cli_args import add_config_args, config_from_args
from daemon.config import Config
from daemon.errors import ConfigError


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("doctor", help="check models, config, state dir, disk, TFLite, camera, clock, unit")
    add_config_args(p)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--no-camera", action="store_true", help="skip the camera check")
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("backup", help="consistent copy of the library file (safe while the daemon runs)")
    add_config_args(p)
    p.add_argument("out", type=Path, help="target file (or directory)")
    p.set_defaults(func=_cmd_backup)

    p = sub.add_parser("export", help="write a signed, portable bundle of the face library")
    add_config_args(p)
    p.add_argument("out", type=Path, help="bundle file to write ('-': standard output)")
    p.add_argument("--group", action="append", default=[], help="only faces of this group (repeatable)")
    p.add_argument("--key", type=Path, help="bundle key file (default: ops.bundle_key_file)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("import", help="load a bundle into the library, all or nothing (daemon stopped)")
    add_config_args(p)
    p.add_argument("bundle", type=Path, help="bundle file written by facegate export")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--merge", action="store_const", const="merge", dest="mode", help="add (default)")
    mode.add_argument("--replace", action="store_const", const="replace", dest="mode", help="replace all")
    p.add_argument("--key", type=Path, help="bundle key file (default: ops.bundle_key_file)")
    p.set_defaults(func=_cmd_import, mode="merge")


def _cmd_doctor(args: argparse.Namespace) -> int:
    from daemon.services.doctor import healthy, run_checks

    config, error = None, None
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        error = str(exc)
    checks = run_checks(config, error, camera=not args.no_camera)
    if args.json:
        print(json.dumps({"healthy": healthy(checks), "checks": [c.as_dict() for c in checks]}, indent=2))
    else:
        for check in checks:
            print(f"{check.status.upper():4}  {check.name}: {check.detail}")
            if check.fix and check.status in ("fail", "warn"):
                print(f"      fix: {check.fix}")
        print("healthy" if healthy(checks) else "NOT healthy: fix the FAIL lines above")
    return 0 if healthy(checks) else 1


def _cmd_backup(args: argparse.Namespace) -> int:
    from daemon.library.backup import backup

    config = config_from_args(args)
    size = backup(config.database_path, args.out)
    print(f"backup of {config.database_path} written to {args.out} ({size} bytes)")
    return 0


def _library_key_path(config: Config) -> Path:
    from daemon.library.keys import resolve_key_path

    return resolve_key_path(config.security.key_file, config.state_path)


def _model(config: Config) -> tuple[str, int]:
    from daemon.vision.embed import DESCRIPTOR_SIZE, model_id_of

    return model_id_of(config.models.embedding), DESCRIPTOR_SIZE


def _cmd_export(args: argparse.Namespace) -> int:
    from daemon.library import bundle
    from daemon.library.backup import snapshot
    from daemon.library.keys import KeyRing

    config = config_from_args(args)
    model_id, dim = _model(config)
    ring = KeyRing.open(_library_key_path(config), may_create=False)
    key = bundle.load_key(args.key or config.bundle_key_path, create=args.key is None)
    to_stdout = str(args.out) == "-"
    tmp = args.out.with_name(f".{args.out.name}.partial")
    with snapshot(config.database_path) as conn:
        out = sys.stdout.buffer if to_stdout else tmp.open("wb")
        try:
            size = 0
            for line in bundle.export_lines(conn, ring, key, model_id, dim, args.group):
                out.write(line)
                size += len(line)
            out.flush()
        except BaseException:
            if not to_stdout:
                out.close()
                tmp.unlink(missing_ok=True)
            raise
    if not to_stdout:
        out.close()
        tmp.replace(args.out)
        print(f"exported {config.database_path} to {args.out} ({size} bytes)", file=sys.stderr)
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from daemon.library import bundle, db
    from daemon.library.bundle import BundleError
    from daemon.library.store import open_keys

    config = config_from_args(args)
    model_id, dim = _model(config)
    key = bundle.load_key(args.key or config.bundle_key_path, create=False)
    try:
        stream = args.bundle.open("rb")
    except OSError as exc:
        raise BundleError(f"cannot read {args.bundle}: {exc.strerror}") from exc
    with stream:
        bundle.verify(stream, key, model_id, dim)  # before the library file is even opened
        stream.seek(0)
        config.database_path.parent.mkdir(parents=True, exist_ok=True)
        ring = open_keys(config.database_path, _library_key_path(config))
        with contextlib.closing(db.connect(config.database_path, ring)) as conn:
            with db.transaction(conn):
                result = bundle.apply(conn, ring, stream, key, model_id, dim, args.mode)
            db.scrub(conn)
    print(
        f"imported ({result.mode}) {result.images} images, {result.faces} faces, "
        f"{result.groups_created} new groups into {config.database_path}"
    )
    return 0
