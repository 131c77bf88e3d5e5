"""Heard examples: the catalogue's examples as the recogniser wrote them down when many voices spoke them.

The intent classifier learns from clean text, but on the phone it reads Whisper's transcripts, and those carry the
recogniser's habits ("my last wheel" for "my last bill"). `prompts/<lang>/heard_examples.yaml` holds such
transcripts, each labelled with the intent of the catalogue example it was spoken from; the engine trains on them
beside the catalogue's own examples. The file is generated (`python -m qa.heard_examples`) and versioned, never
made at start-up. An entry whose source example is no longer in the catalogue under its intent is not used, so that
editing the catalogue never leaves stale evidence behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from voice.prompts import Catalogue, PromptError, _parse, _read_yaml

HEARD_EXAMPLES_FILE = "heard_examples.yaml"


class HeardExample(BaseModel):
    """One transcript of one spoken catalogue example."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    intent: str = Field(min_length=1)
    """The intent of the source example."""
    heard: str = Field(min_length=1)
    """What the recogniser wrote."""
    source: str = Field(min_length=1)
    """The catalogue example that was spoken, word for word."""
    voice: str = Field(min_length=1)
    """Who spoke it and how (voice, pace, pitch, line noise), for provenance."""


class HeardExamplesFile(BaseModel):
    """The whole file: how it was made, and the examples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provenance: dict[str, Any]
    """Generator, recogniser, voices, held-out voices and the date: how to make the file again."""
    examples: list[HeardExample]


def heard_examples_path(prompts_dir: Path, language: str) -> Path:
    """Where the heard examples of `language` live."""
    return Path(prompts_dir) / language / HEARD_EXAMPLES_FILE


def load_heard_examples(catalogue: Catalogue) -> dict[str, tuple[str, ...]]:
    """The heard examples for `catalogue`, by intent; empty when the catalogue has no such file.

    Raises:
        PromptError: the file is malformed or names an intent the catalogue does not have.
    """
    path = heard_examples_path(catalogue.source_dir, catalogue.language)
    if not path.is_file():
        return {}
    parsed = _parse(HeardExamplesFile, _read_yaml(path), path)
    return usable(parsed.examples, catalogue, path)


def usable(examples: list[HeardExample], catalogue: Catalogue, where: Path | str) -> dict[str, tuple[str, ...]]:
    """The examples whose source is still an example of their intent, grouped by intent, in file order.

    Raises:
        PromptError: an example names an intent the catalogue does not have.
    """
    sources: Mapping[str, frozenset[str]] = {
        name: frozenset(intent.examples) for name, intent in catalogue.intents.items()
    }
    grouped: dict[str, list[str]] = {}
    for index, example in enumerate(examples):
        if example.intent not in sources:
            raise PromptError(f"{where}: examples.{index}: unknown intent {example.intent!r}")
        if example.source in sources[example.intent]:
            grouped.setdefault(example.intent, []).append(example.heard)
    return {name: tuple(texts) for name, texts in grouped.items()}
