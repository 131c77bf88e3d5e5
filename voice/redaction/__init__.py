"""Personal data in caller text, replaced by typed markers before anything is stored, logged, shown or whispered.

The public API:

- `redact(text, language)` redacts one text on its own: ``redact("my card is 4111 1111 1111 1111", "en").text ==
  "my card is [card number]"``.
- `RedactionBuffer(language)`, one per call, redacts turn by turn and revises earlier turns when a number read over
  several turns is completed.
- `Redaction` (text and spans), `RedactedSpan` and `Kind` describe the result.

Inside: `finder` finds the spans in one text, `buffer` works across turns, `spoken_numbers` and `spelling` read
numbers and letters as speech recognition writes them, `checks` validates what was read (Luhn, IBAN, BSN, phones).
"""

from voice.redaction.buffer import RedactionBuffer, TurnRedaction
from voice.redaction.finder import LANGUAGES, Kind, RedactedSpan, Redaction, redact

__all__ = ["LANGUAGES", "Kind", "RedactedSpan", "Redaction", "RedactionBuffer", "TurnRedaction", "redact"]
