"""Which fixed replies Twilio speaks with its own voice (<Say>), and so which ones our voice must have ready.

After the media stream has ended, the transfer's TwiML speaks the fallbacks, the queue's wait message and the
message a call turned away at capacity hears (`telephony.twilio.transfer`). Every other fixed reply is spoken by the
voice pipeline, which preloads them so that none waits for synthesis.
"""

from __future__ import annotations

from voice.prompts import Replies

SAID_BY_TWILIO = frozenset(
    {"transfer_unanswered", "callback_confirmed", "leave_message", "message_thanks", "queue_wait", "over_capacity"}
)
"""Keys of `Replies.texts` that Twilio says with <Say>, never our voice."""


def replies_spoken_by_agent(replies: Replies) -> dict[str, str]:
    """The fixed replies our own voice speaks: `replies.texts()` without those Twilio says after the stream.

    Args:
        replies: the catalogue's fixed replies in one language.

    Returns:
        Reply key -> text, in `Replies.texts` order.
    """
    return {key: text for key, text in replies.texts().items() if key not in SAID_BY_TWILIO}
