"""`voice-agent models fetch` downloads (telephony/model_fetch.py) against a local HTTP server on 127.0.0.1: a good
file, a wrong checksum, a download cut off and then resumed with HTTP Range, and no network. Each ends with a clear
message and never leaves a half-written or unverified file under the name the loader reads."""

from __future__ import annotations

import hashlib
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from telephony.model_fetch import FetchError, fetch_entry
from telephony.model_manifest import ModelEntry, PinnedFile, status
from voice.model_integrity import ModelIntegrityError

VOICE = b"onnx weights " * 5000
CONFIG = b'{"espeak": {"voice": "nl"}}'


class FakeHub:
    """Serves `files` with Range support; `cut_after` bytes of a file are sent before the connection drops."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: int | None = None
        self.ranges: list[str | None] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                hub.ranges.append(self.headers.get("Range"))
                if name not in hub.files:
                    self.send_error(404)
                    return
                data, start = hub.files[name], 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if hub.cut_after is not None:
                    body = body[: hub.cut_after]
                    hub.cut_after = None
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/voices"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    server = FakeHub()
    server.files = {"nl_test.onnx": VOICE, "nl_test.onnx.json": CONFIG}
    yield server
    server.close()


def voice_entry(base_url: str, voice_sha256: str | None = None) -> ModelEntry:
    return ModelEntry(
        name="nl_test",
        kind="piper",
        language="nl",
        description="a test voice",
        base_url=base_url,
        files=(
            PinnedFile(path="nl_test.onnx", size=len(VOICE), sha256=voice_sha256 or hashlib.sha256(VOICE).hexdigest()),
            PinnedFile(path="nl_test.onnx.json", size=len(CONFIG), sha256=hashlib.sha256(CONFIG).hexdigest()),
        ),
    )


def only_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_a_good_download_is_verified_private_and_reported(hub: FakeHub, tmp_path: Path) -> None:
    entry = voice_entry(hub.url)
    seen: list[tuple[str, int, int]] = []
    paths = fetch_entry(entry, tmp_path, progress=lambda name, done, total: seen.append((name, done, total)))
    assert [path.read_bytes() for path in paths] == [VOICE, CONFIG]
    assert only_files(entry.folder(tmp_path)) == ["nl_test.onnx", "nl_test.onnx.json"]
    assert stat.S_IMODE(paths[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(entry.folder(tmp_path).stat().st_mode) == 0o700
    assert seen[-1] == ("nl_test.onnx.json", len(CONFIG), len(CONFIG))
    assert status(entry, tmp_path).ready
    assert entry.piper_files(tmp_path) == tuple(paths)
    # A verified copy is not downloaded again.
    requests = len(hub.ranges)
    fetch_entry(entry, tmp_path)
    assert len(hub.ranges) == requests


def test_a_wrong_checksum_deletes_the_download(hub: FakeHub, tmp_path: Path) -> None:
    entry = voice_entry(hub.url, voice_sha256="0" * 64)
    with pytest.raises(ModelIntegrityError, match=r"has SHA-256 .* expected 0000") as error:
        fetch_entry(entry, tmp_path)
    assert hub.url in str(error.value)
    assert only_files(entry.folder(tmp_path)) == []
    assert not status(entry, tmp_path).ready


def test_an_interrupted_download_keeps_only_a_hidden_part_and_resumes_with_range(hub: FakeHub, tmp_path: Path) -> None:
    entry = voice_entry(hub.url)
    hub.cut_after = 20_000
    with pytest.raises(FetchError, match=r"cut off after 20000 of 65000 bytes.*fetching again resumes it"):
        fetch_entry(entry, tmp_path)
    assert only_files(entry.folder(tmp_path)) == [".nl_test.onnx.part"]
    assert not status(entry, tmp_path).ready

    paths = fetch_entry(entry, tmp_path)
    assert hub.ranges[-2:] == ["bytes=20000-", None]  # the rest of the voice, then the config whole
    assert paths[0].read_bytes() == VOICE
    assert only_files(entry.folder(tmp_path)) == ["nl_test.onnx", "nl_test.onnx.json"]


def test_a_corrupt_part_is_deleted_so_that_the_next_fetch_starts_over(hub: FakeHub, tmp_path: Path) -> None:
    entry = voice_entry(hub.url)
    folder = entry.folder(tmp_path)
    folder.mkdir(parents=True)
    (folder / ".nl_test.onnx.part").write_bytes(b"X" * 100)  # wrong bytes, resumed: the whole fails its check
    with pytest.raises(ModelIntegrityError):
        fetch_entry(entry, tmp_path)
    assert only_files(folder) == []
    assert fetch_entry(entry, tmp_path)[0].read_bytes() == VOICE


def test_no_network_gives_a_clear_message_and_leaves_nothing(tmp_path: Path) -> None:
    closed = FakeHub()
    url = closed.url
    closed.close()  # nothing listens on that port any more
    entry = voice_entry(url)
    with pytest.raises(FetchError, match=r"cannot download http://127\.0\.0\.1:\d+/voices/nl_test\.onnx: .*network"):
        fetch_entry(entry, tmp_path)
    assert only_files(entry.folder(tmp_path)) == []


def test_a_missing_file_on_the_server_names_the_http_error(hub: FakeHub, tmp_path: Path) -> None:
    del hub.files["nl_test.onnx"]
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_entry(voice_entry(hub.url), tmp_path)
    assert only_files(voice_entry(hub.url).folder(tmp_path)) == []


def test_a_replaced_fetched_file_is_reported_corrupt(hub: FakeHub, tmp_path: Path) -> None:
    entry = voice_entry(hub.url)
    paths = fetch_entry(entry, tmp_path)
    paths[0].write_bytes(b"replaced")
    result = status(entry, tmp_path)
    assert result.corrupt and "CORRUPT" in result.text and not result.ready
