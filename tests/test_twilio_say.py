"""The replies Twilio speaks with <Say> are kept apart from those our own voice speaks (and preloads)."""

from __future__ import annotations

from telephony.twilio.say import SAID_BY_TWILIO, replies_spoken_by_agent
from voice.prompts import LANGUAGES, load_catalogue

from .helpers import PROMPTS_DIR


def test_replies_twilio_says_are_not_among_those_our_voice_speaks():
    replies = load_catalogue(PROMPTS_DIR, "en").replies
    spoken = replies_spoken_by_agent(replies)
    assert "greeting" in spoken and "transfer_to:billing" in spoken
    assert "queue_wait" not in spoken and "transfer_unanswered" not in spoken
    assert set(spoken) < set(replies.texts())


def test_every_reply_twilio_says_is_a_fixed_reply_in_every_language():
    for language in LANGUAGES:
        replies = load_catalogue(PROMPTS_DIR, language).replies
        texts = replies.texts()
        assert set(texts) >= SAID_BY_TWILIO, language  # a renamed key would no longer be kept out of the preload
        assert set(replies_spoken_by_agent(replies)) == set(texts) - SAID_BY_TWILIO
