"""The sample deployment, tested: Debian's nginx with the site in deploy/nginx/ in front of a real `voice-agent serve`.

nginx runs as this user on 127.0.0.1 with a throwaway self-signed certificate (openssl) and the site file, its ports
and certificate paths substituted; the server is a subprocess with the real models (qa.load_harness.ServerProcess).
Through nginx: Twilio's signed webhook gets TwiML that points the stream at the public wss:// URL, an unsigned or
wrongly signed one is refused, and a whole call over wss:// ends transferred. `.ci/run` and `make test` install
nginx; this test installs nothing.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import ssl
import subprocess
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from twilio.request_validator import RequestValidator
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import ClientConnection, connect

from qa.load_harness import ServerProcess, free_port
from qa.twilio_emulator import AgentMark, AgentMedia, TwilioSide, check_server_message
from qa.twilio_signing import TwilioCredentials, stream_parameters
from telephony.twilio.framing import FRAME_MS
from telephony.twilio.twiml import MEDIA_PATH

pytestmark = pytest.mark.slow  # starts nginx and a server subprocess that loads the models

REPO = Path(__file__).resolve().parent.parent
SITE_TEMPLATE = REPO / "deploy" / "nginx" / "voice-agent.conf"
NGINX = Path("/usr/sbin/nginx")
OPENSSL = "openssl"
AUTH_TOKEN = "twilio-auth-token-for-the-proxy-test"
AGENT_TOKEN = "agent-token-for-the-proxy-test"
NGINX_START_TIMEOUT_S = 30.0
NGINX_STOP_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 60.0
"""Longest the whole call may take: the greeting and the transfer sentence come from the phrase cache."""
RECORD_TIMEOUT_S = 15.0
SILENCE = b"\xff" * 160
SILENCE_FRAMES = 1000 // FRAME_MS


# --- the site file, rendered for the test ------------------------------------------------------------------------


def render_site(template: str, *, https_port: int, http_port: int, server_port: int, cert: Path, key: Path) -> str:
    """The deploy site with its ports on 127.0.0.1 and the throwaway certificate; IPv6 listeners dropped.

    Raises:
        ValueError: the template no longer has a line this substitutes (exactly as often as expected), so the test
            would not run the file it claims to.
    """
    substitutions = [
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{server_port};", 1),
        ("listen 80;", f"listen 127.0.0.1:{http_port};", 1),
        ("listen [::]:80;", "", 1),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;", 1),
        ("listen [::]:443 ssl;", "", 1),
        ("/etc/letsencrypt/live/voice.example.com/fullchain.pem", str(cert), 1),
        ("/etc/letsencrypt/live/voice.example.com/privkey.pem", str(key), 1),
    ]
    for old, new, count in substitutions:
        if template.count(old) != count:
            raise ValueError(f"{SITE_TEMPLATE} has {template.count(old)} times {old!r}, expected {count}")
        template = template.replace(old, new)
    return template


def main_config(prefix: Path, site: Path) -> str:
    """nginx.conf around the site: everything nginx writes (pid, logs, temporary files) inside `prefix`."""
    # As root, nginx would switch its workers to nobody, who cannot read the test's folder.
    user = (
        f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};" if os.geteuid() == 0 else ""
    )
    temp_paths = "\n".join(
        f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{
    worker_connections 256;
}}
http {{
    access_log {prefix / "access.log"};
{temp_paths}
    include {site};
}}
"""


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its subjectAltName, which TLS clients check) and its key, valid for a day."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


# --- nginx and the server, started once for the module and always stopped -----------------------------------------


