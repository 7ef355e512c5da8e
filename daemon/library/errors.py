"""Exceptions of the face library.

Each names the offending identifier in an attribute so the API layer can map it to its wire code
(104204, 104311, …) without parsing messages. Storage failures (a locked or broken database file) are
not LibraryErrors: they propagate as sqlite3 errors and are answered as internal errors.
"""

from __future__ import annotations

from daemon.errors import FacegateError


class LibraryError(FacegateError):
    """Root of the face library's exceptions: the request was understood but cannot be applied."""


class ImageAlreadyExists(LibraryError):
    """An image with this imageId is already registered (104204 FACE_ALREADY_EXIST)."""

    def __init__(self, image_id: str) -> None:
        super().__init__(f"image {image_id!r} is already registered")
        self.image_id = image_id


class ImageNotFound(LibraryError):
    """No image with this imageId."""

    def __init__(self, image_id: str) -> None:
        super().__init__(f"no image {image_id!r}")
        self.image_id = image_id


class FaceNotFound(LibraryError):
    """No face with this faceToken (not to be confused with "no face detected in an image")."""

    def __init__(self, face_token: str) -> None:
        super().__init__(f"no face {face_token!r}")
        self.face_token = face_token


class GroupNotFound(LibraryError):
    """No group with this groupId (104311 GROUP_ID_NOT_EXIST)."""

    def __init__(self, group_id: str) -> None:
        super().__init__(f"no group {group_id!r}")
        self.group_id = group_id


class GroupIdConflict(LibraryError):
    """A group with this groupId already exists (104310 GROUP_ID_CONFLICT)."""

    def __init__(self, group_id: str) -> None:
        super().__init__(f"group {group_id!r} already exists")
        self.group_id = group_id


class GroupNameConflict(LibraryError):
    """Another group already has this name (104300 GROUP_NAME_CONFLICT)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"group name {name!r} is already used")
        self.name = name


class GroupOverLimit(LibraryError):
    """The library already holds the maximum number of groups (104302 GROUP_OVER_LIMIT)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} groups")
        self.limit = limit


class GroupInUse(LibraryError):
    """The group cannot be deleted: it is `default` or searched by a running pipeline (104304)."""

    def __init__(self, group_id: str) -> None:
        super().__init__(f"group {group_id!r} is in use")
        self.group_id = group_id
