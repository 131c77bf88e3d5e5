"""Who may read the call API and the agent desk: named desk accounts, bearer tokens per role for machines, and the
desk's session cookie.

Two roles (`telephony.roles.Role`): ``agent`` reads calls and works the call-back queue; ``admin`` may do everything
an agent may, and also delete, purge, export, forget a caller and read the audit trail. People log in to the desk with
a named account (``voice-agent users add``; `telephony.storage.accounts`), so that the audit trail names them;
machines (scripts, the replay) use the role's token (``VOICE_AGENT_AGENT_TOKEN``, ``VOICE_AGENT_ADMIN_TOKEN``) and are
named ``token:<role>``. With no token and no account every request is refused: closed, never open.

A browser's ``EventSource`` cannot send an ``Authorization`` header, so the desk exchanges a name and password (or a
token) once for a random session id in an HttpOnly, SameSite=Strict cookie (``POST /desk/login``); the server keeps
the session's account, role and expiry. Every protected route accepts either the bearer header or that cookie; the
browser call's WebSocket (`telephony.browser.router`) takes the cookie only (`desk_session_role`). Failed logins are
throttled per name and per address (`LoginThrottle`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import anyio
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from telephony.roles import Role
from telephony.settings import Settings

if TYPE_CHECKING:
    from telephony.storage.accounts import DeskAccounts

__all__ = ["Authenticator", "DeskSessions", "LoginThrottle", "Principal", "Role", "require_principal", "require_role"]

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


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from: a desk account, or a machine with a role's token."""

    role: Role
    account: str | None = None
    """The desk account's name; None for a token."""

    @property
    def actor(self) -> str:
        """The name the audit trail gives this principal: the account, or ``token:<role>``."""
        return self.account or f"token:{self.role.value}"


def _digest(token: str) -> bytes:
    # Comparing fixed-size digests keeps even the token's length out of the timing.
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(slots=True)
class _Session:
    principal: Principal
    expires_at: float
    """`time.monotonic()` after which the session is no longer accepted."""
    started_at: datetime
    """Wall-clock start: an account whose password changed since is logged out."""


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

    def create(self, role: Role, account: str | None = None) -> str:
        """Start a session for `role` (of the desk account `account`, or of a token); returns the id for the cookie
        (256 random bits)."""
        self._expire()
        session_id = secrets.token_urlsafe(32)
        session = _Session(Principal(role, account), self._clock() + self.ttl_s, datetime.now(UTC))
        self._sessions[_digest(session_id)] = session
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return session_id

    def _session(self, session_id: str) -> _Session | None:
        if len(session_id) > MAX_TOKEN_CHARS:
            return None
        key = _digest(session_id)
        session = self._sessions.get(key)
        if session is None:
            return None
        if self._clock() >= session.expires_at:
            del self._sessions[key]
            return None
        return session

    def role_of(self, session_id: str) -> Role | None:
        """The session's role, or None for an unknown, revoked or expired session."""
        session = self._session(session_id)
        return session.principal.role if session is not None else None

    def principal_of(self, session_id: str) -> tuple[Principal, datetime] | None:
        """The session's principal and when it started, or None for an unknown, revoked or expired session."""
        session = self._session(session_id)
        return (session.principal, session.started_at) if session is not None else None

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

    def __init__(
        self,
        tokens: dict[Role, str],
        sessions: DeskSessions | None = None,
        accounts: DeskAccounts | None = None,
    ) -> None:
        """Keep digests of the configured tokens (never the tokens themselves).

        Args:
            tokens: the configured token of each role that has one.
            sessions: the desk session store; default: a new one.
            accounts: the named desk accounts; None: tokens only.
        """
        self._tokens = [(role, _digest(token)) for role, token in tokens.items() if token]
        self.sessions = sessions or DeskSessions()
        self.accounts = accounts
        self.name_throttle = LoginThrottle(MAX_FAILURES_PER_NAME)
        self.address_throttle = LoginThrottle(MAX_FAILURES_PER_ADDRESS)

    @classmethod
    def from_settings(cls, settings: Settings, accounts: DeskAccounts | None = None) -> Authenticator:
        """The tokens of `settings` (``VOICE_AGENT_AGENT_TOKEN``, ``VOICE_AGENT_ADMIN_TOKEN``) and the accounts."""
        tokens: dict[Role, str] = {}
        if settings.agent_token is not None:
            tokens[Role.AGENT] = settings.agent_token.get_secret_value()
        if settings.admin_token is not None:
            tokens[Role.ADMIN] = settings.admin_token.get_secret_value()
        return cls(tokens, accounts=accounts)

    @property
    def closed(self) -> bool:
        """No token is configured: every bearer token and token login is refused (desk accounts may still log in)."""
        return not self._tokens

    async def session_principal(self, session_id: str) -> Principal | None:
        """The principal of a desk session, or None; an account's session ends once the account is removed, its role
        changed or its password was set again (checked against the database on every request)."""
        found = self.sessions.principal_of(session_id)
        if found is None:
            return None
        principal, started_at = found
        if principal.account is None or self.accounts is None:
            return principal
        account = await anyio.to_thread.run_sync(self.accounts.get, principal.account)
        if account is None or account.role is not principal.role or account.password_changed_at > started_at:
            self.sessions.revoke(session_id)
            return None
        return principal

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
    valid one. Sessions only: unlike `require_principal` it does not look the account up in the database again."""
    auth = authenticator_of(connection.app)
    session_id = connection.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    return auth.sessions.role_of(session_id)


def _refused(detail: str, invalid_token: bool) -> HTTPException:
    challenge = 'Bearer realm="voice-agent"' + (', error="invalid_token"' if invalid_token else "")
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": challenge})


def require_principal(
    role: Role, on_forbidden: Callable[[Request, Principal], Awaitable[None]] | None = None
) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency that admits a request with a token or desk session of `role` (or a role including it)
    and returns who it is, for the audit trail.

    Args:
        on_forbidden: awaited before a 403, with who was refused (to audit the attempt).

    A presented bearer token decides on its own; without one, the desk's session cookie is used.

    Raises (from the dependency):
        HTTPException: 401 with ``WWW-Authenticate: Bearer`` for a missing or invalid token or session (every token
            while none is configured); 403 when the role is not enough.
    """

    async def dependency(request: Request, bearer: _Bearer, session_id: _SessionId) -> Principal:
        auth = authenticator_of(request.app)
        principal: Principal | None
        if bearer is not None:
            if auth.closed:
                raise _refused(
                    "no API token is configured: set VOICE_AGENT_AGENT_TOKEN or VOICE_AGENT_ADMIN_TOKEN", False
                )
            granted = auth.role_for_token(bearer.credentials)
            principal = Principal(granted) if granted is not None else None
        elif session_id:
            principal = await auth.session_principal(session_id)
        else:
            hint = (
                "; none is configured: set VOICE_AGENT_AGENT_TOKEN or VOICE_AGENT_ADMIN_TOKEN, or add a desk account "
                "with voice-agent users add"
                if auth.closed
                else ""
            )
            raise _refused("a bearer token (Authorization: Bearer ...) or a desk login is required" + hint, False)
        if principal is None:
            raise _refused("the token or the desk session is not valid (or has expired)", True)
        if not principal.role.includes(role):
            if on_forbidden is not None:
                await on_forbidden(request, principal)
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"this needs the {role.value} role")
        return principal

    return dependency


