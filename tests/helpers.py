"""Small shared helpers for tests (fixtures are in conftest.py)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import sqlite3
import threading
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from qa.twilio_emulator import TwilioSide
from qa.twilio_signing import TEST_CALLER, TwilioCredentials, incoming_call_form, stream_parameters
from telephony.admission import STREAM_SECRET_PARAMETER
from telephony.app import create_app
from telephony.settings import DEFAULT_PROMPTS_DIR, load_settings
from telephony.twilio.framing import pcm_to_twilio_frames
from telephony.twilio.transfer import CallRedirector
from voice.pipeline import VoiceServices
from voice.wavfile import read_wav

PROMPTS_DIR = DEFAULT_PROMPTS_DIR

# --- the browser tests: Debian's Chromium driven by Playwright for Python ------------------------------------------
# Playwright's own browser download cannot work offline: the browser is /usr/bin/chromium (`.ci/run` and `make test`
# install it); never run `playwright install`.

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (root in a container), and nothing that would try to reach the internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> None:
    """A missing browser is a failure with the fix in the message (`make test` installs it), never a skip."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright for Python (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if missing:
        pytest.fail("the browser test needs " + " and ".join(missing))


# --- the server app over the session's models ------------------------------------------------------------------


def make_app(services: VoiceServices, redirector: CallRedirector | None = None, **settings: object) -> FastAPI:
    """The server app over already loaded models, configured from the environment with `settings` on top.

    Raises:
        telephony.settings.SettingsError: as `load_settings` does, naming the variable.
    """
    return create_app(load_settings(**settings), services=services, redirector=redirector)


def app_client(services: VoiceServices, redirector: CallRedirector | None = None, **settings: object) -> TestClient:
    """A test client of `make_app(services, redirector, **settings)`; its lifespan runs in its `with` block."""
    return TestClient(make_app(services, redirector, **settings))


# --- Twilio's side of a call, as the TestClient sends it: signed, with the stream's secret -------------------------

REAL_SPEECH_AUDIO = Path(__file__).resolve().parents[1] / "audio_fixtures" / "real_speech" / "audio"
SILENCE = b"\xff" * 160

TEST_AUTH_TOKEN = "test-twilio-auth-token"
"""The TWILIO_AUTH_TOKEN every test's app checks signatures with (tests/conftest.py sets it)."""
TWILIO = TwilioCredentials(TEST_AUTH_TOKEN)
BASE = "http://testserver"
"""The TestClient's base URL: what the app sees, and what Twilio signs."""


def call_sid(label: str = "1") -> str:
    """A well-formed call SID (CA and 32 hex digits), the same for the same label."""
    return "CA" + hashlib.md5(f"call {label}".encode()).hexdigest()


def stream_sid(label: str = "1") -> str:
    """A well-formed stream SID (MZ and 32 hex digits), the same for the same label."""
    return "MZ" + hashlib.md5(f"stream {label}".encode()).hexdigest()


CALL_SID = call_sid()
STREAM_SID = stream_sid()


def post_webhook(client: TestClient, url: str, form: dict[str, str], credentials: TwilioCredentials = TWILIO):
    """POST a Twilio webhook to `url` (a path, query string included, or a full URL on `BASE`), signed as Twilio
    signs it."""
    full = url if url.startswith("http") else BASE + url
    return client.post(url, data=form, headers=credentials.headers(full, form))


def admit(client: TestClient, sid: str = CALL_SID, caller: str | None = TEST_CALLER) -> dict[str, str]:
    """Offer the call to ``/twilio/voice`` (signed); returns its stream's parameters (the secret, the caller)."""
    response = post_webhook(client, "/twilio/voice", incoming_call_form(_side(sid), caller))
    assert response.status_code == 200, response.text
    return stream_parameters(response.text)


def admit_on(base_url: str, sid: str, caller: str | None = TEST_CALLER) -> dict[str, str]:
    """Offer the call to a served app's ``/twilio/voice`` (signed); returns its stream's parameters."""
    form, url = incoming_call_form(_side(sid), caller), base_url + "/twilio/voice"
    response = httpx.post(url, data=form, headers=TWILIO.headers(url, form), timeout=10)
    assert response.status_code == 200, response.text
    return stream_parameters(response.text)


def _side(sid: str) -> TwilioSide:
    return TwilioSide("AC" + "0" * 32, sid, STREAM_SID)


