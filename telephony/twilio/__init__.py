"""Everything Twilio: the Media Streams messages and loop, one session per call, 8 kHz mu-law 20 ms framing, the
webhooks, TwiML and transfers. The wire format is converted here and nowhere else."""
