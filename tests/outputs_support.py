"""Real pieces for the door-output tests: an events database, a webhook receiver, a mosquitto broker.

Until the door pipeline's events store exists, the tests create ``events.sqlite3`` themselves: a minimal
events table plus the outbox DDL, and commit events the way the store will (the in-transaction hook
inside the transaction that inserts the event, the post-commit listener after COMMIT).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from aiohttp import web
from paho.mqtt.enums import CallbackAPIVersion

from daemon.library.db import transaction
from daemon.services.outbox import create_schema

Hook = Callable[[sqlite3.Connection, int, dict], None]
Listener = Callable[[dict], None]

EVENTS_DDL = """CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    time    REAL    NOT NULL,
    body    TEXT    NOT NULL
)"""


def open_events_db(path: Path) -> sqlite3.Connection:
    """The events file as the events store opens it: WAL, synchronous=FULL, explicit transactions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=5)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(EVENTS_DDL)
    create_schema(conn)
    return conn


def make_event(decision: str = "granted", name: str | None = "Ada", **extra: Any) -> dict[str, Any]:
    event = {
        "time": time.time(),
        "camera": "front",
        "decision": decision,
        "reason": "match" if decision == "granted" else "no_match",
        "faceToken": "tok-1" if name else None,
        "name": name,
        "groups": ["staff"] if name else [],
        "score": 91.5 if name else None,
        "livenessScore": 0.97,
        "quality": 0.8,
        "trackId": 7,
        "snapshot": False,
    }
    event.update(extra)
    return event


def commit_event(
    conn: sqlite3.Connection,
    event: dict[str, Any],
    hooks: list[Hook],
    listeners: list[Listener] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    """Insert an event, run the hooks in its transaction, commit, then the listeners. The event with id."""
    with transaction(conn):
        cursor = conn.execute(
            "INSERT INTO events (time, body) VALUES (?, ?)", (event["time"], json.dumps(event))
        )
        event_id = int(cursor.lastrowid or 0)
        for hook in hooks:
            hook(conn, event_id, event)
    committed = {**event, "id": event_id}
    for listener in listeners:
        listener(committed)
    return committed


class MiniEventStore:
    """The events store's interface as the door's EventStore offers it: hooks, listeners, insert."""

    def __init__(self, path: Path) -> None:
        self.conn = open_events_db(path)
        self.hooks: list[Hook] = []
        self.listeners: list[Listener] = []

    def add_transaction_hook(self, hook: Hook) -> None:
        self.hooks.append(hook)

    def add_listener(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def insert(self, event: dict[str, Any]) -> dict[str, Any]:
        return commit_event(self.conn, event, self.hooks, self.listeners)

    def close(self) -> None:
        self.conn.close()


async def wait_until(predicate: Callable[[], bool], what: str, limit: float = 20.0) -> None:
    """Poll a condition; the limit only guards against a hang (the tests assert behaviour)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# --- a real webhook receiver -------------------------------------------------------------------------


@dataclass
class Receiver:
    """An aiohttp server on 127.0.0.1 that answers from a script of statuses, then 200.

    ``script`` holds statuses to answer before succeeding (e.g. [500, 503]); ``"hang"`` keeps the
    request open until ``release`` is set. Every request is recorded, accepted or not.
    """

    script: list[int | str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    _runner: web.AppRunner | None = None

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """Requests answered 200 to a client that was still waiting (not the ones held by "hang")."""
        return [r for r in self.requests if r["status"] == 200 and not r.get("hung")]

    def accepted_ids(self) -> list[int]:
        return [json.loads(r["body"])["id"] for r in self.accepted]

    async def start(self, port: int = 0) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{bound}/hook"
        return self

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        record: dict[str, Any] = {"headers": dict(request.headers), "body": body, "status": None}
        self.requests.append(record)
        action = self.script.pop(0) if self.script else 200
        if action == "hang":
            record["hung"] = True
            await self.release.wait()
            action = 200
        record["status"] = int(action)
        return web.Response(status=int(action), text="ok" if action == 200 else "fail")


# --- a real MQTT broker ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None
    )


class Broker:
    """Debian's mosquitto on a free 127.0.0.1 port with a temp config; can be stopped and restarted."""

    def __init__(self, binary: str, workdir: Path, users: dict[str, str] | None = None) -> None:
        self.binary, self.workdir = binary, workdir
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        access = "allow_anonymous true\n"
        if users:
            passwd = workdir / "passwd"
            passwd.touch(0o600)
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
            access = f"allow_anonymous false\npassword_file {passwd}\n"
        # persistence: subscribers' sessions (and their queued messages) survive a broker restart
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n{access}"
            f"persistence true\npersistence_location {workdir}/\n"
            # as root, mosquitto would switch to its own user, who cannot write the temp dir
            f"user {getpass.getuser()}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 (kept open for the process)
        self.process = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.workdir / "mosquitto.log").read_text()) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("mosquitto is not installed (scripts/test installs Debian's mosquitto when run as root)")
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = Broker(binary, workdir)
    b.start()
    yield b
    b.stop()


class Subscriber:
    """A plain paho client recording (topic, payload, retain) of everything under the given filters."""

    def __init__(
        self, port: int, *filters: str, persistent: bool = False, auth: tuple[str, str] | None = None
    ) -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-sub-{free_port()}", clean_session=not persistent
        )
        self.client.on_connect = lambda c, *_: c.subscribe([(f, 1) for f in filters])
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        if auth is not None:
            self.client.username_pw_set(*auth)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("test subscriber could not subscribe")

    def _on_message(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload.decode(), bool(message.retain)))

    def on(self, topic: str) -> list[str]:
        with self._lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
