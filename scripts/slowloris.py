#!/usr/bin/env python3
"""A bounded slow-header load against a Facegate on 127.0.0.1 (docs/BENCHMARKS.md, "Hostile clients").

Opens N connections that each send an incomplete request head, one header line every ``--drip``
seconds, reopening any the daemon closes; meanwhile GET /health (and, with a token, a search) is timed
on a fresh connection once a second. Loopback only, bounded in connections and in time.

    scripts/slowloris.py --port 8080 --connections 2000 --seconds 60 [--token T --image face.jpg]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import resource
import sys
import time
from pathlib import Path

HOST = "127.0.0.1"


class Counters:
    def __init__(self) -> None:
        self.opened = 0
        self.open_now = 0
        self.closed_by_server = 0
        self.connect_failed = 0


async def slow_client(port: int, drip: float, until: float, counters: Counters) -> None:
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            counters.connect_failed += 1
            await asyncio.sleep(0.5)
            continue
        counters.opened += 1
        counters.open_now += 1
        try:
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            n = 0
            while time.monotonic() < until:
                await asyncio.sleep(drip)
                if reader.at_eof() or writer.is_closing():
                    break
                n += 1
                writer.write(f"X-Slow-{n}: a\r\n".encode())
                await writer.drain()
                try:  # the server answered (408/400) or closed: reconnect
                    await asyncio.wait_for(reader.read(1), 0.001)
                    break
                except TimeoutError:
                    pass
        except OSError:
            pass
        finally:
            counters.open_now -= 1
            counters.closed_by_server += time.monotonic() < until
            writer.close()


async def timed(
    port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
        head = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            head.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + (body or b""))
        line = await asyncio.wait_for(reader.readline(), 5)
        await asyncio.wait_for(reader.read(), 5)
        writer.close()
        status = int(line.split()[1]) if line else 0
    except (OSError, TimeoutError, ValueError, IndexError):
        status = 0
    return status, time.perf_counter() - started


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--drip", type=float, default=5.0, help="seconds between header lines")
    ap.add_argument("--token", default="")
    ap.add_argument("--image", type=Path, help="a face image for POST /api/face/search (needs --token)")
    args = ap.parse_args()
    if args.connections > 5000 or args.seconds > 600:
        sys.exit("bounded: at most 5000 connections and 600 s")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.connections + 512), hard))
    until = time.monotonic() + args.seconds
    counters = Counters()
    tasks = [
        asyncio.create_task(slow_client(args.port, args.drip, until, counters))
        for _ in range(args.connections)
    ]
    search_body = None
    auth = {"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"} if args.token else {}
    if args.image is not None and args.token:
        image = base64.b64encode(args.image.read_bytes()).decode()
        search_body = json.dumps({"image": image, "group": ["default"], "topN": 1}).encode()
    worst = {"health": 0.0, "search": 0.0}
    failures = {"health": 0, "search": 0}
    samples = 0
    await asyncio.sleep(min(5, args.seconds / 4))  # let the slow connections pile up
    while time.monotonic() < until - 1:
        samples += 1
        status, took = await timed(args.port, "GET", "/health", None, {})
        worst["health"] = max(worst["health"], took)
        failures["health"] += status not in (200, 503) or took > 1
        if search_body is not None:
            status, took = await timed(args.port, "POST", "/api/face/search", search_body, auth)
            worst["search"] = max(worst["search"], took)
            failures["search"] += status != 200 or took > 1
        print(
            f"open={counters.open_now} opened={counters.opened} health_worst={worst['health']:.3f}s "
            f"search_worst={worst['search']:.3f}s failures={failures}",
            flush=True,
        )
        await asyncio.sleep(1)
    await asyncio.gather(*tasks, return_exceptions=True)
    summary = {"samples": samples, "worst_s": worst, "failures": failures, "opened": counters.opened}
    print(json.dumps(summary))
    return 0 if not any(failures.values()) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
