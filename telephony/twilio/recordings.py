"""`RecordingFetcher`: a caller's voicemail, fetched from Twilio's API with the account's credentials.

Recordings stay at Twilio; the desk plays them through our server (``GET /api/callbacks/{call}/voicemail``), so a
desk user needs neither Twilio's credentials nor access to Twilio's console, and every play is audited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from telephony.settings import Settings
from telephony.twilio.transfer import REST_TIMEOUT_S, TWILIO_API_BASE_URL, check_api_base_url

RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
MEDIA_TYPE = "audio/wav"
"""Twilio's recordings as WAV (``.wav``): every browser plays it."""
MAX_RECORDING_BYTES = 16 * 1024 * 1024
"""A two-minute message at 8 kHz is about 2 MB; anything far larger is refused, not buffered."""


class RecordingError(Exception):
    """The recording could not be fetched; the message says why (never the credentials)."""


@dataclass(frozen=True, slots=True)
class Recording:
    audio: bytes
    media_type: str


class RecordingFetcher:
    """Fetches recordings of one Twilio account."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        api_base_url: str = TWILIO_API_BASE_URL,
        timeout_s: float = REST_TIMEOUT_S,
    ) -> None:
        """Raises: ValueError: `api_base_url` is neither Twilio's API nor a loopback address (tests)."""
        check_api_base_url(api_base_url)
        self._account_sid = account_sid
        self._auth = (account_sid, auth_token)
        self._base = api_base_url.rstrip("/")
        self._timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> RecordingFetcher | None:
        """The fetcher for TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN; None when either is not set."""
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        if not settings.twilio_account_sid or not token:
            return None
        return cls(settings.twilio_account_sid, token)

    async def fetch(self, recording_sid: str) -> Recording:
        """The recording's audio.

        Raises:
            RecordingError: a malformed SID, Twilio refused (unknown recording, bad credentials) or was unreachable.
        """
        if not RECORDING_SID.match(recording_sid):
            raise RecordingError(f"not a recording SID: {recording_sid[:40]!r}")
        url = f"{self._base}/2010-04-01/Accounts/{self._account_sid}/Recordings/{recording_sid}.wav"
        try:
            async with (
                httpx.AsyncClient(timeout=self._timeout_s, auth=self._auth) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    raise RecordingError(f"Twilio answered HTTP {response.status_code} for {recording_sid}")
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_RECORDING_BYTES:
                        raise RecordingError(f"{recording_sid} is larger than {MAX_RECORDING_BYTES} bytes")
                    chunks.append(chunk)
                media_type = response.headers.get("content-type", MEDIA_TYPE).split(";")[0].strip()
        except httpx.HTTPError as error:
            raise RecordingError(f"Twilio could not be reached for {recording_sid}: {type(error).__name__}") from None
        return Recording(b"".join(chunks), media_type if media_type.startswith("audio/") else MEDIA_TYPE)
