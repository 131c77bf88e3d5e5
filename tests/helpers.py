"""Small shared helpers for tests (fixtures are in conftest.py)."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

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


# --- Twilio's side of a media stream, as the TestClient's WebSocket sends and receives it --------------------------

REAL_SPEECH_AUDIO = Path(__file__).resolve().parents[1] / "audio_fixtures" / "real_speech" / "audio"
SILENCE = b"\xff" * 160


def start_message(stream_sid: str = "MZ1", call_sid: str = "CA1") -> dict:
    return {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": stream_sid,
        "start": {
            "accountSid": "AC1",
            "streamSid": stream_sid,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {},
        },
    }


def media_message(frame: bytes, stream_sid: str = "MZ1") -> dict:
    payload = base64.b64encode(frame).decode()
    return {"event": "media", "streamSid": stream_sid, "media": {"track": "inbound", "payload": payload}}


def dtmf_message(digit: str, stream_sid: str = "MZ1") -> dict:
    return {"event": "dtmf", "streamSid": stream_sid, "dtmf": {"track": "inbound_track", "digit": digit}}


def mark_message(name: str, stream_sid: str = "MZ1") -> dict:
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
