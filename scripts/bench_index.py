#!/usr/bin/env python3
"""Benchmark the 1:N TemplateIndex: search latency (one thread) and memory at 1k/10k/100k faces.

Templates are random unit vectors scaled to norm 1.37 (about the norm of a dlib descriptor), each
bound to a random subset of 8 groups; queries are random too, so almost nothing passes the
threshold and the time measured is the full scan. Usage: scripts/bench_index.py [--dim 128]
[--sizes 1000 10000 100000] [--queries 300]. Figures go to docs/BENCHMARKS.md by hand.
"""

from __future__ import annotations

import os

# One BLAS/OpenMP thread, as on a busy Pi where other workers hold the other cores. Must be set
# before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from daemon.library.index import TemplateIndex  # noqa: E402

NORM = 1.37


def random_templates(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x *= NORM / np.linalg.norm(x, axis=1, keepdims=True)
    return x


def percentile_ms(times: list[float], q: float) -> float:
    return float(np.percentile(np.array(times), q) * 1000.0)


def bench(n: int, dim: int, queries: int, rng: np.random.Generator) -> dict[str, float]:
    index = TemplateIndex(dim)
    templates = random_templates(rng, n, dim)
    masks = rng.integers(1, 256, size=n, dtype=np.uint64)
    index.add_many(np.arange(1, n + 1), templates, masks)
    qs = random_templates(rng, queries, dim)
    # Two thresholds (two distinct group scores), top 5: the shape of a typical 3.2 search.
    thresholds = [(0b0000_0011, 0.60), (0b0011_0000, 0.55)]
    for q in qs[:10]:  # warm-up
        index.search(q, thresholds, 5)
    # Reference: a bare row-major float32 matrix–vector product over as many rows (memory-bound);
    # the index stores templates column-wise, which BLAS streams faster (see index.py).
    unit = templates / NORM
    search_times, nearest_times, floor_times = [], [], []
    for q in qs:
        t0 = time.perf_counter()
        unit @ q
        floor_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        index.search(q, thresholds, 5)
        search_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        index.nearest(q, None, 5)
        nearest_times.append(time.perf_counter() - t0)
    return {
        "n": n,
        "search_median_ms": percentile_ms(search_times, 50),
        "search_p99_ms": percentile_ms(search_times, 99),
        "nearest_median_ms": percentile_ms(nearest_times, 50),
        "nearest_p99_ms": percentile_ms(nearest_times, 99),
        "matvec_median_ms": percentile_ms(floor_times, 50),
        "index_mib": index.nbytes / 2**20,
        "live_mib": n * (dim * 4 + 4 + 4 + 8 + 8) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(
        f"# {platform.machine()} {platform.processor() or ''} python {platform.python_version()}"
        f" numpy {np.__version__}, dim {args.dim}, {args.queries} queries, 1 BLAS thread"
    )
    print(
        "| faces | search median ms | search p99 ms | nearest median ms | nearest p99 ms |"
        " row-major matvec median ms | index MiB (allocated) | MiB (live rows) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        r = bench(n, args.dim, args.queries, rng)
        print(
            f"| {n} | {r['search_median_ms']:.3f} | {r['search_p99_ms']:.3f} | {r['nearest_median_ms']:.3f}"
            f" | {r['nearest_p99_ms']:.3f} | {r['matvec_median_ms']:.3f} | {r['index_mib']:.1f}"
            f" | {r['live_mib']:.1f} |"
        )


if __name__ == "__main__":
    main()
