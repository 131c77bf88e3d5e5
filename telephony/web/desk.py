"""The agent desk: static pages (HTML, CSS, JS; no build step) and their login.

    GET  /              redirects to /desk
    GET  /desk          the page, in the deployment's language (`telephony.web.desk_labels`): a login form, then
                        each transfer's handoff card (newest first, its transfer state live) above the calls, each
                        of which opens a call view (turns, decisions, transfer steps)
    GET  /desk/call     a call to the agent from the browser (`telephony.browser`), in the deployment's language;
                        logged in only, else the login
    GET  /desk/desk.js, /desk/labels.js, /desk/desk.css, /desk/call.js, /desk/call-worklet.js, /desk/call.css
    POST /desk/login    {"name": ..., "password": ...} (a desk account) or {"token": ...} (a machine) as JSON or form
                        fields: sets the HttpOnly, SameSite=Strict session cookie; failures are throttled
    POST /desk/logout   ends the session and clears the cookie

The pages hold no data: the desk's comes from the call API (`telephony.web.api`) with the session cookie, because a
browser's EventSource cannot send a bearer header; the call page's from its own call (``WS /browser/call``).
"""

from __future__ import annotations

import json
import logging
import math
from functools import lru_cache
from pathlib import Path

import anyio
from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

from telephony.storage.accounts import MAX_NAME_CHARS
from telephony.storage.audit import AuditAction, AuditOutcome
from telephony.web.audit import record_audit
from telephony.web.auth import SESSION_COOKIE, Principal, authenticator_of, desk_session_role
from telephony.web.desk_labels import desk_labels, render_page

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "desk_static"
_SCRIPT, _STYLE = "text/javascript; charset=utf-8", "text/css; charset=utf-8"
_ASSETS = {"desk.js": _SCRIPT, "desk.css": _STYLE, "call.js": _SCRIPT, "call-worklet.js": _SCRIPT, "call.css": _STYLE}
# The call-back queue's own script (telephony/web/callbacks.py serves its data), and the labels every script reads.
_ASSETS["callbacks.js"] = _SCRIPT
_ASSETS["labels.js"] = _SCRIPT

# Only our own files may run or be fetched, nothing may frame the desk, and no data goes elsewhere.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        # Voicemails are played from our own API (the server fetches them from Twilio).
        "media-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_MAX_LOGIN_BODY_BYTES = 8192

router = APIRouter(tags=["desk"])


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    """The server's address in a browser leads to the desk (the rest of the server is for Twilio and the API)."""
    return RedirectResponse("/desk")


@lru_cache(maxsize=8)
def _rendered(prompts_dir: Path, language: str, name: str) -> str:
    template = (STATIC_DIR / name).read_text(encoding="utf-8")
    return render_page(template, desk_labels(prompts_dir, language), language)


def _page(request: Request, name: str) -> HTMLResponse:
    settings = request.app.state.voice.settings
    return HTMLResponse(_rendered(settings.prompts_dir, settings.language, name), headers=_PAGE_HEADERS)


@router.get("/desk", include_in_schema=False)
async def desk_page(request: Request) -> HTMLResponse:
    """The desk page in the deployment's language (public: it holds no data until the agent logs in)."""
    return _page(request, "desk.html")


@router.get("/desk/call", include_in_schema=False, response_model=None)
async def call_page(request: Request) -> HTMLResponse | RedirectResponse:
    """The browser call page, in the deployment's language: for desk users only (it opens a call); without a
    session, the desk's login, which comes back here."""
    if desk_session_role(request) is None:
        return RedirectResponse("/desk?next=call", status.HTTP_303_SEE_OTHER, headers={"Cache-Control": "no-store"})
    return _page(request, "call.html")


@router.get("/desk/{name}", include_in_schema=False)
async def desk_asset(name: str) -> FileResponse:
    """The pages' scripts and style sheets; nothing else is served from the folder."""
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no desk file {name[:64]!r}")
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=_PAGE_HEADERS)


async def _login_fields(request: Request) -> dict[str, str]:
    """``name`` and ``password`` (a person), or ``token`` (a machine), from a JSON body or form fields.

    Raises:
        HTTPException: 400 for a body that is neither, or too large, or a field that is not a string.
    """
    body = await request.body()
    if len(body) > _MAX_LOGIN_BODY_BYTES:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="login body too large")
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            given = json.loads(body or b"{}")
            if not isinstance(given, dict):
                raise ValueError("not an object")
        else:
            given = dict(await request.form())
    except (ValueError, AttributeError) as error:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail='expected JSON {"name": "...", "password": "..."} (or {"token": "..."}) or those form fields',
        ) from error
    fields = {key: given.get(key, "") for key in ("name", "password", "token")}
    if not all(isinstance(value, str) for value in fields.values()):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="expected name, password and token as strings")
    # Cut to one more than the longest account name: still refused, and the throttle's keys stay small.
    name = fields["name"].strip().lower()[: MAX_NAME_CHARS + 1]
    return {"name": name, "password": fields["password"], "token": fields["token"].strip()}


