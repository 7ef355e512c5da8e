"""1:N analyses for scripts/calibrate_scores.py: several enrolment photos per person, the top1–top2
margin, quality-aware acceptance, and the expected stranger-accept rate of a library of N faces.

Imported by calibrate_scores.py (not run on its own); every figure comes from the same analysed
samples, so the tables in docs/SCORES.md share one run.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

LIBRARY_SIZES = (100, 1_000, 10_000)
GROUP_SCORES = (70, 80, 90)


def descriptors(samples: Sequence) -> np.ndarray:
    return np.stack([s.analysis.embedding.astype(np.float64) for s in samples])


def pairwise(emb: np.ndarray) -> np.ndarray:
    sq = (emb**2).sum(1)
    return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * emb @ emb.T, 0.0))


def multi_enrolment(samples: Sequence, dist: np.ndarray, threshold: float, max_k: int = 3) -> list[str]:
    """FRR when a person is enrolled with k photos (accept when the nearest of the k is within the
    threshold), over every probe photo and every k-subset of that person's other photos; and the
    impostor side: the share of (stranger photo, enrolled person) pairs accepted."""
    by_person: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        if not s.identity.startswith("voc:"):
            by_person[s.identity].append(i)
    people = {p: idx for p, idx in by_person.items() if len(idx) >= max_k + 1}
    lines = [f"people with ≥ {max_k + 1} photos: {len(people)} ({sum(map(len, people.values()))} photos)"]
    for k in range(1, max_k + 1):
        rejected = trials = 0
        for idx in people.values():
            for probe in idx:
                others = [j for j in idx if j != probe]
                for gallery in itertools.combinations(others, k):
                    trials += 1
                    rejected += dist[probe, list(gallery)].min() > threshold
        accepted = total = 0
        for person, idx in people.items():
            strangers = [i for i, s in enumerate(samples) if s.identity != person]
            for gallery in itertools.combinations(idx, k):
                nearest = dist[np.ix_(strangers, list(gallery))].min(axis=1)
                accepted += int((nearest <= threshold).sum())
                total += len(strangers)
        lines.append(
            f"  k={k}: FRR {rejected}/{trials} = {rejected / trials:.1%}   "
            f"FAR per enrolled person {accepted}/{total} = {accepted / max(total, 1):.1e}"
        )
    return lines


def margins(samples: Sequence, dist: np.ndarray, mapping, group_score: float) -> list[str]:
    """A 1:N search simulation: the gallery holds one photo of each person with several photos, every
    other photo of theirs is a genuine probe, and every face of a person not in the gallery is a
    stranger probe. Reports top1 and the top1 − top2 margin (top2: the best *other* person)."""
    first: dict[str, int] = {}
    for i, s in enumerate(samples):
        first.setdefault(s.identity, i)
    counts = defaultdict(int)
    for s in samples:
        counts[s.identity] += 1
    gallery = [i for p, i in first.items() if counts[p] >= 2]
    gallery_ids = {samples[i].identity for i in gallery}
    scores = np.asarray(mapping.score(dist[:, gallery]))
    genuine_margin, genuine_miss, strangers_top = [], 0, []
    for i, s in enumerate(samples):
        if i in gallery:
            continue
        row = scores[i]
        order = np.argsort(-row)
        top1, top2 = row[order[0]], row[order[1]]
        if s.identity in gallery_ids:
            right = gallery.index(first[s.identity])
            if order[0] == right and top1 >= group_score:
                genuine_margin.append(top1 - top2)
            else:
                genuine_miss += 1
        else:
            strangers_top.append((top1, top1 - top2))
    gm = np.array(genuine_margin)
    st = np.array(strangers_top)
    lines = [
        f"gallery {len(gallery)} people; genuine probes {len(gm) + genuine_miss} "
        f"(found at ≥ {group_score:.0f}: {len(gm)}), stranger probes {len(st)}",
        "  genuine top1 − top2 margin (points): "
        + ", ".join(f"p{q} {np.percentile(gm, q):.1f}" for q in (1, 5, 10, 50)),
    ]
    for m in (0, 5, 10, 15):
        kept = int((gm >= m).sum())
        stranger_pass = int(((st[:, 0] >= group_score) & (st[:, 1] >= m)).sum())
        lines.append(
            f"  demand margin ≥ {m:>2}: genuine kept {kept}/{len(gm)}, "
            f"strangers accepted {stranger_pass}/{len(st)}"
        )
    return lines


def quality_split(
    samples: Sequence, genuine_pairs: list[tuple[int, int, float]], threshold: float
) -> list[str]:
    """FRR of two-photo genuine pairs by the lower quality of the pair: does quality predict misses?"""
    rows = [
        (min(samples[i].analysis.quality.quality, samples[j].analysis.quality.quality), d)
        for i, j, d in genuine_pairs
    ]
    q = np.array([r[0] for r in rows])
    d = np.array([r[1] for r in rows])
    lines = []
    for lo, hi in ((0.0, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 1.01)):
        sel = (q >= lo) & (q < hi)
        if sel.any():
            lines.append(
                f"  pair quality {lo:.1f}–{min(hi, 1.0):.1f}: {int(sel.sum())} pairs, "
                f"FRR {int((d[sel] > threshold).sum())}/{int(sel.sum())}, "
                f"median distance {np.median(d[sel]):.3f}"
            )
    return lines


def stranger_table(
    far_by_score: dict[int, tuple[int, int]], impostor: np.ndarray, max_distance: dict[int, float]
) -> list[str]:
    """Expected chance that one stranger is accepted by a library of N faces: 1 − (1 − FAR)^N.

    Two per-pair FARs: the measured one (k accepted of n impostor pairs; with k = 0 the rule-of-three
    bound 3/n), and a normal fit of the impostor distances evaluated at the score's distance — an
    extrapolation into a tail the data cannot see, labelled as such."""
    mu, sigma = float(impostor.mean()), float(impostor.std())
    lines = [
        f"normal fit of the impostor distances: mean {mu:.3f}, sd {sigma:.3f}",
        "| groupScore | per-pair FAR measured | normal fit | "
        + " | ".join(f"N = {n:,} (measured / fit)" for n in LIBRARY_SIZES)
        + " |",
    ]
    lines.append("|---|---|---|" + "---|" * len(LIBRARY_SIZES))
    for s in GROUP_SCORES:
        k, n = far_by_score[s]
        far = k / n if k else 3 / n
        fit = 0.5 * math.erfc((mu - max_distance[s]) / (sigma * math.sqrt(2)))
        tag = f"{k}/{n} = {far:.1e}" if k else f"0/{n} (< {far:.1e})"
        cells = []
        for size in LIBRARY_SIZES:
            measured = ("< " if not k else "") + f"{1 - (1 - far) ** size:.1%}"
            cells.append(f"{measured} / {1 - (1 - fit) ** size:.2%}")
        lines.append(f"| {s} | {tag} | {fit:.1e} | " + " | ".join(cells) + " |")
    return lines
