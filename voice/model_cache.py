"""The model cache: a private folder where model files made or fetched on this machine are kept, verified.

Files land there whole or not at all: each is written to a temporary file beside its final name (0600, in a 0700
folder), its SHA-256 is checked against the pinned one, and only then is it renamed into place, so a crash, a full
disk or a wrong download never leaves a half-written or unverified file under a name the loader trusts.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from voice.model_integrity import verify_sha256

MODEL_CACHE_VARIABLE = "VOICE_AGENT_MODEL_CACHE"

_PRIVATE_DIR = 0o700
_PRIVATE_FILE = 0o600


def default_model_cache() -> Path:
    """`VOICE_AGENT_MODEL_CACHE` when set, else `$XDG_CACHE_HOME/voice-agent` (default `~/.cache/voice-agent`)."""
    explicit = os.environ.get(MODEL_CACHE_VARIABLE)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "voice-agent"


def private_dir(path: Path) -> Path:
    """Create `path` if needed and make it 0700, and any parent folder it creates too: model files are the
    operator's alone.

    Raises:
        OSError: the folder cannot be created (the message names it).
    """
    created = [folder for folder in (path, *path.parents) if not folder.exists()]
    path.mkdir(mode=_PRIVATE_DIR, parents=True, exist_ok=True)
    for folder in (path, *created):
        folder.chmod(_PRIVATE_DIR)
    return path


@contextmanager
def staged_file(final: Path) -> Iterator[tuple[Path, BinaryIO]]:
    """A new private temporary file beside `final`, open for writing; removed on leaving unless renamed.

    Yields:
        (its path, the open binary stream).
    """
    private_dir(final.parent)
    descriptor, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    staged = Path(name)
    try:
        os.fchmod(descriptor, _PRIVATE_FILE)
        with os.fdopen(descriptor, "wb") as stream:
            yield staged, stream
    finally:
        staged.unlink(missing_ok=True)


def install_verified(staged: Path, final: Path, sha256: str, what: str) -> Path:
    """Rename `staged` to `final` once its SHA-256 is the pinned one; on a mismatch delete it and raise.

    Raises:
        voice.model_integrity.ModelIntegrityError: the digest differs (nothing is left at `final` or `staged`).
    """
    try:
        verify_sha256(staged, sha256, what)
    except Exception:
        staged.unlink(missing_ok=True)
        raise
    staged.chmod(_PRIVATE_FILE)
    os.replace(staged, final)
    return final


def write_verified(final: Path, sha256: str, what: str, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file with `write`, verify it and rename it into place (see the module docstring).

    Raises:
        voice.model_integrity.ModelIntegrityError: what `write` produced is not the pinned file.
        OSError: writing failed; nothing is left behind.
    """
    with staged_file(final) as (staged, stream):
        write(stream)
        stream.flush()
        os.fsync(stream.fileno())
        stream.close()
        return install_verified(staged, final, sha256, what)
