"""The face tracker that keeps faces covered between and through missed detections.

Synthetic faces move along known paths; the tracker sees (noisy) detections of them, and its
boxes are checked against where the faces really are.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from daemon.camera.tracker import Box, FaceTracker, TrackerConfig

FPS = 30.0


def box_at(cx: float, cy: float, w: float, h: float) -> Box:
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def contains(outer: Box, inner: Box, slack: float = 1e-6) -> bool:
    return (
        outer[0] <= inner[0] + slack
        and outer[1] <= inner[1] + slack
        and outer[2] >= inner[2] - slack
        and outer[3] >= inner[3] - slack
    )


def covered(boxes: list[Box], true_box: Box) -> bool:
    return any(contains(b, true_box) for b in boxes)


def linear_face(t: float) -> Box:
    return box_at(100 + 300 * t, 200 - 60 * t, 80 + 20 * t, 96 + 24 * t)


def test_constant_velocity_is_predicted_between_and_after_detections() -> None:
    bare = TrackerConfig(margin=0, margin_growth=0, motion_margin=0, cover_last_seen=False)
    tracker = FaceTracker(bare)
    for k in range(4):
        t = k / 10
        tracker.update([(*linear_face(t), 0.9)], t)
    assert tracker.track_count == 1
    for t in (0.35, 0.25, 0.42):  # after the last detection, between two, further ahead
        (predicted,) = tracker.boxes_at(t)
        assert np.allclose(predicted, linear_face(t), atol=1.0), t
    (view,) = tracker.tracks()
    assert view.velocity == pytest.approx((300.0, -60.0), abs=1.0)
    assert view.hits == 4 and view.score == pytest.approx(0.9)


def test_missed_detections_keep_an_enlarged_box_over_the_moving_face() -> None:
    tracker = FaceTracker()
    for k in range(10):
        tracker.update([linear_face(k / FPS)], k / FPS)
    (at_detection,) = tracker.boxes_at(9 / FPS)
    widths = []
    for k in range(10, 16):  # the detector runs but misses the face for six frames
        t = k / FPS
        tracker.update([], t)
        boxes = tracker.boxes_at(t)
        assert len(boxes) == 1 and covered(boxes, linear_face(t)), k
        widths.append(boxes[0][2] - boxes[0][0])
    assert widths[0] > at_detection[2] - at_detection[0]
    assert widths == sorted(widths)  # the longer the miss, the larger the box
    tracker.update([linear_face(16 / FPS)], 16 / FPS)  # found again: the same track picks it up
    assert tracker.track_count == 1 and tracker.tracks()[0].hits == 11


def test_two_crossing_faces_keep_their_own_tracks() -> None:
    """Two faces pass each other at 600 px/s, detected every other frame (40 px apart per face
    between detections, 20 px apart vertically when they meet)."""

    def face_a(t: float) -> Box:
        return box_at(60 + 600 * t, 120, 80, 80)

    def face_b(t: float) -> Box:
        return box_at(660 - 600 * t, 140, 76, 76)

    tracker = FaceTracker()
    ids_seen = set()
    for k in range(31):  # one second; they meet at t = 0.5
        t = k / FPS
        if k % 2 == 0:
            tracker.update([face_b(t), face_a(t)] if k % 4 else [face_a(t), face_b(t)], t)
            assert tracker.track_count == 2, k
            ids_seen |= {v.id for v in tracker.tracks()}
        boxes = tracker.boxes_at(t)
        assert covered(boxes, face_a(t)) and covered(boxes, face_b(t)), k
    assert ids_seen == {1, 2}  # no track was lost and restarted
    by_id = {v.id: v for v in tracker.tracks()}
    assert by_id[1].velocity[0] > 500 and by_id[2].velocity[0] < -500
    assert np.allclose(by_id[1].box, face_a(1.0), atol=3.0)
    assert np.allclose(by_id[2].box, face_b(1.0), atol=3.0)


def test_track_expires_after_hold_seconds() -> None:
    tracker = FaceTracker(TrackerConfig(hold_seconds=1.0))
    tracker.update([box_at(100, 100, 50, 50)], 10.0)
    tracker.update([], 10.9)
    assert tracker.track_count == 1 and len(tracker.boxes_at(10.95)) == 1
    assert tracker.boxes_at(11.05) == []  # past the hold, not covered any more
    tracker.update([], 11.05)
    assert tracker.track_count == 0
    tracker.update([box_at(100, 100, 50, 50)], 11.1)
    assert [v.id for v in tracker.tracks()] == [2]  # a new track, not the old one revived


def test_box_always_contains_a_moving_face_detected_every_other_frame() -> None:
    """A face that walks along a curve and comes closer, detected with ±2 px jitter on even frames
    only: every frame, detected or not, must be covered."""
    rng = np.random.default_rng(7)

    def face(t: float) -> Box:
        cx = 80 + 150 * t + 40 * math.sin(math.pi * t)
        cy = 240 + 30 * math.sin(2 * math.pi * 0.3 * t)
        size = 60 + 15 * t
        return box_at(cx, cy, size, size * 1.2)

    tracker = FaceTracker()
    enlargement = []
    for k in range(int(3 * FPS)):
        t = k / FPS
        true_box = face(t)
        if k % 2 == 0:
            noisy = tuple(v + rng.uniform(-2, 2) for v in true_box)
            tracker.update([(*noisy, 0.8)], t)
        boxes = tracker.boxes_at(t, frame_size=(1280, 720))
        assert len(boxes) == 1 and covered(boxes, true_box), f"frame {k} uncovered"
        enlargement.append((boxes[0][2] - boxes[0][0]) / (true_box[2] - true_box[0]))
    assert tracker.track_count == 1
    # Covered by boxes of sensible size, not the whole frame (1.2 is the bare 10 % margin).
    assert max(enlargement[2:]) < 1.6 and max(enlargement) < 1.7


def test_face_that_stops_and_turns_back_stays_covered() -> None:
    """Walks right at 250 px/s, stops dead for half a second, walks back: the motion model is
    wrong at both changes, and the margin and the last detected box must absorb it."""
    rng = np.random.default_rng(3)

    def face(t: float) -> Box:
        cx = 100 + 250 * t if t < 1 else (350 if t < 1.5 else 350 - 250 * (t - 1.5))
        return box_at(cx, 240, 70, 84)

    tracker = FaceTracker()
    for k in range(int(2.5 * FPS)):
        t = k / FPS
        if k % 2 == 0:
            tracker.update([tuple(v + rng.uniform(-2, 2) for v in face(t))], t)
        assert covered(tracker.boxes_at(t), face(t)), f"frame {k} uncovered"
    assert tracker.track_count == 1


def test_face_that_stops_while_undetected_stays_covered() -> None:
    """The detector loses a walking face just as it stops (say, it turns away): the prediction
    runs on, and the last detected box keeps the face covered until the track expires."""

    def face(t: float) -> Box:
        return box_at(100 + 400 * min(t, 1.0), 240, 70, 84)

    tracker = FaceTracker()
    for k in range(int(1.8 * FPS)):
        t = k / FPS
        if t <= 1.0:
            tracker.update([face(t)], t)
        boxes = tracker.boxes_at(t)
        assert covered(boxes, face(t)), f"frame {k} uncovered"
    assert tracker.boxes_at(2.01) == []  # held for hold_seconds after the last detection


def test_small_fast_face_is_followed_by_centre_distance() -> None:
    def face(t: float) -> Box:
        return box_at(40 + 420 * t, 60, 16, 16)  # 14 px a frame: its boxes barely overlap

    tracker = FaceTracker()
    for k in range(20):
        t = k / FPS
        tracker.update([face(t)], t)
        mid = t + 0.5 / FPS
        # Seen once, its speed (26 face sizes/s) is beyond what a new track assumes; from the
        # second detection on, its velocity is known and the face stays covered.
        assert k == 0 or covered(tracker.boxes_at(mid), face(mid)), k
    assert tracker.track_count == 1


def test_boxes_are_clipped_to_the_frame_and_bad_detections_ignored() -> None:
    tracker = FaceTracker()
    tracker.update([(-10, -10, 30, 30, 0.9), (5, 5, 5, 9), (float("nan"), 0, 1, 1)], 0.0)
    assert tracker.track_count == 1
    (box,) = tracker.boxes_at(0.0, frame_size=(640, 480))
    assert box[0] == 0 and box[1] == 0 and 30 < box[2] < 640
    assert tracker.boxes_at(0.0, frame_size=(640, 480)) != tracker.boxes_at(0.0)
    with pytest.raises(ValueError):
        tracker.update([(1, 2, 3)], 0.1)
    with pytest.raises(ValueError):
        TrackerConfig(alpha=0)
