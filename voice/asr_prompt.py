"""The Whisper prompt the server gives the recogniser, built from the catalogue at start-up.

Whisper takes a prompt as text that came before the utterance, and words in it become more likely. The server's
prompt is the greeting: what every caller has just heard, naming the company and the topics in well-formed
sentences. Other prompts were measured and not adopted (`qa/domain_terms.py`; figures in docs/benchmarks.md).
"""

from __future__ import annotations

from voice.prompts import Catalogue


def catalogue_prompt(catalogue: Catalogue) -> str:
    """The prompt the server gives Whisper: the catalogue's greeting, as the caller heard it, on one line."""
    return " ".join(catalogue.replies.greeting.split())
