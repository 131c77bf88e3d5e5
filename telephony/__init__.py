"""The server around the voice core: the Twilio transport (`telephony.twilio`), the web service
(`telephony.web`), call records (`telephony.storage`), configuration, the app factory and the command line."""
