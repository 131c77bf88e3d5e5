"""The desk's visible words in the deployment's language, from one catalogue: prompts/<lang>/desk.yaml.

The server fills a page's ``{{name}}`` markers with the labels (HTML-escaped) and carries the same labels in a JSON
data block, which the scripts read through desk_static/labels.js; no label is written in a script. English is the
default and the reference: every language has exactly its names.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from voice.prompts import PromptError, _check_same_names, _read_yaml

DESK_LABELS_FILE = "desk.yaml"
REFERENCE_LANGUAGE = "en"

_MARKER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
# Filled by the server itself rather than from the catalogue.
_PAGE_LANGUAGE, _LABELS_DATA = "lang", "labels_json"


def _read_labels(path: Path) -> dict[str, str]:
    data = _read_yaml(path)
    if not isinstance(data, dict) or not data:
        raise PromptError(f"{path}: expected a mapping of label name to text")
    for name, text in data.items():
        if not isinstance(text, str) or not text.strip():
            raise PromptError(f"{path}: {name}: expected a non-empty text")
    return data


@lru_cache(maxsize=8)
def desk_labels(prompts_dir: Path, language: str) -> Mapping[str, str]:
    """The desk's labels for `language` (read once per folder and language).

    Raises:
        voice.prompts.PromptError: the file is missing or malformed, or its names differ from English's.
    """
    path = prompts_dir / language / DESK_LABELS_FILE
    labels = _read_labels(path)
    if language != REFERENCE_LANGUAGE:
        reference = _read_labels(prompts_dir / REFERENCE_LANGUAGE / DESK_LABELS_FILE)
        _check_same_names(reference, labels, path, f"labels (they must match {REFERENCE_LANGUAGE}/{DESK_LABELS_FILE})")
    return MappingProxyType(labels)


def _labels_data(labels: Mapping[str, str]) -> str:
    # Inside <script type="application/json">, "<" could close the element: written as its JSON escape instead.
    return json.dumps(dict(labels), ensure_ascii=False).replace("<", "\\u003c")


def render_page(template: str, labels: Mapping[str, str], language: str) -> str:
    """`template` with each ``{{name}}`` replaced: a label, ``{{lang}}`` the language, ``{{labels_json}}`` all labels.

    Raises:
        voice.prompts.PromptError: the template names a label the catalogue does not have.
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == _PAGE_LANGUAGE:
            return language
        if name == _LABELS_DATA:
            return _labels_data(labels)
        if name not in labels:
            raise PromptError(f"the desk page uses a label that {language}/{DESK_LABELS_FILE} lacks: {name}")
        return html.escape(labels[name])

    return _MARKER.sub(fill, template)
