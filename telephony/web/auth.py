"""Who may read the call API and the agent desk: bearer tokens per role, and the desk's session cookie.

Two roles, each with one token from the settings: ``agent`` (``VOICE_AGENT_AGENT_TOKEN``) reads calls; ``admin``
(``VOICE_AGENT_ADMIN_TOKEN``) may do everything an agent may, and also delete, purge, export and forget a caller.
With no token configured every request is refused: the API and the desk are closed, never open.

A browser's ``EventSource`` cannot send an ``Authorization`` header, so the desk exchanges its token once for a
random session id in an HttpOnly, SameSite=Strict cookie (``POST /desk/login``); the server keeps the session's role
and expiry. Every protected route accepts either the bearer header or that cookie; the browser call's WebSocket
(`telephony.browser.router`) takes the cookie only (`desk_session_role`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from telephony.settings import Settings

SESSION_COOKIE = "voice_agent_desk"
"""Name of the desk's session cookie."""
SESSION_TTL_S = 8 * 3600
"""How long a desk login lasts: one shift; then the agent logs in again."""
MAX_SESSIONS = 1000
"""Desk sessions kept at once; beyond this the oldest is logged out (bounds memory against login floods)."""
MAX_TOKEN_CHARS = 4096
"""Longer presented tokens are refused without comparing (no configured token is that long)."""

BEARER_SCHEME = "AgentOrAdminToken"
"""The OpenAPI name of the call API's bearer scheme (the metrics token is a scheme of its own)."""
_bearer = HTTPBearer(
    scheme_name=BEARER_SCHEME,
    auto_error=False,
    description="VOICE_AGENT_AGENT_TOKEN (the agent role: read calls) or VOICE_AGENT_ADMIN_TOKEN (the admin role: "
    "also delete, purge, export and forget a caller; the routes that need it say so)",
)
_session_cookie = APIKeyCookie(
    name=SESSION_COOKIE, scheme_name="DeskSession", auto_error=False, description="set by POST /desk/login"
)
_Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
_SessionId = Annotated[str | None, Depends(_session_cookie)]


class Role(StrEnum):
    """What a token or a desk session may do."""

    AGENT = "agent"
    """Read live and finished calls."""
    ADMIN = "admin"
    """Everything an agent may, and also purge, export and forget a caller."""

    def includes(self, other: Role) -> bool:
        """Whether this role may do what `other` may (admin includes agent)."""
        return self is Role.ADMIN or self is other


def _digest(token: str) -> bytes:
    # Comparing fixed-size digests keeps even the token's length out of the timing.
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(slots=True)
class _Session:
    role: Role
    expires_at: float
    """`time.monotonic()` after which the session is no longer accepted."""


