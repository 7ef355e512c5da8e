"""`facegate token add|list|revoke` and `facegate cert`: managing access on the device itself.

They work on the files the daemon reads (auth.token_store, tls.cert_file / tls.key_file, from the same
--config and environment). A token is printed once, when it is made; the store keeps only its hash.
The daemon reads the store at start: restart it after a change (`systemctl restart facegate`).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.cli_args import add_config_args, config_from_args
from daemon.services.tokens import SCOPES, TokenStore


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser("token", help="manage API tokens (hashed store; restart the daemon after)")
    add_config_args(token, "YAML config file (to find auth.token_store)")
    actions = token.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="make a token and print it (the only time it is shown)")
    add.add_argument("name", help="the token's name: the principal in the audit log and task owner")
    add.add_argument(
        "--scope",
        action="append",
        required=True,
        help=f"a scope ({', '.join(SCOPES)}); repeat or comma-separate for several",
    )
    add.set_defaults(func=_cmd_add)
    listing = actions.add_parser("list", help="names, scopes and creation dates (never the tokens)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_cmd_list)
    revoke = actions.add_parser("revoke", help="delete a token (its signed stream URLs stop working too)")
    revoke.add_argument("name")
    revoke.set_defaults(func=_cmd_revoke)

    cert = sub.add_parser("cert", help="make a self-signed TLS certificate and key for this device")
    add_config_args(cert, "YAML config file (to find tls.cert_file / key_file)")
    cert.add_argument("--cert", type=Path, help="certificate (default: tls.cert_file or <state>/tls.crt)")
    cert.add_argument("--key", type=Path, help="key file (default: tls.key_file or <state>/tls.key)")
    cert.add_argument("--name", action="append", default=[], help="another DNS name (repeatable)")
    cert.add_argument("--ip", action="append", default=[], help="an IP address of the device (repeatable)")
    cert.add_argument("--days", type=int, help="validity in days (default: tls.self_signed_days)")
    cert.add_argument("--force", action="store_true", help="replace existing files")
    cert.set_defaults(func=_cmd_cert)


def _store(args: argparse.Namespace) -> TokenStore:
    return TokenStore(config_from_args(args).token_store_path)


def _audit(args: argparse.Namespace, action: str, name: str, detail: dict[str, Any]) -> None:
    """A token change is a mutation: recorded in the audit trail like the API's (services/audit.py)."""
    from daemon.services.audit import record_cli

    record_cli(config_from_args(args), action, f"token:{name}", detail)


def _cmd_add(args: argparse.Namespace) -> int:
    scopes = [s.strip() for item in args.scope for s in item.split(",") if s.strip()]
    token = _store(args).add(args.name, scopes)
    _audit(args, "token.add", args.name, {"scopes": scopes})
    print(token)
    print(f"token {args.name!r} added with scopes {','.join(scopes)}; restart the daemon", file=sys.stderr)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for entry in _store(args).load().entries:
        created = datetime.fromtimestamp(entry.created, UTC).isoformat(timespec="seconds")
        scopes = sorted(entry.scopes)
        rows.append({"name": entry.name, "scopes": scopes, "created": created, "weak": entry.weak})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for row in rows:
        weak = f"  WEAK: {row['weak']}" if row["weak"] else ""
        print(f"{row['name']:<24} {','.join(row['scopes']):<40} {row['created']}{weak}")
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    _store(args).revoke(args.name)
    _audit(args, "token.revoke", args.name, {})
    print(f"token {args.name!r} revoked; restart the daemon", file=sys.stderr)
    return 0


def _cmd_cert(args: argparse.Namespace) -> int:
    from daemon.ops.tls import make_self_signed

    config = config_from_args(args)
    tls, state = config.tls, config.state_path
    cert = args.cert or (Path(tls.cert_file) if tls.cert_file else state / "tls.crt")
    key = args.key or (Path(tls.key_file) if tls.key_file else state / "tls.key")
    for path in (cert, key):
        if path.exists() and not args.force:
            print(f"facegate: {path} exists (--force replaces it)", file=sys.stderr)
            return 1
    names = make_self_signed(cert, key, args.name, args.ip, args.days or tls.self_signed_days)
    print(f"certificate {cert}\nkey         {key} (mode 0600)\nnames       {', '.join(names)}")
    print(f"serve it with tls.cert_file: {cert} and tls.key_file: {key}", file=sys.stderr)
    return 0
