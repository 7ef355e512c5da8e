"""Facegate and another blur service side by side over HTTP (``scripts/bench_privacy.py side-by-side``).

Both run on this machine at the same time: Facegate as a daemon subprocess (result cache off) and the
other service from ``--peer-cmd`` (a shell command started here, e.g. the seed 000 Flask service in its
own virtualenv; its code is never part of this repository), reached at ``--peer-url``. One client
implementation posts the same JPEG to ``POST /api/v1/blur-faces`` of both (multipart field ``image``,
``show_box=true``), alternating services row by row so that both see the same machine load.
"""

from __future__ import annotations

import asyncio
import shlex
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np

RunClients = Callable[[str, str, bytes, int, int], Coroutine[Any, Any, tuple[list[float], float]]]


def wait_for_port(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    parts = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the peer service exited with {proc.returncode}")
        try:
            with socket.create_connection((parts.hostname, parts.port or 80), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("the peer service did not open its port")


def start_peer(cmd: str, url: str) -> subprocess.Popen:
    proc = subprocess.Popen(shlex.split(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(url, proc)
    return proc


def stop_peer(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def row(
    run_clients: RunClients, name: str, url: str, token: str, label: str, body: bytes, clients: int, n: int
) -> str:
    lat, wall = asyncio.run(run_clients(url, token, body, clients, n))
    p50, p99 = (float(np.percentile(lat, q)) * 1000 for q in (50, 99))
    return f"| {name} | {label} | {clients} | {len(lat)} | {p50:.1f} | {p99:.1f} | {len(lat) / wall:.1f} |"


def side_by_side(
    run_clients: RunClients,
    services: list[tuple[str, str, str]],  # (name, base url, token)
    images: dict[str, bytes],
    clients: list[int],
    requests: int,
    rounds: int,
) -> list[str]:
    """Markdown rows, services alternating for every image and client count, ``rounds`` times."""
    lines = [
        "| service | image | clients | requests | p50 ms | p99 ms | requests/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for _ in range(rounds):
        for label, body in images.items():
            for n_clients in clients:
                for name, url, token in services:
                    lines.append(row(run_clients, name, url, token, label, body, n_clients, requests))
                    print(lines[-1], flush=True)
    return lines


async def interleaved(
    services: list[tuple[str, str, str]], body: bytes, requests: int
) -> dict[str, list[float]]:
    """One client posting to each service in turn, request by request: latencies (s) per service.

    Load that comes and goes on a shared machine then falls on both alike."""
    import aiohttp

    async def once(session, url: str, token: str) -> float:
        form = aiohttp.FormData()
        form.add_field("image", body, filename="scene.jpg", content_type="image/jpeg")
        form.add_field("show_box", "true")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        start = time.perf_counter()
        async with session.post(url + "/api/v1/blur-faces", data=form, headers=headers) as r:
            await r.read()
            if r.status != 200:
                raise SystemExit(f"{url}: HTTP {r.status}")
        return time.perf_counter() - start

    latencies: dict[str, list[float]] = {name: [] for name, _, _ in services}
    async with aiohttp.ClientSession() as session:
        for _, url, token in services:
            for _ in range(3):
                await once(session, url, token)  # warm-up
        for _ in range(requests):
            for name, url, token in services:
                latencies[name].append(await once(session, url, token))
    return latencies


def interleaved_rows(services: list[tuple[str, str, str]], images: dict[str, bytes], requests: int) -> None:
    print("\n| service | image | clients | requests (interleaved) | p50 ms | p90 ms |")
    print("|---|---|---|---|---|---|")
    for label, body in images.items():
        latencies = asyncio.run(interleaved(services, body, requests))
        for name, lat in latencies.items():
            p50, p90 = (float(np.percentile(lat, q)) * 1000 for q in (50, 90))
            print(f"| {name} | {label} | 1 | {len(lat)} | {p50:.1f} | {p90:.1f} |", flush=True)
