"""Which model files the server checks at start-up, against which digests, before any of them is loaded.

The bundled models come from third-party packages, so every file read from them must match `BUNDLED_SHA256`
(voice/models.py). A model the operator configures (VOICE_AGENT_WHISPER_MODEL, VOICE_AGENT_PIPER_VOICE) is the
operator's own file: its weights are checked when the operator pins their digest (VOICE_AGENT_WHISPER_MODEL_SHA256,
VOICE_AGENT_PIPER_VOICE_SHA256), and otherwise the start-up log says that they were not checked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from telephony.settings import Settings
from voice.model_integrity import ModelIntegrityError, verify_directory, verify_sha256
from voice.models import (
    BUNDLED_SHA256,
    PIPER_VOICE_PACKAGE,
    WHISPER_MODEL_VARIABLE,
    WHISPER_PACKAGE,
    bundled_whisper_dir,
)


@dataclass(frozen=True, slots=True)
class ModelCheck:
    """What a start-up check covered, for the log."""

    files: int
    """Files whose SHA-256 matched."""
    megabytes: float
    """Their size together."""
    seconds: float
    """Time spent hashing them."""
    unchecked: list[str] = field(default_factory=list)
    """Configured model files that were not checked, because no digest was pinned for them."""

    def summary(self) -> str:
        """One line for the start-up log."""
        # Whole megabytes: the log's redaction reads "141.3 MB" as a Dutch postcode (1413 MB).
        line = f"model files checked: {self.files} files, {self.megabytes:.0f} MB, SHA-256 in {self.seconds:.2f} s"
        if self.unchecked:
            line += f"; not checked (no digest pinned): {', '.join(self.unchecked)}"
        return line


def check_model_files(settings: Settings, whisper_dir: Path, piper: tuple[Path, Path] | None) -> ModelCheck:
    """Check the model files the server is about to load (blocking: reads every byte; run it off the event loop).

    Args:
        settings: which models are configured, and the digests pinned for them.
        whisper_dir: the Whisper model directory the server chose (`telephony.voice_services.recognizer_model_dir`).
        piper: the Piper voice it chose, (model, config); None for the espeak-ng stand-in, which has no model file.

    Raises:
        voice.model_integrity.ModelIntegrityError: a file's bytes are not the pinned ones, or the bundled Whisper
            directory holds a file that is not pinned; the message names the file.
    """
    started = time.perf_counter()
    checked: list[Path] = []
    unchecked: list[str] = []
    if settings.whisper_model is None and settings.language != "en":
        pass  # multilingual Whisper: `multilingual_whisper_dir` verified every file against its pins when it found it
    elif settings.whisper_model is None:
        if whisper_dir.resolve() != bundled_whisper_dir():
            # Another bundled model (of another package) must bring its own digests before it may run.
            raise ModelIntegrityError(
                f"Whisper model {whisper_dir}: no SHA-256 is pinned for it (BUNDLED_SHA256 in voice/models.py pins "
                f"{WHISPER_PACKAGE} only); pin its files there, or configure it with {WHISPER_MODEL_VARIABLE} and "
                f"{WHISPER_MODEL_VARIABLE}_SHA256"
            )
        verify_directory(whisper_dir, BUNDLED_SHA256[WHISPER_PACKAGE], f"Whisper tiny.en ({WHISPER_PACKAGE})")
        checked += [whisper_dir / name for name in BUNDLED_SHA256[WHISPER_PACKAGE]]
    elif settings.whisper_model_sha256 is not None:
        weights = whisper_dir / "model.bin"
        verify_sha256(weights, settings.whisper_model_sha256, "VOICE_AGENT_WHISPER_MODEL_SHA256: model.bin")
        checked.append(weights)
    else:
        unchecked.append(str(whisper_dir))

    if piper is None or settings.voice is not None:
        pass  # the stand-in has no model file; a voice of the manifest was verified against its pins when chosen
    elif settings.piper_voice is None:
        pinned = BUNDLED_SHA256[PIPER_VOICE_PACKAGE]
        for path in piper:
            expected = pinned.get(path.name)
            if expected is None:  # another release of the package, with other file names
                raise ModelIntegrityError(
                    f"Piper voice ({PIPER_VOICE_PACKAGE}): {path} is none of its pinned files ({', '.join(pinned)}); "
                    "install the release pinned in pyproject.toml"
                )
            verify_sha256(path, expected, f"Piper voice ({PIPER_VOICE_PACKAGE}) {path.name}")
            checked.append(path)
    elif settings.piper_voice_sha256 is not None:
        verify_sha256(piper[0], settings.piper_voice_sha256, "VOICE_AGENT_PIPER_VOICE_SHA256: the voice")
        checked.append(piper[0])
    else:
        unchecked.append(str(piper[0]))

    size = sum(path.stat().st_size for path in checked)
    return ModelCheck(len(checked), size / 1e6, time.perf_counter() - started, unchecked)