class Nginx:
    """Debian's nginx in the foreground, as this user, with its files in `prefix`."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self.log_path = prefix / "nginx.out"
        self.popen: subprocess.Popen[bytes] | None = None

    def command(self, *extra: str) -> list[str]:
        return [
            str(NGINX),
            "-p",
            str(self.prefix),
            "-e",
            str(self.prefix / "error.log"),
            "-c",
            str(self.prefix / "nginx.conf"),
            *extra,
        ]

    def start(self, health_url: str, context: ssl.SSLContext) -> None:
        """Check the configuration, start nginx and wait until `health_url` answers 200 through it.

        Raises:
            AssertionError: the configuration is invalid, or nginx did not start; with its error log.
        """
        check = subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, f"nginx -t refused the rendered site:\n{check.stderr}"
        with self.log_path.open("wb") as log_file:
            self.popen = subprocess.Popen(
                self.command("-g", "daemon off;"), stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + NGINX_START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.popen.poll() is None, f"nginx exited with code {self.popen.returncode}:\n{self.log_tail()}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(health_url, verify=context, timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(
            f"{health_url} did not answer 200 within {NGINX_START_TIMEOUT_S:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        text = ""
        for path in (self.log_path, self.prefix / "error.log"):
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (nginx's fast shutdown), then SIGKILL if it lingers."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(NGINX_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(NGINX_STOP_TIMEOUT_S)


@dataclass(frozen=True)
class Proxied:
    """The server behind nginx, as a test reaches it."""

    https_base: str
    """The public base URL: nginx's TLS port; VOICE_AGENT_PUBLIC_URL is set to it."""
    http_base: str
    """nginx's plain-HTTP port, which only redirects."""
    context: ssl.SSLContext
    """Trusts the throwaway certificate."""
    server: ServerProcess

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.https_base + path, verify=self.context, timeout=10, **kwargs)

    def post_webhook(self, path: str, form: dict[str, str], signature: str | None) -> httpx.Response:
        headers = {"X-Twilio-Signature": signature} if signature is not None else {}
        return httpx.post(self.https_base + path, data=form, headers=headers, verify=self.context, timeout=10)

    def signed_webhook(self, path: str, form: dict[str, str]) -> httpx.Response:
        """A webhook signed as Twilio signs it: over the URL it called, the public one."""
        return self.post_webhook(
            path, form, RequestValidator(AUTH_TOKEN).compute_signature(self.https_base + path, form)
        )


def require_nginx() -> None:
    """A missing nginx is a failure with the fix in the message (`make test` installs it), never a skip."""
    if not NGINX.exists():
        pytest.fail(f"the proxy test needs Debian's nginx at {NGINX} (apt-get install nginx; make test installs it)")


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    require_nginx()
    prefix = tmp_path_factory.mktemp("nginx")
    cert, key = self_signed_certificate(prefix)
    server = ServerProcess()
    https_port = free_port()
    http_port = next(port for port in iter(free_port, None) if port not in (https_port, server.port))
    https_base = f"https://127.0.0.1:{https_port}"
    nginx = Nginx(prefix)
    try:
        # The server inherits this process's environment when it starts.
        with pytest.MonkeyPatch.context() as environment:
            environment.setenv("VOICE_AGENT_PUBLIC_URL", https_base)
            environment.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
            environment.setenv("VOICE_AGENT_AGENT_TOKEN", AGENT_TOKEN)
            environment.setenv("VOICE_AGENT_TRANSFER_MODE", "close_stream")
            for variable in ("VOICE_AGENT_DATABASE_URL", "VOICE_AGENT_ADMIN_TOKEN", "VOICE_AGENT_METRICS_TOKEN"):
                environment.delenv(variable, raising=False)
            server.start()
        site = prefix / "voice-agent.conf"
        site.write_text(
            render_site(
                SITE_TEMPLATE.read_text(),
                https_port=https_port,
                http_port=http_port,
                server_port=server.port,
                cert=cert,
                key=key,
            )
        )
        (prefix / "nginx.conf").write_text(main_config(prefix, site))
        context = ssl.create_default_context(cafile=str(cert))
        nginx.start(f"{https_base}/healthz", context)
        yield Proxied(https_base, f"http://127.0.0.1:{http_port}", context, server)
    finally:
        nginx.stop()
        server.stop()


# --- webhooks through the proxy ------------------------------------------------------------------------------------


def incoming_call(side: TwilioSide) -> dict[str, str]:
    """The form of Twilio's "A call comes in" webhook (the fields the server reads, and some it does not)."""
    return {
        "CallSid": side.call_sid,
        "AccountSid": side.account_sid,
        "From": "+15005550006",
        "To": "+15005550001",
        "CallStatus": "ringing",
        "Direction": "inbound",
    }


def stream_url(twiml: str) -> str:
    stream = ElementTree.fromstring(twiml).find("./Connect/Stream")
    assert stream is not None, twiml
    return stream.attrib["url"]


def test_a_signed_webhook_gets_twiml_that_streams_to_the_public_wss_url(proxy: Proxied):
    response = proxy.signed_webhook("/twilio/voice", incoming_call(TwilioSide.random()))
    assert response.status_code == 200, response.text
    assert stream_url(response.text) == "wss://" + proxy.https_base.removeprefix("https://") + MEDIA_PATH
    connect = ElementTree.fromstring(response.text).find("./Connect")
    assert connect is not None and connect.attrib["action"] == proxy.https_base + "/twilio/after-stream"


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(lambda proxy, form: None, id="unsigned"),
        pytest.param(
            lambda proxy, form: RequestValidator("another-token").compute_signature(
                proxy.https_base + "/twilio/voice", form
            ),
            id="another-token",
        ),
        # What a proxy-unaware check would accept: the URL the server itself was called on, behind nginx.
        pytest.param(
            lambda proxy, form: RequestValidator(AUTH_TOKEN).compute_signature(
                proxy.server.http_base + "/twilio/voice", form
            ),
            id="signed-over-the-internal-url",
        ),
    ],
)
def test_an_unsigned_or_wrongly_signed_webhook_is_refused(
    proxy: Proxied, signature: Callable[[Proxied, dict[str, str]], str | None]
):
    form = incoming_call(TwilioSide.random())
    response = proxy.post_webhook("/twilio/voice", form, signature(proxy, form))
    assert response.status_code == 403


