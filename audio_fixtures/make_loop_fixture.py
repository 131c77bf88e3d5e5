"""Writes espeak_loop_8k.wav: a caller line on which Whisper tiny.en (beam 5, no prompt) loops ("Hi, sir. ...").

espeak-ng 1.51 (Debian 12, `apt-get install espeak-ng`), voice en-us at 160 words per minute, peak -6 dBFS,
through the telephone path of qa/caller_audio.py (8 kHz G.711 mu-law), stored as the decoded 8 kHz PCM the
server receives. tests/test_asr.py checks that the recogniser's loop guard turns it back into words.

Usage: python audio_fixtures/make_loop_fixture.py [OUTPUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

from qa.caller_audio import ASR_RATE_HZ, PHONE_RATE_HZ, espeak_ng
from telephony.twilio.mulaw import float32_to_mulaw, mulaw_to_float32
from voice.resample import resample
from voice.wavfile import write_wav

TEXT = (
    "hi so i run a little hair salon and we have the business internet and the office line with you and this month "
    "the invoice is almost double what it normally is why is that"
)


def main() -> None:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("espeak_loop_8k.wav")
    samples_8k = resample(espeak_ng(TEXT, "en-us"), ASR_RATE_HZ, PHONE_RATE_HZ)
    write_wav(output, mulaw_to_float32(float32_to_mulaw(samples_8k)), PHONE_RATE_HZ)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
