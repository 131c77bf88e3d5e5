"""Everything Twilio: the Media Streams messages and loop, one session per call, the mu-law codec and 8 kHz 20 ms
framing, the webhooks, TwiML, transfers and the replies Twilio says itself. The wire format is converted here and
nowhere else: the voice pipeline takes and gives PCM at the rate this package declares."""