def test_plain_http_is_redirected_to_https(proxy: Proxied):
    response = httpx.get(proxy.http_base + "/healthz", timeout=10)
    assert response.status_code == 301
    assert response.headers["location"] == "https://127.0.0.1/healthz"


def test_metrics_are_not_served_through_the_proxy(proxy: Proxied):
    assert proxy.get("/metrics").status_code == 404
    assert httpx.get(proxy.server.http_base + "/metrics", timeout=10).status_code == 200


# --- a whole call over wss:// through the proxy -------------------------------------------------------------------


def answer(ws: ClientConnection, side: TwilioSide, message: str | bytes, received: list[object]) -> None:
    """Check one server message as Twilio would (media, mark or clear, well formed; else ServerProtocolError), keep
    it, and echo a mark at once (as if played)."""
    meaning = check_server_message(message, side.stream_sid)
    received.append(meaning)
    if isinstance(meaning, AgentMark):
        ws.send(side.mark(meaning.name))


def drain(ws: ClientConnection, side: TwilioSide, received: list[object], wait_s: float) -> None:
    """Answer what the server sends until it has been quiet for `wait_s`."""
    while True:
        try:
            message = ws.recv(timeout=wait_s)
        except TimeoutError:
            return
        answer(ws, side, message, received)


def play_until_closed(ws: ClientConnection, side: TwilioSide, received: list[object], timeout_s: float) -> None:
    """Answer what the server sends until it closes the stream normally, within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    with pytest.raises(ConnectionClosedOK):
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"the server did not close the stream within {timeout_s:.0f} s")
            answer(ws, side, ws.recv(timeout=remaining), received)


def wait_for_record(proxy: Proxied, call_sid: str) -> dict:
    """The call's record from the API through nginx, once the call is finished."""
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    deadline = time.monotonic() + RECORD_TIMEOUT_S
    while True:
        response = proxy.get(f"/api/calls/{call_sid}", headers=headers)
        if response.status_code == 200 and response.json()["state"] == "finished":
            return response.json()
        assert time.monotonic() < deadline, f"no finished record of {call_sid}: {response.status_code} {response.text}"
        time.sleep(0.2)


def test_a_whole_call_over_wss_through_the_proxy_ends_transferred(proxy: Proxied):
    side = TwilioSide.random()
    webhook = proxy.signed_webhook("/twilio/voice", incoming_call(side))
    assert webhook.status_code == 200, webhook.text
    greeting: list[object] = []
    after_key: list[object] = []
    side.custom_parameters = stream_parameters(webhook.text)  # the stream's secret, passed back in start
    url = stream_url(webhook.text)
    signed = TwilioCredentials(AUTH_TOKEN).headers(url)  # Twilio signs the wss:// URL it opens
    with connect(url, additional_headers=signed, ssl=proxy.context, open_timeout=10, close_timeout=5) as ws:
        ws.send(side.connected())
        ws.send(side.start())
        for index in range(SILENCE_FRAMES):  # a second of silence, at Twilio's pace, while the greeting plays
            ws.send(side.media(SILENCE, index * FRAME_MS))
            drain(ws, side, greeting, wait_s=FRAME_MS / 1000)
        ws.send(side.dtmf("0"))
        play_until_closed(ws, side, after_key, CALL_TIMEOUT_S)
        assert ws.close_code == 1000

    assert any(isinstance(message, AgentMedia) for message in greeting), "no greeting through the proxy"
    # The transfer sentence, in full, then the close: audio, and its mark last.
    assert any(isinstance(message, AgentMedia) for message in after_key), "no transfer sentence"
    assert isinstance(after_key[-1], AgentMark)

    record = wait_for_record(proxy, side.call_sid)
    assert record["outcome"] == {"action": "transfer", "department": "customer_service"}
    assert record["turns"][-1]["decision"]["rule"] == "dtmf_zero"
    assert record["protocol_errors"] == 0 and record["failure"] is None

    # Twilio's next request, for the call that left the stream: a <Dial> to the department.
    after_stream = proxy.signed_webhook(
        "/twilio/after-stream", {"CallSid": side.call_sid, "AccountSid": side.account_sid}
    )
    assert after_stream.status_code == 200, after_stream.text
    assert ElementTree.fromstring(after_stream.text).find("./Dial") is not None, after_stream.text