class TwilioStream:
    """A media stream as Twilio opens it, over the TestClient's WebSocket.

    A ``start`` without a stream secret gets the parameters of its call's TwiML (under those it names), as Twilio's
    would: the call is offered to ``/twilio/voice`` first (signed) unless `admit` already did. A test that sends a
    secret of its own (a forged one) sends it as it is. Everything else is the WebSocket's.
    """

    def __init__(self, client: TestClient, ws: Any, caller: str | None, credentials: TwilioCredentials) -> None:
        self._client = client
        self._credentials = credentials
        self._ws = ws
        self._caller = caller
        self._calls: dict[str, dict[str, str]] = {}

    def admit(self, sid: str) -> Any:
        """Offer the call `sid` to ``/twilio/voice``; returns the response (its stream parameters are kept)."""
        form = incoming_call_form(_side(sid), self._caller)
        response = post_webhook(self._client, "/twilio/voice", form, self._credentials)
        if response.status_code == 200 and "<Stream " in response.text:
            self._calls[sid] = stream_parameters(response.text)
        return response

    def send_json(self, message: dict) -> None:
        start = message.get("start") if message.get("event") == "start" else None
        given = start.get("customParameters") or {} if isinstance(start, dict) else {}
        if isinstance(start, dict) and STREAM_SECRET_PARAMETER not in given:
            sid = str(start.get("callSid", ""))
            if sid not in self._calls:
                self.admit(sid)
            parameters = {**self._calls.get(sid, {}), **given}
            message = {**message, "start": {**start, "customParameters": parameters}}
        self._ws.send_json(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


def signed_upgrade(client: TestClient, credentials: TwilioCredentials = TWILIO) -> Any:
    """``client.websocket_connect`` to the media stream with Twilio's signature of its URL (a context manager)."""
    url = "ws://testserver/twilio/media"
    return client.websocket_connect("/twilio/media", headers=credentials.headers(url))


@contextlib.contextmanager
def twilio_stream(
    client: TestClient, caller: str | None = TEST_CALLER, credentials: TwilioCredentials = TWILIO
) -> Iterator[TwilioStream]:
    """A signed media stream whose ``start`` carries its call's stream secret, as Twilio's would (`TwilioStream`)."""
    with signed_upgrade(client, credentials) as ws:
        yield TwilioStream(client, ws, caller, credentials)


def start_message(
    stream_sid: str = STREAM_SID, call_sid: str = CALL_SID, parameters: dict[str, str] | None = None
) -> dict:
    return {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": stream_sid,
        "start": {
            "accountSid": "AC" + "0" * 32,
            "streamSid": stream_sid,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": dict(parameters or {}),
        },
    }


def media_message(frame: bytes, stream_sid: str = STREAM_SID) -> dict:
    payload = base64.b64encode(frame).decode()
    return {"event": "media", "streamSid": stream_sid, "media": {"track": "inbound", "payload": payload}}


def dtmf_message(digit: str, stream_sid: str = STREAM_SID) -> dict:
    return {"event": "dtmf", "streamSid": stream_sid, "dtmf": {"track": "inbound_track", "digit": digit}}


def mark_message(name: str, stream_sid: str = STREAM_SID) -> dict:
    return {"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}


def receive_until_mark(ws) -> tuple[list[dict], str]:
    """Messages up to and including the next mark; returns them and the mark's name."""
    messages = []
    while True:
        message = ws.receive_json()
        messages.append(message)
        if message["event"] == "mark":
            return messages, message["mark"]["name"]


def play_until_closed(ws, messages: list[dict] | None = None) -> list[str]:
    """Play all the server sends, echoing each mark at once (played or cleared), until it closes the stream.

    Args:
        messages: if given, every message received is appended to it.

    Returns:
        The events seen, in order.
    """
    seen = []
    with pytest.raises(WebSocketDisconnect):
        while True:
            message = ws.receive_json()
            seen.append(message["event"])
            if messages is not None:
                messages.append(message)
            if message["event"] == "mark":
                ws.send_json(mark_message(message["mark"]["name"]))
    return seen


def speech_frames(clip: str = "harvard_birch_canoe.wav") -> list[bytes]:
    samples, rate = read_wav(REAL_SPEECH_AUDIO / clip)
    return pcm_to_twilio_frames(samples[: rate * 3], rate)


# --- what a database holds ------------------------------------------------------------------------------------


def sqlite_rows(database: Path) -> list[str]:
    """Every row of every table of an SQLite file, one text each: for scans that nothing private is stored."""
    with sqlite3.connect(database) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return [repr(row) for table in tables for row in connection.execute(f"SELECT * FROM {table}")]


# --- a fake Twilio REST API on 127.0.0.1 ------------------------------------------------------------------------


class FakeTwilio:
    """Twilio's REST API as far as ``calls(sid).update`` and fetching a recording (``GET .../Recordings/RE....wav``)
    go: records every request and answers it.

    Serves on 127.0.0.1 in a daemon thread; stops when the `with` block ends, or by itself after `lifetime_s`.

    Args:
        recordings: recording SID -> WAV bytes, served to requests with `credentials` (HTTP basic auth).
    """

    def __init__(
        self,
        status: int = 200,
        lifetime_s: float = 60.0,
        recordings: dict[str, bytes] | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.requests: list[dict] = []
        fake = self
        served = recordings or {}
        expected_auth = "Basic " + base64.b64encode(":".join(credentials).encode()).decode() if credentials else None

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append(
                    {"method": self.command, "path": self.path, "authorization": self.headers.get("Authorization")}
                )
                sid = self.path.rsplit("/", 1)[-1].removesuffix(".wav")
                if expected_auth is None or self.headers.get("Authorization") != expected_auth:
                    code, data, media_type = 401, b'{"code": 20003}', "application/json"
                elif sid not in served or "/Recordings/" not in self.path:
                    code, data, media_type = 404, b'{"code": 20404}', "application/json"
                else:
                    code, data, media_type = 200, served[sid], "audio/x-wav"
                self.send_response(code)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                fake.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "authorization": self.headers.get("Authorization"),
                        "content_type": self.headers.get("Content-Type"),
                        "form": parse_qs(body, keep_blank_values=True),
                    }
                )
                if status == 200:
                    answer = {"sid": self.path.rsplit("/", 1)[-1].removesuffix(".json"), "status": "in-progress"}
                else:
                    answer = {"code": 20404, "message": "The requested resource was not found", "status": status}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # quiet test output
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.timeout = 5
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-twilio", daemon=True)
        self._timer = threading.Timer(lifetime_s, self._server.shutdown)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeTwilio:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def voicemail_wav(frame: bytes, repeat: int = 4000) -> bytes:
    """A real WAV file as Twilio serves a voicemail (8 kHz, 16-bit mono): `frame` (PCM16 bytes) `repeat` times."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(frame * repeat)
    return buffer.getvalue()