class DeskSessions:
    """Desk logins: random session ids mapped to a role and an expiry, in memory (a restart logs everyone out).

    Only a digest of each id is kept, so neither a memory dump nor the dict's lookup timing gives a usable id away.
    """

    def __init__(
        self,
        ttl_s: float = SESSION_TTL_S,
        max_sessions: int = MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self._max = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[bytes, _Session] = OrderedDict()

    def create(self, role: Role) -> str:
        """Start a session for `role`; returns the id for the cookie (256 random bits)."""
        self._expire()
        session_id = secrets.token_urlsafe(32)
        self._sessions[_digest(session_id)] = _Session(role, self._clock() + self.ttl_s)
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return session_id

    def role_of(self, session_id: str) -> Role | None:
        """The session's role, or None for an unknown, revoked or expired session."""
        if len(session_id) > MAX_TOKEN_CHARS:
            return None
        key = _digest(session_id)
        session = self._sessions.get(key)
        if session is None:
            return None
        if self._clock() >= session.expires_at:
            del self._sessions[key]
            return None
        return session.role

    def revoke(self, session_id: str) -> None:
        """End a session (logout); unknown ids are ignored."""
        self._sessions.pop(_digest(session_id), None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _expire(self) -> None:
        now = self._clock()
        # Insertion order is expiry order (one fixed lifetime), so expired sessions are at the front.
        while self._sessions:
            key, session = next(iter(self._sessions.items()))
            if session.expires_at > now:
                break
            del self._sessions[key]


class Authenticator:
    """Checks presented tokens against the configured ones, and keeps the desk's sessions."""

    def __init__(self, tokens: dict[Role, str], sessions: DeskSessions | None = None) -> None:
        """Keep digests of the configured tokens (never the tokens themselves).

        Args:
            tokens: the configured token of each role that has one.
            sessions: the desk session store; default: a new one.
        """
        self._tokens = [(role, _digest(token)) for role, token in tokens.items() if token]
        self.sessions = sessions or DeskSessions()

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        """The tokens of `settings` (``VOICE_AGENT_AGENT_TOKEN``, ``VOICE_AGENT_ADMIN_TOKEN``)."""
        tokens: dict[Role, str] = {}
        if settings.agent_token is not None:
            tokens[Role.AGENT] = settings.agent_token.get_secret_value()
        if settings.admin_token is not None:
            tokens[Role.ADMIN] = settings.admin_token.get_secret_value()
        return cls(tokens)

    @property
    def closed(self) -> bool:
        """No token is configured: every request is refused."""
        return not self._tokens

    def role_for_token(self, token: str) -> Role | None:
        """The role whose token this is, or None.

        Compared in constant time against every configured token (no early exit on a match), so the response time
        says nothing about which token, or how much of one, was right.
        """
        if len(token) > MAX_TOKEN_CHARS:
            return None
        presented = _digest(token)
        granted: Role | None = None
        for role, expected in self._tokens:
            if hmac.compare_digest(presented, expected) and (granted is None or role.includes(granted)):
                granted = role
        return granted


def authenticator_of(app: FastAPI) -> Authenticator:
    """The app's authenticator (``app.state.auth``, set by `telephony.app.create_app`).

    Raises:
        RuntimeError: the app was built without one (a wiring mistake, not a client's).
    """
    auth = getattr(app.state, "auth", None)
    if not isinstance(auth, Authenticator):
        raise RuntimeError("app.state.auth is not set: create the app with telephony.app.create_app")
    return auth


def desk_session_role(connection: HTTPConnection) -> Role | None:
    """The role of the desk session whose cookie `connection` (a request or a WebSocket) carries; None without a
    valid one, and always None while no token is configured."""
    auth = authenticator_of(connection.app)
    session_id = connection.cookies.get(SESSION_COOKIE)
    if auth.closed or not session_id:
        return None
    return auth.sessions.role_of(session_id)


def _refused(detail: str, invalid_token: bool) -> HTTPException:
    challenge = 'Bearer realm="voice-agent"' + (', error="invalid_token"' if invalid_token else "")
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": challenge})


def require_role(role: Role) -> Callable[..., Awaitable[Role]]:
    """A FastAPI dependency that admits a request with a token or desk session of `role` (or a role including it).

    Use as ``dependencies=[Depends(require_role(Role.AGENT))]`` or as a parameter to learn the caller's role.
    A presented bearer token decides on its own; without one, the desk's session cookie is used.

    Raises (from the dependency):
        HTTPException: 401 with ``WWW-Authenticate: Bearer`` for a missing or invalid token or session, and for
            every request when no token is configured; 403 when the role is not enough.
    """

    async def dependency(
        request: Request,
        bearer: _Bearer,
        session_id: _SessionId,
    ) -> Role:
        auth = authenticator_of(request.app)
        if auth.closed:
            raise _refused(
                "the API and the desk are closed: set VOICE_AGENT_AGENT_TOKEN or VOICE_AGENT_ADMIN_TOKEN", False
            )
        if bearer is not None:
            granted = auth.role_for_token(bearer.credentials)
        elif session_id:
            granted = auth.sessions.role_of(session_id)
        else:
            raise _refused("a bearer token (Authorization: Bearer ...) or a desk login is required", False)
        if granted is None:
            raise _refused("the token or the desk session is not valid (or has expired)", True)
        if not granted.includes(role):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"this needs the {role.value} role")
        return granted

    return dependency
