"""Downloads for `voice-agent models fetch`: pinned files, resumable, kept only when their SHA-256 matches.

Each file is downloaded to a hidden `.NAME.part` file beside its final name. An interrupted download leaves that
part behind and the next fetch asks only for the rest (HTTP Range); a part that turns out wrong (size or SHA-256) is
deleted. The final name appears only by a rename after the check, so the loader never sees a half-written or
unverified file.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from telephony.model_manifest import ModelEntry, PinnedFile
from voice.model_cache import install_verified, private_dir
from voice.model_errors import ModelNotFound
from voice.model_integrity import ModelIntegrityError, verify_sha256

CHUNK_BYTES = 1 << 16
TIMEOUT_S = 30.0
"""Longest wait for the server to answer or to send the next chunk."""

Progress = Callable[[str, int, int], None]
"""Called as (file name, bytes so far, total bytes) while downloading."""


class FetchError(ModelNotFound):
    """A download failed (no network, HTTP error, cut off); the message names the URL and what is kept for resuming."""


def fetch_entry(
    entry: ModelEntry, cache_dir: Path, mirror: str | None = None, progress: Progress | None = None
) -> list[Path]:
    """Download every file of a Piper voice into the model cache, skipping those already there and verified.

    Args:
        entry: a manifest entry with files to download.
        cache_dir: the model cache.
        mirror: a base URL to download from instead of the entry's `base_url` (the same pins apply).
        progress: told of the bytes as they arrive.

    Returns:
        The verified files, in the manifest's order.

    Raises:
        FetchError: a download failed; a resumable part is kept unless it was wrong.
        voice.model_integrity.ModelIntegrityError: a downloaded file is not the pinned one (it is deleted).
        ModelNotFound: the entry has nothing to download.
    """
    base_url = (mirror or entry.base_url or "").rstrip("/")
    if not entry.files or not base_url:
        raise ModelNotFound(f"{entry.name} has no files to download")
    folder = private_dir(entry.folder(cache_dir))
    return [
        fetch_file(f"{base_url}/{pinned.path}", pinned, folder / pinned.path, f"{entry.name} {pinned.path}", progress)
        for pinned in entry.files
    ]


def fetch_file(url: str, pinned: PinnedFile, final: Path, what: str, progress: Progress | None = None) -> Path:
    """Download `url` to `final` unless a verified copy is there; see the module docstring.

    Raises:
        FetchError, voice.model_integrity.ModelIntegrityError: as `fetch_entry`.
    """
    if final.is_file():
        try:
            verify_sha256(final, pinned.sha256, what)
            return final
        except ModelIntegrityError:
            final.unlink()  # a replaced or corrupt copy: fetch it again
    part = final.with_name(f".{final.name}.part")
    have = part.stat().st_size if part.is_file() else 0
    if have > pinned.size:
        part.unlink()
        have = 0
    if have < pinned.size:
        _download(url, part, have, pinned.size, progress)
    size = part.stat().st_size
    if size < pinned.size:  # the connection closed early without an error
        raise _cut_off(url, part, size, pinned.size, "the connection closed")
    if size > pinned.size:
        part.unlink()
        raise ModelIntegrityError(
            f"{what}: {url} sent {size} bytes, expected {pinned.size}; the download was deleted, fetch again"
        )
    return install_verified(part, final, pinned.sha256, f"{what} (downloaded from {url})")


def _download(url: str, part: Path, have: int, total: int, progress: Progress | None) -> None:
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code == 416:  # nothing left to send: the part is whole, and the check decides
            return
        raise FetchError(f"cannot download {url}: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise FetchError(
            f"cannot download {url}: {reason}; check the network (or give --mirror), then fetch again"
        ) from error
    with response:
        resumed = response.status == 206
        done = have if resumed else 0
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if resumed else os.O_TRUNC)
        with os.fdopen(os.open(part, flags, 0o600), "ab" if resumed else "wb") as out:
            try:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(part.name.removeprefix(".").removesuffix(".part"), done, total)
            except (OSError, http.client.HTTPException) as error:
                out.flush()
                raise _cut_off(url, part, done, total, repr(error)) from error


def _cut_off(url: str, part: Path, done: int, total: int, why: str) -> FetchError:
    return FetchError(
        f"the download of {url} was cut off after {done} of {total} bytes ({why}); the part is kept as {part} and "
        "fetching again resumes it"
    )
