#!/usr/bin/env python3
"""N concurrent privacy uploads trickled in (each held open ~seconds) against a Facegate on 127.0.0.1,
sampling the daemon's RSS from /proc meanwhile (docs/BENCHMARKS.md, "Hostile clients"). Bounded.

    scripts/upload_flood.py --port 8080 --pid PID --token T --image big.jpg [--uploads 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import aiohttp


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--image", type=Path, required=True)
    ap.add_argument("--uploads", type=int, default=40)
    ap.add_argument("--path", default="/detect")
    args = ap.parse_args()
    if args.uploads > 200:
        sys.exit("bounded: at most 200 uploads")
    image = args.image.read_bytes()
    boundary = "floodboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {
        "Authorization": f"Bearer {args.token}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(body)),
    }

    async def trickle():
        step = max(1, len(body) // 40)
        for i in range(0, len(body), step):
            yield body[i : i + step]
            await asyncio.sleep(0.05)

    peak = rss_mib(args.pid)
    start = peak
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mib(args.pid))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    async with aiohttp.ClientSession(f"http://127.0.0.1:{args.port}") as session:

        async def one() -> int:
            async with session.post(args.path, data=trickle(), headers=headers) as r:
                await r.read()
                return r.status

        statuses = await asyncio.gather(*(one() for _ in range(args.uploads)))
    done.set()
    await sampler
    counts = {str(s): statuses.count(s) for s in sorted(set(statuses))}
    print(
        json.dumps(
            {
                "upload_bytes": len(body),
                "statuses": counts,
                "rss_start_mib": round(start),
                "rss_peak_mib": round(peak),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
