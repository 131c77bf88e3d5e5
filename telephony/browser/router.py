"""``WS /browser/call``: a call from the desk's call page, for desk users only.

The socket is accepted only with a valid desk session cookie (any role; `telephony.web.auth`) and, when the browser
sends an ``Origin``, only from this server's own origin (its ``Host``, or ``VOICE_AGENT_PUBLIC_URL``). A refused
handshake gets HTTP 403 and nothing else. While the models load the socket is accepted, told so and closed (1013).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket

from telephony.browser import protocol
from telephony.browser.call import run_browser_call
from telephony.session import CLOSE_PROTOCOL_ERROR, CLOSE_TRY_AGAIN_LATER, close_websocket
from telephony.settings import Settings
from telephony.state import RunningOrNoneDep, StateDep
from telephony.web.auth import Role, desk_session_role

log = logging.getLogger(__name__)

LOADING = "The agent is still starting (loading its models). Try again in a minute."

router = APIRouter(tags=["browser call"])


def _foreign_origin(websocket: WebSocket, settings: Settings) -> str | None:
    """The ``Origin`` of a handshake from another site's page, or None when it is ours (or there is none: not a
    browser, and the cookie alone decides)."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return None
    ours = {websocket.headers.get("host", "")}
    if settings.public_url:
        ours.add(urlsplit(settings.public_url).netloc)
    parsed = urlsplit(origin)
    if parsed.scheme in ("http", "https") and parsed.netloc in ours:
        return None
    return origin[:100]


@router.websocket(protocol.BROWSER_CALL_PATH, name="browser_call")
async def browser_call(websocket: WebSocket, state: StateDep, running: RunningOrNoneDep) -> None:
    role = desk_session_role(websocket)
    foreign = _foreign_origin(websocket, state.settings)
    if role is None or not role.includes(Role.AGENT) or foreign is not None:
        why = f"from another origin ({foreign})" if foreign is not None else "without a valid desk session"
        client = websocket.client.host if websocket.client else "-"
        log.warning("browser call refused: %s", why, extra={"client": client})
        await websocket.close(code=CLOSE_PROTOCOL_ERROR)  # before the handshake completes: HTTP 403
        return
    if running is None:
        await websocket.accept()
        await websocket.send_text(protocol.error(LOADING))
        await close_websocket(websocket, CLOSE_TRY_AGAIN_LATER)
        return
    call = await run_browser_call(websocket, running.services, state)
    if call is not None:
        state.metrics.call_ended(call)
