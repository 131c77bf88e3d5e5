"""A running server's call API, as the replay reads it with `voice-agent replay --server URL --token T`.

    check_token: one request before anything is played, so that a wrong token is one clear line, not 8 reports
    fetch_view: ``GET /api/calls/{call_sid}`` (bearer token), polled until the call is finished: the server's
        background writer stores the record a moment after the stream ends

The record is the API's `telephony.call_record.CallRecord`, the same shape the in-process replay builds from the
app's registry (`qa.server.InProcessServer.view`), so the report reads both alike.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from pydantic import ValidationError

from qa.call_log import ServerView
from qa.expect import CALL_API_DATA
from qa.server import CLOSE_TIMEOUT_S, ReplayError
from telephony.call_record import CallRecord
from telephony.calls import CallState

CALLS_PATH = "/api/calls"
RECORD_TIMEOUT_S = CLOSE_TIMEOUT_S
"""Longest wait for a call's record to say it is finished (the server finishes it once the stream has closed)."""
_POLL_S = 0.1
_REQUEST_TIMEOUT_S = 10.0
# A SID no call has: the API checks the token before it looks the call up, so this answers 401/403 or 404.
_NO_SUCH_CALL = "CA00000000000000000000000000000000"


class CallApiError(RuntimeError):
    """A call's record could not be read (the server is unreachable, answered an error or something unexpected)."""


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _refused(response: httpx.Response, http_base: str) -> str | None:
    if response.status_code == 401:
        return f"the call API at {http_base} refused the token (401): it is not the server's agent or admin token"
    if response.status_code == 403:
        return f"the call API at {http_base} refused the token (403): it does not allow reading calls"
    return None


async def check_token(http_base: str, token: str) -> None:
    """Make sure the call API accepts `token` for reading calls, before any call is replayed.

    Args:
        http_base: the server's HTTP base URL (``http://host:port``).
        token: an agent or admin bearer token.

    Raises:
        qa.server.ReplayError: the token is refused (401/403), or the API cannot be reached.
    """
    try:
        async with httpx.AsyncClient(timeout=_REQUEST_TIMEOUT_S) as client:
            response = await client.get(f"{http_base}{CALLS_PATH}/{_NO_SUCH_CALL}", headers=_headers(token))
    except httpx.HTTPError as error:
        raise ReplayError(f"cannot reach the call API at {http_base}: {error}") from error
    refused = _refused(response, http_base)
    if refused is not None:
        raise ReplayError(refused)
    if response.status_code not in (200, 404):
        raise ReplayError(f"the call API at {http_base} answered {response.status_code} to a token check")


async def fetch_view(http_base: str, call_sid: str, token: str, timeout_s: float = RECORD_TIMEOUT_S) -> ServerView:
    """The server's record of a replayed call, once it says the call is finished (or after `timeout_s`).

    Args:
        http_base: the server's HTTP base URL.
        call_sid: the call SID the replay sent in ``start``.
        token: an agent or admin bearer token.
        timeout_s: how long to poll for the finished record; a call still live then is read as it is.

    Raises:
        CallApiError: the record could not be read (the message says why).
    """
    url = f"{http_base}{CALLS_PATH}/{call_sid}"
    deadline = time.monotonic() + timeout_s
    record: CallRecord | None = None
    async with httpx.AsyncClient(timeout=_REQUEST_TIMEOUT_S) as client:
        while True:
            try:
                response = await client.get(url, headers=_headers(token))
            except httpx.HTTPError as error:
                raise CallApiError(f"GET {CALLS_PATH}/{call_sid} failed: {error}") from error
            refused = _refused(response, http_base)
            if refused is not None:
                raise CallApiError(refused)
            if response.status_code == 200:
                try:
                    record = CallRecord.model_validate(response.json())
                except (ValueError, ValidationError) as error:
                    raise CallApiError(f"GET {CALLS_PATH}/{call_sid}: not a call record: {error}") from error
                if record.state is CallState.FINISHED:
                    break
            elif response.status_code != 404:  # 404: the server has not seen the call's start yet
                raise CallApiError(f"GET {CALLS_PATH}/{call_sid} answered {response.status_code}")
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(_POLL_S)
    if record is None:
        raise CallApiError(f"GET {CALLS_PATH}/{call_sid}: the server has no record of the call")
    return ServerView.of_record(record, CALL_API_DATA)
