"""The Whisper prompt the server gives the recogniser, built from the catalogue at start-up.

Whisper takes a prompt as text that came before the utterance, and words in it become more likely. The server's
prompt is the greeting: what every caller has just heard, naming the company and the topics in well-formed
sentences. Other prompts were measured and not adopted (`qa/domain_terms.py`; figures in docs/benchmarks.md).

Before the greeting comes a line of speech that trails off ("Um, so, my internet is not working and, uh..."). Whisper
copies the style of its prompt, and with well-formed sentences alone it tidies a caller's unfinished phrase into a
finished one: "My internet is not working and", cut at the caller's pause, came out as "My internet is not working."
and ended the turn on a complete request while the caller was still speaking. With the lead it keeps the "and..."
and the turn waits (docs/benchmarks.md, "Fifth round"). English only: it was measured on English speech alone.
"""

from __future__ import annotations

from voice.prompts import Catalogue

TRAILING_OFF_LEAD = {"en": "Um, so, my internet is not working and, uh..."}
"""Per language, the line that teaches the recogniser to keep a phrase that trails off as it was said."""


def catalogue_prompt(catalogue: Catalogue) -> str:
    """The prompt the server gives Whisper: the language's trailing-off lead, if any, then the catalogue's greeting
    as the caller heard it, on one line."""
    greeting = " ".join(catalogue.replies.greeting.split())
    lead = TRAILING_OFF_LEAD.get(catalogue.language)
    return f"{lead} {greeting}" if lead else greeting
