"""The agent desk: static pages (HTML, CSS, JS; no build step) and their login.

    GET  /              redirects to /desk
    GET  /desk          the page: a login form, then each transfer's handoff card (newest first, its transfer state
                        live) above the calls, each of which opens a call view (turns, decisions, transfer steps)
    GET  /desk/call     a call to the agent from the browser (`telephony.browser`); logged in only, else the login
    GET  /desk/desk.js, /desk/desk.css, /desk/call.js, /desk/call-worklet.js, /desk/call.css
    POST /desk/login    {"token": ...} as JSON (or a form field): sets the HttpOnly, SameSite=Strict session cookie
    POST /desk/logout   ends the session and clears the cookie

The pages hold no data: the desk's comes from the call API (`telephony.web.api`) with the session cookie, because a
browser's EventSource cannot send a bearer header; the call page's from its own call (``WS /browser/call``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from telephony.web.auth import SESSION_COOKIE, authenticator_of, desk_session_role

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "desk_static"
_SCRIPT, _STYLE = "text/javascript; charset=utf-8", "text/css; charset=utf-8"
_ASSETS = {"desk.js": _SCRIPT, "desk.css": _STYLE, "call.js": _SCRIPT, "call-worklet.js": _SCRIPT, "call.css": _STYLE}

# Only our own files may run or be fetched, nothing may frame the desk, and no data goes elsewhere.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
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


@router.get("/desk", include_in_schema=False)
async def desk_page() -> FileResponse:
    """The desk page (public: it holds no data until the agent logs in)."""
    return FileResponse(STATIC_DIR / "desk.html", media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)


@router.get("/desk/call", include_in_schema=False, response_model=None)
async def call_page(request: Request) -> FileResponse | RedirectResponse:
    """The browser call page: for desk users only (it opens a call); without a session, the desk's login, which
    comes back here."""
    if desk_session_role(request) is None:
        return RedirectResponse("/desk?next=call", status.HTTP_303_SEE_OTHER, headers={"Cache-Control": "no-store"})
    return FileResponse(STATIC_DIR / "call.html", media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)


@router.get("/desk/{name}", include_in_schema=False)
async def desk_asset(name: str) -> FileResponse:
    """The pages' scripts and style sheets; nothing else is served from the folder."""
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no desk file {name[:64]!r}")
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=_PAGE_HEADERS)


async def _presented_token(request: Request) -> str:
    """The token from a JSON body ``{"token": ...}`` or a form field ``token``.

    Raises:
        HTTPException: 400 for a body that is neither, or too large.
    """
    body = await request.body()
    if len(body) > _MAX_LOGIN_BODY_BYTES:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="login body too large")
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            token = json.loads(body or b"{}").get("token", "")
        else:
            token = (await request.form()).get("token", "")
    except (ValueError, AttributeError) as error:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail='expected JSON {"token": "..."} or a form field "token"'
        ) from error
    if not isinstance(token, str):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail='expected the token as a string: {"token": "..."}')
    return token.strip()


def _secure(request: Request) -> bool:
    # Behind a TLS proxy the scheme comes from X-Forwarded-Proto (`serve` trusts proxy headers) or the public URL.
    public_url = request.app.state.voice.settings.public_url or ""
    return request.url.scheme == "https" or public_url.startswith("https://")


def _refused(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail}, status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": 'Bearer realm="voice-agent"'}
    )


@router.post("/desk/login", tags=["desk"])
async def desk_login(request: Request) -> Response:
    """Exchange a token for a desk session cookie; 401 when the token is refused (or none is configured)."""
    auth = authenticator_of(request.app)
    token = await _presented_token(request)
    if auth.closed:
        return _refused("The desk is closed: no access token is configured on the server.")
    role = auth.role_for_token(token) if token else None
    if role is None:
        # Neither the token nor any part of it is logged.
        log.warning("desk login refused", extra={"client": request.client.host if request.client else "-"})
        return _refused("That token was refused. Check it and try again.")
    session_id = auth.sessions.create(role)
    log.info("desk login", extra={"role": role.value})
    response = JSONResponse({"role": role.value}, headers={"Cache-Control": "no-store"})
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


@router.post("/desk/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["desk"])
async def desk_logout(request: Request) -> Response:
    """End the desk session (if any) and clear its cookie."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        authenticator_of(request.app).sessions.revoke(session_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=_secure(request), httponly=True, samesite="strict")
    return response
