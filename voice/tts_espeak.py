"""A stand-in voice: Debian's espeak-ng (`apt-get install espeak-ng`) behind `voice.tts.SpeechSynthesizer`.

For CI and tests only. No Dutch Piper voice is on any registry CI reaches, so the Dutch path is run end to end with
espeak-ng's formant voice instead: intelligible, robotic, and not what a caller should hear. A deployment fetches a
real voice (`voice-agent models fetch nl_BE-nathalie-medium`). espeak-ng runs as a subprocess per sentence, with
the text on its standard input, so no text is ever read as an option.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import wave
from collections.abc import Iterator

import numpy as np

from voice.model_errors import ModelNotFound
from voice.pcm import pcm16_to_float32
from voice.tone import sentences

ESPEAK_NG = "espeak-ng"
STAND_IN_WORDS_PER_MINUTE = 150
"""A calm pace, a little below espeak-ng's default 175."""


def espeak_ng_available() -> bool:
    """Whether the espeak-ng program is on the PATH."""
    return shutil.which(ESPEAK_NG) is not None


@functools.cache
def espeak_voices() -> frozenset[str]:
    """The voice (language) names espeak-ng knows, as `-v` takes them.

    Raises:
        ModelNotFound: espeak-ng is not installed.
    """
    listing = _run(["--voices"], b"").decode("utf-8", "replace")
    # Columns: Pty Language Age/Gender VoiceName File Other; the language column is what -v takes.
    return frozenset(line.split()[1] for line in listing.splitlines()[1:] if line.split())


@functools.cache
def espeak_variants() -> frozenset[str]:
    """The voice variants (speakers' timbres such as "m3", "f2") espeak-ng knows, as `-v voice+variant` takes them.

    Raises:
        ModelNotFound: espeak-ng is not installed.
    """
    listing = _run(["--voices=variant"], b"").decode("utf-8", "replace")
    # The file column reads "!v/m3".
    return frozenset(line.split()[4].removeprefix("!v/") for line in listing.splitlines()[1:] if len(line.split()) > 4)


def espeak_ng_speech(
    text: str, voice: str, words_per_minute: int = STAND_IN_WORDS_PER_MINUTE, pitch: int | None = None
) -> tuple[np.ndarray, int]:
    """`text` spoken by espeak-ng in `voice` (a language such as "nl", optionally with a variant: "nl+f3"), at base
    pitch `pitch` (0..99; None for espeak-ng's default, 50).

    Returns:
        float32 mono samples in -1..1 and their rate (22050 Hz).

    Raises:
        ModelNotFound: espeak-ng is not installed.
        ValueError: espeak-ng has no voice `voice` (it would silently speak its default English instead).
    """
    if voice.split("+", 1)[0] not in espeak_voices():
        raise ValueError(f"espeak-ng has no voice {voice!r}; `espeak-ng --voices` lists the installed ones")
    pitch_option = [] if pitch is None else ["-p", str(pitch)]
    wav = _run(["-v", voice, "-s", str(words_per_minute), *pitch_option, "--stdout"], text.encode("utf-8"))
    with wave.open(io.BytesIO(wav), "rb") as reader:
        rate_hz = reader.getframerate()
        # espeak-ng writes a streaming header (unknown length): read whatever data follows it.
        pcm16 = np.frombuffer(reader.readframes(len(wav)), dtype="<i2").astype(np.int16)
    return pcm16_to_float32(pcm16), rate_hz


class EspeakStandInSynthesizer:
    """espeak-ng as a `voice.tts.SpeechSynthesizer`, one chunk per sentence: a stand-in for CI, not for callers."""

    sample_rate_hz = 22_050
    """espeak-ng's output rate."""

    def __init__(self, voice: str, words_per_minute: int = STAND_IN_WORDS_PER_MINUTE) -> None:
        """Check that espeak-ng is installed and speaks `voice` (for example "nl").

        Raises:
            ModelNotFound: espeak-ng is not installed, or has no voice `voice`.
        """
        if voice not in espeak_voices():
            raise ModelNotFound(
                f"the espeak-ng stand-in voice needs espeak-ng's voice {voice!r}, which is not installed "
                "(`espeak-ng --voices` lists them)"
            )
        self.voice = voice
        self.words_per_minute = words_per_minute

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        """Speak `text`, one chunk per sentence; blocking per item (a subprocess each): step it through
        `voice.workers`.

        Returns:
            An iterator of mono float32 arrays in -1..1 at 22050 Hz, one per sentence; nothing for blank text.
        """
        for sentence in sentences(text):
            samples, rate_hz = espeak_ng_speech(sentence, self.voice, self.words_per_minute)
            if rate_hz != self.sample_rate_hz:
                raise RuntimeError(f"espeak-ng spoke at {rate_hz} Hz, expected {self.sample_rate_hz}")
            yield samples


def _run(arguments: list[str], stdin: bytes) -> bytes:
    executable = shutil.which(ESPEAK_NG)
    if executable is None:
        raise ModelNotFound(
            "the espeak-ng stand-in voice needs Debian's espeak-ng: apt-get install espeak-ng "
            "(CI installs it in .ci/run)"
        )
    return subprocess.run([executable, *arguments], input=stdin, capture_output=True, check=True).stdout
