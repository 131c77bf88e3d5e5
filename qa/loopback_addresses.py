"""Where a voice-agent server on this machine's loopback interface is reached, once for every QA server: the
in-thread `qa.loopback_server.LoopbackServer`, the in-process `qa.server.InProcessServer` and the subprocess
`qa.load_harness.ServerProcess`."""

from __future__ import annotations

from telephony.twilio.twiml import MEDIA_PATH

LOOPBACK_HOST = "127.0.0.1"


class LoopbackAddresses:
    """The addresses of a server on the loopback interface at its `port`."""

    port: int

    @property
    def http_base(self) -> str:
        """The HTTP base URL."""
        return f"http://{LOOPBACK_HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The media-stream URL, as `voice-agent replay --server` takes it."""
        return f"ws://{LOOPBACK_HOST}:{self.port}{MEDIA_PATH}"
