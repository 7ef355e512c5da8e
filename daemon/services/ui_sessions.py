"""Sessions of the web admin page: a pasted API token becomes a short-lived session.

The browser only ever holds a random session id (an HttpOnly cookie) and a per-session CSRF token; the
API token stays on the device. Each request of a signed-in page is then answered exactly as if it had
sent ``Authorization: Bearer <token>``, so the token's own rights (and their revocation) apply
unchanged. Sessions live in memory only: a restart signs everyone out, which is the safe default for
a device on a wall. The store is bounded: beyond ``max_sessions`` the oldest session is dropped.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Session:
    id: str
    token: str
    principal: str
    csrf: str
    expires: float  # on the store's clock

    def csrf_matches(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(), self.csrf.encode())


class SessionStore:
    def __init__(
        self, ttl_seconds: float, max_sessions: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if ttl_seconds <= 0 or max_sessions < 1:
            raise ValueError("ttl_seconds must be > 0 and max_sessions >= 1")
        self._ttl = ttl_seconds
        self._max = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, token: str, principal: str) -> Session:
        session = Session(
            id=secrets.token_urlsafe(32),
            token=token,
            principal=principal,
            csrf=secrets.token_urlsafe(24),
            expires=self._clock() + self._ttl,
        )
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > self._max:
                self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id; an expired one is removed and None is returned."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if session.expires <= self._clock():
                del self._sessions[session_id]
                return None
            return session

    def delete(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def seconds_left(self, session: Session) -> float:
        return max(0.0, session.expires - self._clock())

    def __len__(self) -> int:
        return len(self._sessions)