def _secure(request: Request) -> bool:
    # Behind a TLS proxy the scheme comes from X-Forwarded-Proto (`serve` trusts proxy headers) or the public URL.
    public_url = request.app.state.voice.settings.public_url or ""
    return request.url.scheme == "https" or public_url.startswith("https://")


def _refused(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail}, status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": 'Bearer realm="voice-agent"'}
    )


def _throttled(retry_after_s: float) -> JSONResponse:
    minutes = max(1, math.ceil(retry_after_s / 60))
    return JSONResponse(
        {"detail": f"Too many failed logins. Wait {minutes} minute{'s' if minutes > 1 else ''} and try again."},
        status.HTTP_429_TOO_MANY_REQUESTS,
        headers={"Retry-After": str(math.ceil(retry_after_s))},
    )


def _address(request: Request) -> str:
    return request.client.host if request.client else "-"


def _logged_in(request: Request, principal: Principal) -> JSONResponse:
    auth = authenticator_of(request.app)
    session_id = auth.sessions.create(principal.role, principal.account)
    log.info("desk login", extra={"role": principal.role.value, "actor": principal.actor})
    response = JSONResponse(
        {"role": principal.role.value, "name": principal.actor}, headers={"Cache-Control": "no-store"}
    )
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(auth.sessions.ttl_s),
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/desk/login", tags=["desk"])
async def desk_login(request: Request) -> Response:
    """Exchange a name and password (or a token) for a desk session cookie; 401 when refused, 429 after too many
    failures for that name or from that address. Every attempt that is checked is in the audit trail."""
    fields = await _login_fields(request)
    if fields["name"] or fields["password"]:
        return await _account_login(request, fields["name"], fields["password"])
    return await _token_login(request, fields["token"])


async def _account_login(request: Request, name: str, password: str) -> Response:
    auth = authenticator_of(request.app)
    address = _address(request)
    wait = max(auth.name_throttle.retry_after(name), auth.address_throttle.retry_after(address))
    if wait > 0:
        # Logged, not audited: a flood of throttled tries must not fill the database.
        log.warning("desk login throttled", extra={"client": address})
        return _throttled(wait)
    accounts = auth.accounts
    account = await anyio.to_thread.run_sync(accounts.verify, name, password) if accounts and name else None
    if account is None:
        auth.name_throttle.failed(name)
        auth.address_throttle.failed(address)
        # A name typed into the wrong field could be a password: only names of real accounts are kept.
        known = accounts is not None and await anyio.to_thread.run_sync(accounts.get, name) is not None
        await record_audit(
            request,
            name if known else "unknown",
            AuditAction.LOGIN,
            name if known else None,
            AuditOutcome.REFUSED,
            {"method": "password"},
        )
        log.warning("desk login refused", extra={"client": address})
        return _refused("That name and password were refused. Check them and try again.")
    auth.name_throttle.forget(name)
    principal = Principal(account.role, account.name)
    await record_audit(request, principal.actor, AuditAction.LOGIN, account.name, detail={"method": "password"})
    return _logged_in(request, principal)


async def _token_login(request: Request, token: str) -> Response:
    auth = authenticator_of(request.app)
    address = _address(request)
    if auth.closed:
        return _refused("Token login is closed: no access token is configured on the server. Log in with your name.")
    wait = auth.address_throttle.retry_after(address)
    if wait > 0:
        log.warning("desk login throttled", extra={"client": address})
        return _throttled(wait)
    role = auth.role_for_token(token) if token else None
    if role is None:
        auth.address_throttle.failed(address)
        # Neither the token nor any part of it is logged.
        await record_audit(request, "unknown", AuditAction.LOGIN, None, AuditOutcome.REFUSED, {"method": "token"})
        log.warning("desk login refused", extra={"client": address})
        return _refused("That token was refused. Check it and try again.")
    principal = Principal(role)
    await record_audit(request, principal.actor, AuditAction.LOGIN, detail={"method": "token"})
    return _logged_in(request, principal)


@router.post("/desk/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["desk"])
async def desk_logout(request: Request) -> Response:
    """End the desk session (if any) and clear its cookie."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        authenticator_of(request.app).sessions.revoke(session_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=_secure(request), httponly=True, samesite="strict")
    return response
