"""Plain values the face library returns, and the change set it hands to the in-memory index."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

MAX_GROUPS = 64  # one bit of the index's uint64 group mask per group
DEFAULT_GROUP = "default"
DEFAULT_SCORE = 80
BIND_ERROR_UNKNOWN_GROUP = "GROUP_ID_NOT_EXIST"


class Rect(NamedTuple):
    """A face rectangle in pixels of the uploaded image."""

    left: int
    top: int
    right: int
    bottom: int


@dataclass(frozen=True)
class FaceRecord:
    """What registering a face returns (1.1)."""

    id: int
    face_token: str
    image_id: str
    rect: Rect


@dataclass(frozen=True)
class FaceSummary:
    """One row of a face listing (1.2, 2.4)."""

    id: int
    image_id: str
    face_token: str
    description: str
    name: str
    gender: str


@dataclass(frozen=True)
class FaceDetail:
    """Everything about one face (1.5) and what a search hit shows (3.2)."""

    id: int
    face_token: str
    image_id: str
    description: str
    name: str
    gender: str
    rect: Rect
    group_ids: list[str]
    crop_jpeg: bytes


class ImageData(NamedTuple):
    """An original image and the tokens of its faces (1.6)."""

    original: bytes
    face_tokens: list[str]


@dataclass(frozen=True)
class GroupInfo:
    """One group as listed (2.1)."""

    group_id: str
    type: str
    name: str
    score: int
    face_count: int


@dataclass(frozen=True)
class GroupRef:
    """What a search needs to know of a group: its bit in the index mask and its threshold score."""

    group_id: str
    mask: int
    score: int


@dataclass(frozen=True)
class BindResult:
    """Outcome of binding/unbinding one face to several groups (2.5, 2.6); partial success allowed."""

    total: int
    success: int
    fail: int
    fail_info: list[tuple[str, str]]  # (group_id, error name)


@dataclass(frozen=True)
class DeleteGroupResult:
    """What a group deletion did, for logs and tests."""

    group_deleted: bool
    faces_unbound: int
    faces_deleted: int
    images_deleted: int


@dataclass
class IndexChange:
    """What a committed transaction changed that the in-memory index must mirror.

    Built inside the transaction, applied only after COMMIT succeeded, so a rolled-back operation
    never touches the index. ``added`` holds (face row id, model id, raw template, group mask);
    ``masks`` maps face row id → its new full group mask.
    """

    added: list[tuple[int, str, np.ndarray, int]] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    masks: dict[int, int] = field(default_factory=dict)
    cleared: bool = False

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.masks or self.cleared)


def thresholds_by_score(groups: list[GroupRef]) -> list[tuple[int, int]]:
    """(combined mask, score) per distinct score, lowest score first.

    A search turns each score into a maximum distance and passes the pairs to TemplateIndex.search:
    a face then passes when it is close enough for the lowest score among the searched groups it
    is bound to (spec 3.2 Decision), because that pair has the largest distance allowance.
    """
    by_score: dict[int, int] = {}
    for g in groups:
        by_score[g.score] = by_score.get(g.score, 0) | g.mask
    return sorted(((mask, score) for score, mask in by_score.items()), key=lambda p: p[1])
