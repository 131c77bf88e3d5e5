"""Everything about speech and decisions. Knows nothing about Twilio or any other telephony provider."""