def require_role(role: Role) -> Callable[..., Awaitable[Role]]:
    """As `require_principal`, returning only the role: ``dependencies=[Depends(require_role(Role.AGENT))]``."""
    principal_of = require_principal(role)

    # A default, not Annotated[...]: with postponed annotations FastAPI could not resolve a local name.
    async def dependency(principal: Principal = Depends(principal_of)) -> Role:  # noqa: B008
        return principal.role

    return dependency


# --- failed-login throttling ------------------------------------------------------------------------------------

MAX_FAILURES_PER_NAME = 5
"""Failed logins for one account name within `THROTTLE_WINDOW_S` before further tries wait."""
MAX_FAILURES_PER_ADDRESS = 20
"""Failed logins from one client address within `THROTTLE_WINDOW_S` before further tries wait (an office may share
one address, hence more than per name)."""
THROTTLE_WINDOW_S = 15 * 60
MAX_THROTTLED_KEYS = 10_000
"""Names and addresses remembered at once; beyond this the least recently failed is forgotten (bounded memory)."""


class LoginThrottle:
    """Failed logins per key (a name or an address) in a sliding window; a key with too many must wait.

    Memory is bounded twice: at most `max_failures` times per key, at most `max_keys` keys.
    """

    def __init__(
        self,
        max_failures: int,
        window_s: float = THROTTLE_WINDOW_S,
        max_keys: int = MAX_THROTTLED_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        times = self._failures.get(key)
        if times is None:
            return 0.0
        now = self._clock()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0.0
        if len(times) < self.max_failures:
            return 0.0
        return times[0] + self.window_s - now

    def failed(self, key: str) -> None:
        """Count one failed login for `key`."""
        times = self._failures.get(key)
        if times is None:
            times = self._failures[key] = deque(maxlen=self.max_failures)
        times.append(self._clock())
        self._failures.move_to_end(key)
        while len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)

    def forget(self, key: str) -> None:
        """A successful login: the key's failures no longer count."""
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)
