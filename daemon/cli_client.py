"""`facegate enroll` and `facegate search`: the device API from a shell, for integrators testing a device
by hand.

They talk to a running daemon over HTTP (stdlib urllib: nothing to install on a laptop but the
package). The base URL and the token come from flags or the environment: --url or FACEGATE_URL
(default http://127.0.0.1:8080); --token, --token-file, or FACEGATE_TOKEN. (Config overrides are
FACEGATE_<SECTION>_<KEY>; URL and TOKEN name no section, so the daemon ignores them.) Output is for
people; --json prints the daemon's answers as they came. A failure prints the device code and message
and exits 1.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_GROUP = "default"


class ClientError(Exception):
    """Something the person at the shell must fix or know: printed as is, exit status 1."""


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "enroll",
        help="register the largest face of each image on a running daemon (several photos of one person: "
        "one face each, same name; docs/SCORES.md shows two photos cut false rejections ~7-fold)",
    )
    p.add_argument("image", type=Path, nargs="+")
    p.add_argument("--name", default="", help="the person's name (≤128 bytes)")
    p.add_argument("--description", default="", help="free text (≤255 bytes)")
    p.add_argument("--gender", default="", help="free text (≤16 bytes)")
    p.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="GROUP_ID",
        help="also bind the face to this group (repeatable; every face is in 'default')",
    )
    p.set_defaults(func=_cmd_enroll)

    p = sub.add_parser("search", help="search the largest face of an image in a running daemon's library")
    p.add_argument("image", type=Path)
    p.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="GROUP_ID",
        help="search this group (repeatable; default: 'default')",
    )
    p.add_argument("--top", type=int, default=1, choices=range(1, 6), metavar="N", help="matches, 1–5")
    p.set_defaults(func=_cmd_search)

    for name in ("enroll", "search"):
        p = sub.choices[name]
        p.add_argument("--url", help=f"daemon base URL (env FACEGATE_URL; default {DEFAULT_URL})")
        p.add_argument("--token", help="API token (env FACEGATE_TOKEN)")
        p.add_argument("--token-file", type=Path, help="file holding the token ('token' or 'name:token')")
        p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for an answer")
        p.add_argument("--json", action="store_true", help="print the daemon's JSON answers")


class DeviceClient:
    """The few device-API calls the commands need; every failure is a ClientError."""

    def __init__(self, base_url: str, token: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self.last: dict[str, Any] = {}  # the envelope of the last answer (for --json)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a successful answer; the whole envelope is in self.last."""
        url = self.base_url + path
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        retry = None
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
            retry = exc.headers.get("Retry-After")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ClientError(f"cannot reach {self.base_url}: {reason}") from None
        try:
            envelope = json.loads(raw)
        except ValueError:
            raise ClientError(f"{method} {path}: HTTP {status}, not a JSON answer: {raw[:200]!r}") from None
        self.last = envelope
        code = envelope.get("code") if isinstance(envelope, dict) else None
        if status == 200 and code == 0:
            return envelope.get("data") or {}
        message = f"{method} {path} failed: {code} {envelope.get('msg', '')} (HTTP {status})"
        if status in (401, 403):
            message += "; check --token, --token-file or FACEGATE_TOKEN"
        if retry:
            message += f"; the daemon is busy, retry in {retry} s"
        raise ClientError(message)


def resolve_target(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str, str]:
    """(base URL, token): flags first, then the environment."""
    url = args.url or environ.get("FACEGATE_URL") or DEFAULT_URL
    if args.token:
        token = args.token
    elif args.token_file:
        token = read_token_file(args.token_file)
    elif environ.get("FACEGATE_TOKEN"):
        token = environ["FACEGATE_TOKEN"]
    else:
        raise ClientError("no API token: give --token, --token-file, or set FACEGATE_TOKEN")
    if not url.startswith(("http://", "https://")):
        raise ClientError(f"--url must start with http:// or https://, got {url!r}")
    return url, token.strip()


