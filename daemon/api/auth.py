"""Who may call what: the IP allow-list, tokens and their scopes, and the per-client rate limits.

Order for every request: client address not allowed → 403; OPTIONS (CORS preflight) passes; a client
with too many failed authentications → 429 + Retry-After; credentials (``Bearer <token>``; on stream
routes also a signed URL or HTTP Basic with a stream-only token) → 401 when missing or malformed, 403
when unknown (counted as a failure); the route's scope (daemon/api/scopes.py) → 403 when the token
lacks it; an expensive route over the client's request rate → 429 + Retry-After. Each answer is in the
format of the route's API family (daemon/api/families.py). Public routes (/health; the blur API when
auth.privacy_without_token on loopback) pass without credentials, and with valid ones get a principal.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from daemon.api.families import error_response
from daemon.api.middleware import Handler
from daemon.api.scopes import PUBLIC, Rule, route_pattern, rule_for
from daemon.appkeys import PRINCIPAL, SCOPES
from daemon.config import Config
from daemon.services.ratelimit import FailureLimiter, TokenBucket, client_key
from daemon.services.stream_links import LinkInvalid, StreamLinks
from daemon.services.tokens import (
    ADMIN,
    STREAM,
    TokenRegistry,
    is_loopback,
    parse_plain,
)

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/health"})
LINKS = web.AppKey("stream_links", StreamLinks)
BEARER = {"WWW-Authenticate": "Bearer"}
STREAM_CHALLENGE = {"WWW-Authenticate": 'Bearer, Basic realm="facegate stream"'}

__all__ = ["PUBLIC_PATHS", "AccessPolicy", "is_loopback", "make_auth_middleware"]


class Denied(Exception):
    """Credentials that were given but do not hold (status, message; counted as a failure or not)."""

    def __init__(self, status: int, message: str, failure: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.failure = failure


@dataclass(frozen=True)
class Identity:
    principal: str
    scopes: frozenset[str]


class AccessPolicy:
    """The tokens, limits and allow-list one app enforces (built from the config, no I/O)."""

    def __init__(self, config: Config, tokens: TokenRegistry, public_paths: Iterable[str] = PUBLIC_PATHS):
        auth = config.auth
        self.tokens = tokens
        self.public_paths = frozenset(public_paths)
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in auth.allow_from)
        self.failures = FailureLimiter(auth.max_failures, auth.failure_window, auth.client_table_size)
        self.expensive = TokenBucket(
            auth.expensive_per_minute / 60, auth.expensive_burst, auth.client_table_size
        )

    def address_allowed(self, address: str | None) -> bool:
        if not self.networks or not address:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip.is_loopback or any(ip in network for network in self.networks)

    def identify(self, request: web.Request, rule: Rule | None) -> Identity | None:
        """The caller's identity; None without credentials; Denied for bad ones."""
        header = request.headers.get("Authorization")
        stream_route = rule is not None and rule.stream_link
        if header is None:
            if stream_route and "sig" in request.query:
                return self._signed_link(request)
            return None
        scheme, _, credential = header.partition(" ")
        credential = credential.strip()
        if scheme.lower() == "bearer" and credential:
            entry = self.tokens.lookup(credential)
            if entry is None:
                raise Denied(403, "Invalid token")
            return Identity(entry.name, entry.granted)
        if scheme.lower() == "basic" and credential and stream_route:
            return self._basic(credential)
        raise Denied(401, "Invalid Authorization header: expected 'Bearer <token>'", failure=False)

    def _basic(self, credential: str) -> Identity:
        try:
            name, _, token = base64.b64decode(credential, validate=True).decode("utf-8").partition(":")
        except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII input
            raise Denied(
                401, "Invalid Authorization header: malformed Basic credentials", failure=False
            ) from None
        entry = self.tokens.lookup(token)
        if entry is None or entry.name != name:
            raise Denied(403, "Invalid stream credentials")
        if entry.scopes != {STREAM}:
            raise Denied(403, "Basic credentials are accepted only for stream-only tokens", failure=False)
        return Identity(entry.name, frozenset({STREAM}))

    def _signed_link(self, request: web.Request) -> Identity:
        links = request.app.get(LINKS)
        if links is None:
            raise Denied(503, "signed URLs are not available yet", failure=False)
        try:
            principal = links.verify(request.path, request.query)
        except LinkInvalid as exc:
            raise Denied(403, str(exc), failure="expired" not in str(exc)) from None
        entry = self.tokens.by_name(principal)
        if entry is None or STREAM not in entry.granted:
            raise Denied(
                403, "signed URL revoked (its token is gone or lost the stream scope)", failure=False
            )
        return Identity(principal, frozenset({STREAM}))


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def make_auth_middleware(policy: AccessPolicy) -> Middleware:
    @web.middleware
    async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not policy.address_allowed(request.remote):
            return error_response(request, 403, "client address not allowed")
        if request.method == "OPTIONS":  # CORS preflight: never carries credentials
            return await handler(request)
        pattern = route_pattern(request)
        rule = rule_for(request.method, pattern) if pattern is not None else None
        public = request.path in policy.public_paths or (rule is not None and PUBLIC in rule.scopes)
        client = client_key(request.remote)
        offers = "Authorization" in request.headers or "sig" in request.query
        blocked = policy.failures.retry_after(client)
        if blocked is not None and (offers or not public):
            return error_response(request, 429, "too many failed authentications", _retry_after(blocked))
        challenge = STREAM_CHALLENGE if rule is not None and rule.stream_link else BEARER
        identity = None
        try:
            identity = policy.identify(request, rule)
        except Denied as exc:
            if exc.failure:
                policy.failures.failed(client)
                log.info("failed authentication from %s: %s", request.remote, exc.message)
            if not public:
                headers = challenge if exc.status == 401 else None
                return error_response(request, exc.status, exc.message, headers)
        if identity is None and not public:
            return error_response(request, 401, "Missing Authorization header", challenge)
        if identity is not None:
            request[PRINCIPAL] = identity.principal
            request[SCOPES] = identity.scopes
            if rule is not None and not public and not identity.scopes & {*rule.scopes, ADMIN}:
                needed = " or ".join(repr(s) for s in rule.scopes)
                return error_response(request, 403, f"this token lacks the scope {needed}")
        if rule is not None and rule.expensive:  # anonymous callers of exempt routes too
            wait = policy.expensive.take(client)
            if wait is not None:
                return error_response(request, 429, "too many requests, retry later", _retry_after(wait))
        return await handler(request)

    return auth_middleware


def is_admin(request: web.Request) -> bool:
    return ADMIN in request.get(SCOPES, frozenset())


def parse_tokens(text: str, source: str, scopes: Iterable[str] = (ADMIN,)) -> TokenRegistry:
    """A registry from the old plain format, every token with ``scopes`` (tests and tools)."""
    return TokenRegistry.of((name, token, scopes) for name, token in parse_plain(text, source))
