"""TemplateIndex: search and nearest against a float64 brute force, updates, growth, threads."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from daemon.library.index import ALL_GROUPS, TemplateIndex
from daemon.library.rwlock import ReadWriteLock

DIM = 24
EPS = 1e-4  # float32 distances vs float64 brute force


def random_data(n: int, seed: int = 0, groups: int = 8):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, DIM))
    x *= (rng.uniform(0.5, 2.0, n) / np.linalg.norm(x, axis=1))[:, None]  # raw, not unit length
    masks = rng.integers(0, 1 << groups, n).astype(np.uint64)
    ids = rng.choice(10 * n, n, replace=False) + 1
    return ids, x.astype(np.float32), masks, rng


def brute_force(ids, raw, masks, q, thresholds, top_k):
    d = np.linalg.norm(raw.astype(np.float64) - q.astype(np.float64), axis=1)
    ok = np.zeros(len(ids), bool)
    for mask, max_d in thresholds:
        ok |= ((masks & np.uint64(mask)) != 0) & (d <= max_d)
    hits = sorted((float(d[i]), int(ids[i])) for i in np.flatnonzero(ok))
    return [(i, dist) for dist, i in hits[:top_k]], d


def assert_same_hits(got, expected, all_d, ids, thresholds):
    """Equal up to float32 rounding: same ids where distances are not within EPS of a tie/limit."""
    assert len(got) == len(expected) or any(
        abs(dist - max_d) < EPS for dist in all_d for _, max_d in thresholds
    )
    for (gid, gd), (eid, ed) in zip(got, expected, strict=False):
        assert gd == pytest.approx(ed, abs=EPS)
        if gid != eid:
            assert gd == pytest.approx(all_d[list(ids).index(gid)], abs=EPS)
    # distances are non-decreasing
    assert all(a[1] <= b[1] + 1e-7 for a, b in itertools.pairwise(got))


def filled(n: int = 3000, seed: int = 0, capacity: int = 16):
    ids, raw, masks, rng = random_data(n, seed)
    index = TemplateIndex(DIM, capacity=capacity)
    index.add_many(ids, raw, masks)
    return index, ids, raw, masks, rng


def test_search_matches_brute_force_with_masks_and_thresholds():
    index, ids, raw, masks, rng = filled()
    for trial in range(40):
        # Queries near an enrolled template, so that thresholds matter.
        j = int(rng.integers(len(raw)))
        base = raw[j]
        q = (base + rng.standard_normal(DIM).astype(np.float32) * 0.15 * (trial % 4)).astype(np.float32)
        thresholds = [(int(rng.integers(1, 256)), float(rng.uniform(0.3, 1.6))) for _ in range(1 + trial % 3)]
        top_k = 1 + trial % 5
        expected, all_d = brute_force(ids, raw, masks, q, thresholds, top_k)
        got = index.search(q, thresholds, top_k)
        assert_same_hits(got, expected, all_d, ids, thresholds)
        any_mask = np.uint64(np.bitwise_or.reduce([m for m, _ in thresholds]))
        if trial % 4 == 0 and masks[j] & any_mask:  # the query IS template j: found at distance 0
            assert got[0] == (int(ids[j]), pytest.approx(0.0, abs=1e-6))


def test_search_threshold_is_per_mask():
    index = TemplateIndex(2)
    index.add(1, np.array([1.0, 0.0], np.float32), 0b01)  # distance 1 from q
    index.add(2, np.array([0.0, 3.0], np.float32), 0b10)  # distance 3 from q
    index.add(3, np.array([0.0, 0.5], np.float32), 0b00)  # in no group: never found by search
    q = np.array([0.0, 0.0], np.float32)
    assert [i for i, _ in index.search(q, [(0b01, 1.01), (0b10, 2.99)], 5)] == [1]
    assert [i for i, _ in index.search(q, [(0b01, 0.99), (0b10, 3.01)], 5)] == [2]
    assert [i for i, _ in index.search(q, [(0b11, 3.2)], 5)] == [1, 2]
    assert [i for i, _ in index.search(q, [(0b11, 3.2)], 1)] == [1]
    assert index.search(q, [(0b11, -1.0)], 5) == [] and index.search(q, [], 5) == []
    assert index.search(q, [(0, 10.0)], 5) == [] and index.search(q, [(0b11, 10.0)], 0) == []
    dist = dict(index.search(q, [(ALL_GROUPS, 10.0)], 5))
    assert dist[1] == pytest.approx(1.0, abs=1e-6) and dist[2] == pytest.approx(3.0, abs=1e-6)


def test_distance_uses_raw_norms_not_cosine():
    index = TemplateIndex(2)
    index.add(1, np.array([2.0, 0.0], np.float32), 1)  # same direction as q, different length
    (hit,) = index.nearest(np.array([0.5, 0.0], np.float32))
    assert hit == (1, pytest.approx(1.5, abs=1e-6))


def test_nearest_matches_brute_force():
    index, ids, raw, masks, rng = filled(seed=1)
    for _ in range(20):
        q = rng.standard_normal(DIM).astype(np.float32)
        d = np.linalg.norm(raw.astype(np.float64) - q, axis=1)
        got = index.nearest(q, None, 5)
        assert [i for i, _ in got] == [int(ids[i]) for i in np.argsort(d)[:5]]
        mask = int(rng.integers(1, 256))
        sel = np.flatnonzero(masks & np.uint64(mask))
        got = index.nearest(q, mask, 3)
        assert [i for i, _ in got] == [int(ids[i]) for i in sel[np.argsort(d[sel])[:3]]]
        np.testing.assert_allclose([g for _, g in got], np.sort(d[sel])[:3], atol=EPS)


def test_removal_by_swap_keeps_search_correct():
    index, ids, raw, masks, rng = filled(n=500, seed=2)
    gone = rng.choice(ids, 250, replace=False)
    assert index.remove([*gone.tolist(), 10**9]) == 250  # unknown ids are ignored
    keep = ~np.isin(ids, gone)
    ids, raw, masks = ids[keep], raw[keep], masks[keep]
    assert len(index) == 250 and all(int(i) in index for i in ids) and int(gone[0]) not in index
    snap_ids, snap_raw, snap_masks = index.snapshot()
    order = np.argsort(ids)
    np.testing.assert_array_equal(snap_ids, ids[order])
    np.testing.assert_allclose(snap_raw, raw[order], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(snap_masks, masks[order])
    for _ in range(10):
        q = rng.standard_normal(DIM).astype(np.float32)
        expected, all_d = brute_force(ids, raw, masks, q, [(0xFF, 2.0)], 5)
        assert_same_hits(index.search(q, [(0xFF, 2.0)], 5), expected, all_d, ids, [(0xFF, 2.0)])


def test_grows_by_doubling_and_keeps_content():
    index = TemplateIndex(DIM, capacity=4)
    ids, raw, masks, _ = random_data(100, seed=3)
    for i, r, m in zip(ids, raw, masks, strict=True):
        index.add(int(i), r, int(m))
    assert len(index) == 100 and index.capacity == 128
    _, snap_raw, _ = index.snapshot()
    np.testing.assert_allclose(snap_raw, raw[np.argsort(ids)], rtol=1e-5, atol=1e-6)
    assert index.nbytes == 128 * (DIM * 4 + 4 + 4 + 8 + 8)


def test_set_mask_and_top_bit():
    index = TemplateIndex(2)
    index.add(7, np.array([1.0, 1.0], np.float32), 1)
    q = np.array([1.0, 1.0], np.float32)
    index.set_mask(7, 1 << 63)
    assert index.search(q, [(1, 1.0)], 1) == []
    assert index.search(q, [(1 << 63, 1.0)], 1)[0][0] == 7
    index.set_mask(12345, 1)  # not indexed (e.g. another model's face): ignored
    with pytest.raises(ValueError):
        index.set_mask(7, 1 << 64)


def test_update_is_all_or_nothing():
    index = TemplateIndex(3)
    index.add(1, np.array([1, 0, 0], np.float32), 1)
    index.add(2, np.array([0, 1, 0], np.float32), 1)
    before = index.snapshot()
    bad_updates = [
        dict(added=[(3, np.array([0, 0, 1], np.float32), 1), (4, np.zeros(3, np.float32), 1)], removed=[1]),
        dict(added=[(5, np.array([0, 0, np.nan], np.float32), 1)], removed=[2]),
        dict(added=[(6, np.ones(4, np.float32), 1)], masks={1: 3}),
        dict(added=[(2, np.ones(3, np.float32), 1)], removed=[1]),  # 2 already present
        dict(added=[(8, np.ones(3, np.float32), 1), (8, np.ones(3, np.float32), 1)]),
        dict(masks={1: -1}, removed=[1]),
    ]
    for update in bad_updates:
        with pytest.raises(ValueError):
            index.update(**update)
        after = index.snapshot()
        for a, b in zip(before, after, strict=True):
            np.testing.assert_array_equal(a, b)
    # Removing and re-adding an id in one update replaces it.
    index.update(added=[(2, np.array([0, 0, 2], np.float32), 4)], removed=[2], masks={1: 2})
    ids, raw, masks = index.snapshot()
    assert ids.tolist() == [1, 2] and masks.tolist() == [2, 4]
    np.testing.assert_allclose(raw[1], [0, 0, 2])


def test_add_many_rejects_bad_input_and_clear_empties():
    index = TemplateIndex(DIM)
    with pytest.raises(ValueError):
        index.add_many([1, 2], np.ones((2, DIM + 1), np.float32), [1, 1])
    with pytest.raises(ValueError):
        index.add_many([1, 2], np.ones((2, DIM), np.float32), [1])
    assert len(index) == 0
    index.add_many([], np.zeros((0, 0), np.float32), [])
    index.add_many([1, 2], np.ones((2, DIM), np.float32), [1, 1])
    with pytest.raises(ValueError):
        index.add_many([2, 3], np.ones((2, DIM), np.float32), [1, 1])
    assert len(index) == 2
    index.clear()
    assert len(index) == 0 and 1 not in index
    assert index.search(np.ones(DIM, np.float32), [(1, 10.0)], 3) == []
    assert index.nearest(np.ones(DIM, np.float32)) == []
    index.add(1, np.ones(DIM, np.float32), 1)  # ids are free again after clear
    assert len(index) == 1


@pytest.mark.parametrize("query", [np.ones(DIM + 1), np.full(DIM, np.inf), np.ones((2, DIM))])
def test_bad_queries_are_refused(query):
    index, *_ = filled(n=10)
    with pytest.raises(ValueError):
        index.search(query, [(1, 1.0)], 1)
    with pytest.raises(ValueError):
        index.nearest(query)


def test_searches_concurrent_with_updates_see_consistent_rows():
    """Every hit's distance is the true distance of that id's template, whatever ran meanwhile."""
    ids, raw, masks, _ = random_data(4000, seed=4)
    true = {int(i): r.astype(np.float64) for i, r in zip(ids, raw, strict=True)}
    index = TemplateIndex(DIM, capacity=8)
    index.add_many(ids[:1000], raw[:1000], masks[:1000])
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(start: int) -> None:
        try:
            for k in range(start, 4000, 2):
                index.add(int(ids[k]), raw[k], int(masks[k]))
                if k % 3 == 0:
                    index.remove([int(ids[k - 500])])
                if k % 5 == 0:
                    index.set_mask(int(ids[k - 1]), 0xFF)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                q = rng.standard_normal(DIM).astype(np.float32)
                for face_id, dist in index.search(q, [(0xFF, 3.0)], 5) + index.nearest(q, None, 3):
                    assert dist == pytest.approx(np.linalg.norm(true[face_id] - q), abs=EPS)
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
    writers = [threading.Thread(target=writer, args=(s,)) for s in (1000, 1001)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    removed = {int(ids[k - 500]) for k in range(1000, 4000) if k % 3 == 0}
    snap_ids, snap_raw, _ = index.snapshot()
    assert set(snap_ids.tolist()) == {int(i) for i in ids} - removed
    for i, r in zip(snap_ids, snap_raw, strict=True):
        np.testing.assert_allclose(r, true[int(i)], rtol=1e-5, atol=1e-6)


def test_rwlock_lets_readers_share_and_writers_exclude():
    lock = ReadWriteLock()
    inside = threading.Barrier(2, timeout=5)
    events: list[str] = []

    def read() -> None:
        with lock.read():
            inside.wait()  # both readers are inside at the same time, or this times out
            events.append("r")

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    for t in readers:
        t.join()
    assert events == ["r", "r"]

    holding = threading.Event()
    release = threading.Event()

    def write() -> None:
        with lock.write():
            holding.set()
            release.wait(5)
            events.append("w")

    w = threading.Thread(target=write)
    w.start()
    holding.wait(5)
    r = threading.Thread(target=lambda: (lock.read().__enter__(), events.append("r2")))
    r.start()
    r.join(0.2)
    assert r.is_alive() and events[-1] == "r"  # the reader waits for the writer
    release.set()
    w.join()
    r.join(5)
    assert events[-2:] == ["w", "r2"]