def read_token_file(path: Path) -> str:
    """The first token of a token file (the daemon's format: 'token' or 'name:token', # comments)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ClientError(f"cannot read token file {path}: {exc.strerror}") from None
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            return line.rpartition(":")[2].strip()
    raise ClientError(f"token file {path} holds no token")


def image_base64(path: Path) -> str:
    try:
        return base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror}") from None


def _run(args: argparse.Namespace, command: Callable[[DeviceClient, argparse.Namespace], None]) -> int:
    try:
        url, token = resolve_target(args, os.environ)
        command(DeviceClient(url, token, args.timeout), args)
    except ClientError as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_enroll(args: argparse.Namespace) -> int:
    return _run(args, enroll)


def _cmd_search(args: argparse.Namespace) -> int:
    return _run(args, search)


def enroll(client: DeviceClient, args: argparse.Namespace) -> None:
    """Each image becomes one face with the same name, description and groups. Every image is tried
    (one refused photo does not stop the others); the exit status is 1 when any failed."""
    extra = [g for g in dict.fromkeys(args.group) if g != DEFAULT_GROUP]
    if extra:  # refuse before enrolling, rather than leave a face half-bound
        known = {g["groupId"] for g in client.call("GET", "/api/faceGroups").get("faceGroupList", [])}
        missing = [g for g in extra if g not in known]
        if missing:
            raise ClientError(f"no such group: {', '.join(missing)} (create it with POST /api/faceGroups)")
    answers: list[dict[str, Any]] = []
    failures: list[str] = []
    for image in args.image:
        try:
            answers.append(_enroll_one(client, args, image, extra))
        except ClientError as exc:
            if len(args.image) == 1:
                raise
            failures.append(f"{image.name}: {exc}")
            answers.append({"image": str(image), "error": str(exc)})
            if not args.json:
                print(f"not enrolled {image.name}: {exc}")
    if args.json:
        print(json.dumps(answers[0] if len(args.image) == 1 else answers, indent=2))
    if failures:
        raise ClientError(
            f"{len(failures)} of {len(args.image)} images were not enrolled: " + "; ".join(failures)
        )


def _enroll_one(
    client: DeviceClient, args: argparse.Namespace, image: Path, extra: list[str]
) -> dict[str, Any]:
    body = {"image": image_base64(image), "name": args.name, "description": args.description}
    if args.gender:
        body["gender"] = args.gender
    face = client.call("POST", "/api/faces", body)
    registered = client.last
    binding, bound_envelope = None, None
    if extra:
        token = urllib.parse.quote(face["faceToken"], safe="")
        binding = client.call("POST", f"/api/faceGroups/binding/{token}", {"faceGroupList": extra})
        bound_envelope = client.last
    if not args.json:
        r = face["rect"]
        print(f"enrolled {image.name}: faceToken {face['faceToken']}")
        print(f"  imageId {face['imageId']}  id {face['id']}")
        print(f"  face at left {r['left']} top {r['top']} right {r['right']} bottom {r['bottom']}")
        groups = [DEFAULT_GROUP] + [g for g in extra if binding is None or g not in _failed(binding)]
        print(f"  groups: {', '.join(groups)}")
    if binding is not None and binding.get("failCnt"):
        failures = "; ".join(f"{f['groupId']}: {f['errorMsg']}" for f in binding.get("failInfo", []))
        raise ClientError(f"enrolled as {face['faceToken']}, but binding failed for {failures}")
    return {"register": registered, "binding": bound_envelope}


def _failed(binding: dict[str, Any]) -> set[str]:
    return {f["groupId"] for f in binding.get("failInfo", [])}


def search(client: DeviceClient, args: argparse.Namespace) -> None:
    groups = list(dict.fromkeys(args.group)) or [DEFAULT_GROUP]
    body = {"image": image_base64(args.image), "group": groups, "topN": args.top}
    data = client.call("POST", "/api/face/search", body)
    if args.json:
        print(json.dumps(client.last, indent=2))
        return
    d = data.get("detectionResult", {})
    print(
        f"face at left {d.get('left')} top {d.get('top')} right {d.get('right')} bottom {d.get('bottom')}"
        f"  quality {_num(d.get('quality'), 2)}  yaw {d.get('yaw')} pitch {d.get('pitch')}"
        f" roll {d.get('roll')}  blurness {_num(d.get('blurness'), 0)}"
    )
    hits = [(rank, data.get(f"top{rank}") or {}) for rank in range(1, args.top + 1)]
    hits = [(rank, hit) for rank, hit in hits if hit]
    if not hits:
        print(f"no match in {', '.join(groups)} (no face reaches the groups' scores)")
    for rank, hit in hits:
        in_groups = ",".join(g["groupId"] for g in hit.get("group", []))
        print(
            f"top{rank}: score {_num(hit['searchScore'], 1)}  faceToken {hit['faceToken']}  "
            f"description {hit.get('description', '')!r}  groups {in_groups}"
        )


def _num(value: Any, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else str(value)
