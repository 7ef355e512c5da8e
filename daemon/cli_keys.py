"""`facegate key rotate | migrate`: the face library's encryption keys.

``rotate`` re-seals the library with a new key (daemon/library/rotation.py): safe while the daemon
runs (it picks up the new key from the file at its next write, and searches go on from its in-memory
index); resumable when interrupted. ``migrate`` brings a library to the current schema with the daemon
stopped, sealing a plaintext one (migration 2): on a large library this takes longer than systemd
gives a start (TimeoutStartSec), so scripts/install-pi runs it before restarting the service.
"""

from __future__ import annotations

import argparse
import sys

from daemon.cli_args import add_config_args, config_from_args


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("key", help="the library's encryption keys")
    key_sub = p.add_subparsers(dest="key_command", required=True)
    r = key_sub.add_parser(
        "rotate", help="re-seal every original, crop and template with a new key (resumable, online)"
    )
    add_config_args(r)
    r.add_argument("--batch", type=int, help="rows per transaction (default: security.rotate_batch)")
    r.set_defaults(func=_cmd_rotate)
    m = key_sub.add_parser("migrate", help="seal a library written in plaintext (daemon stopped)")
    add_config_args(m)
    m.set_defaults(func=_cmd_migrate)


def _cmd_migrate(args: argparse.Namespace) -> int:
    import contextlib
    import time

    from daemon.library import db
    from daemon.library.keys import resolve_key_path
    from daemon.library.store import open_keys

    config = config_from_args(args)
    path = config.database_path
    if not path.is_file():
        print(f"no library at {path}: nothing to migrate", file=sys.stderr)
        return 0
    before = db.schema_version(path)
    started = time.monotonic()
    keys = open_keys(path, resolve_key_path(config.security.key_file, config.state_path))
    with contextlib.closing(db.connect(path, keys, busy_timeout=30.0)):
        pass
    print(
        f"{path}: schema {before} -> {db.SCHEMA_VERSION} in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return 0


def _cmd_rotate(args: argparse.Namespace) -> int:
    from daemon.library.keys import resolve_key_path
    from daemon.library.rotation import rotate

    config = config_from_args(args)
    key_path = resolve_key_path(config.security.key_file, config.state_path)
    batch = args.batch or config.security.rotate_batch
    result = rotate(config.database_path, key_path, max(1, batch))
    from daemon.services.audit import record_cli

    detail = {"key": result.key_id, "rows": result.rows_resealed, "retired": result.retired}
    record_cli(config, "key.rotate", "library", detail)
    what = "resumed" if result.resumed else "rotated"
    retired = ", ".join(str(k) for k in result.retired) or "none"
    print(
        f"{what}: {result.rows_resealed} rows re-sealed with key {result.key_id}; retired keys: {retired} "
        f"({key_path}). A backup made before this can only be read with the key file of its time.",
        file=sys.stderr,
    )
    return 0
