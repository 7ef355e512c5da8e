"""`facegate run`: the daemon's process lifecycle.

Order matters for systemd's Type=notify: check the models (refuse to start on a missing or altered file),
listen, load the interpreters, then READY=1. SIGTERM/SIGINT: STOPPING=1, stop accepting, give in-flight
requests up to server.shutdown_timeout, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sqlite3

import cv2
from aiohttp import web

from daemon.api.connections import ACCEPT_BACKLOG, CappedAppRunner, open_file_budget, quiet_accept_errors
from daemon.api.multipart import quiet_client_warnings
from daemon.app import build_app
from daemon.appkeys import STATUS
from daemon.config import Config
from daemon.errors import IntegrityError
from daemon.fsmodes import private_dir, private_umask
from daemon.ops.integrity import check_stored_data, mark_library
from daemon.ops.systemd import SystemdNotifier
from daemon.ops.tls import listener_tls
from daemon.services.tokens import load_for_serving
from daemon.vision.engine import ModelPaths

log = logging.getLogger("facegate")


async def serve(config: Config, notifier: SystemdNotifier) -> int:
    """Run until SIGTERM/SIGINT; the process exit code."""
    model_paths = ModelPaths.resolve(config.models_path, config.models.embedding, config.liveness.enabled)
    # Parallelism comes from the worker pool; OpenCV's own thread pool per call would oversubscribe the
    # cores (a 4-core Pi with 2 workers would run 8 OpenCV threads).
    cv2.setNumThreads(1)
    quiet_client_warnings()
    private_umask()  # files 0600, directories 0700, also when not started by systemd (UMask=0077)
    private_dir(config.state_path)
    check_stored_data(config)  # IntegrityError: exit status 5 (daemon/ops/exits.py)
    ssl_context = listener_tls(config)  # before anything listens: a refused config exits 2
    tokens = load_for_serving(
        config.token_store_path, config.token_path, config.auth.migrated_scopes, config.server.host
    )
    app = build_app(config, model_paths, tokens)
    loop = asyncio.get_running_loop()
    quiet_accept_errors(loop)
    # aiohttp's keep-alive timer runs from the connection's start and after each response until a
    # complete request head arrives: it is the header deadline (daemon/api/connections.py).
    runner = CappedAppRunner(
        app,
        max_connections=open_file_budget(config.limits.max_connections),
        shutdown_timeout=config.server.shutdown_timeout,
        access_log=None,
        keepalive_timeout=config.limits.header_timeout,
    )
    try:
        await runner.setup()  # opens the library
    except sqlite3.DatabaseError as exc:
        with contextlib.suppress(Exception):
            await runner.cleanup()
        raise IntegrityError(f"the face library {config.database_path} cannot be opened: {exc}") from None
    mark_library(config)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watchdog = asyncio.create_task(notifier.watchdog_loop(), name="systemd-watchdog")
    exit_code = 0
    try:
        site = web.TCPSite(
            runner, config.server.host, config.server.port, ssl_context=ssl_context, backlog=ACCEPT_BACKLOG
        )
        await site.start()
        scheme = "https" if ssl_context is not None else "http"
        for address in runner.addresses:
            log.info("facegate listening on %s://%s:%d", scheme, *address[:2])
        notifier.status("loading models")
        loaded = asyncio.create_task(app[STATUS].wait_loaded())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({loaded, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if loaded.done():
            error = loaded.exception()
            if error is not None:
                log.error("cannot start: %s", error)
                return 1
            notifier.ready("serving")
            log.info("ready: models loaded")
            await stop.wait()
        else:
            loaded.cancel()
        log.info("stopping: finishing in-flight requests (at most %.0f s)", config.server.shutdown_timeout)
        notifier.stopping()
    finally:
        watchdog.cancel()
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("stopped")
    return exit_code
