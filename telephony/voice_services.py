"""The voice services as the server runs them: the models loaded once, with the options the settings choose.

The option dataclasses come from the settings (`VoiceTuning.options`); what is written here is only what the settings
cannot say by themselves: values taken from the catalogue, and values that follow from more than one setting.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from telephony.model_check import check_model_files
from telephony.model_manifest import manifest_entry
from telephony.settings import Settings
from telephony.twilio.say import replies_spoken_by_agent
from voice.asr import AsrOptions
from voice.asr_prompt import catalogue_prompt
from voice.dialogue import DialogueEngine
from voice.end_of_turn import EndOfTurnOptions
from voice.models import ModelNotFound, multilingual_whisper_dir, piper_voice_files, whisper_model_dir
from voice.partials import PartialOptions
from voice.pipeline import VoiceServices
from voice.prompts import Catalogue
from voice.second_opinion import SecondOpinion, SecondOpinionOptions
from voice.tts import PhraseCache, SpeechSynthesizer
from voice.turns import TurnOptions

log = logging.getLogger(__name__)


def asr_options(settings: Settings, catalogue: Catalogue) -> AsrOptions:
    """How the server runs the recogniser (benchmarks/fairness.py measures with the same options)."""
    # One model copy per pool worker (VOICE_AGENT_MODEL_WORKERS), so that two utterances ending together are
    # transcribed side by side. The greeting as Whisper prompt (voice/asr_prompt.py) made the engine decide as on the
    # perfect transcript more often for every caller group in benchmarks/fairness.py; measured for English only (no
    # real Dutch recordings to check it with).
    return settings.options(
        AsrOptions,
        language=catalogue.language,
        initial_prompt=catalogue_prompt(catalogue) if catalogue.language == "en" else None,
    )


def turn_options(settings: Settings) -> TurnOptions:
    """End-of-turn detection as configured; the lower (hysteresis) threshold never exceeds the start threshold."""
    return settings.options(
        TurnOptions,
        speech_end_threshold=min(settings.speech_start_threshold, TurnOptions().speech_end_threshold),
        pause_report_ms=settings.speculative_asr_after_ms if settings.speculative_asr else None,
    )


def end_of_turn_options(settings: Settings) -> EndOfTurnOptions:
    """Adaptive end of turn as configured; its default silence is the configured end-of-turn silence.

    The silence for words that only sound finished is kept between the complete-request and the default silence, so
    that changing those two alone never makes it the shortest or the longest.
    """
    options = settings.options(EndOfTurnOptions)
    finished = min(max(options.finished_silence_ms, options.complete_silence_ms), options.default_silence_ms)
    return dataclasses.replace(options, finished_silence_ms=finished)


def dialogue_engine(settings: Settings, catalogue: Catalogue) -> DialogueEngine:
    """The engine as the settings configure it, for the start-up and for a catalogue reload alike."""
    return DialogueEngine(catalogue, heard_examples=settings.heard_examples, sound_alike=settings.sound_alike)


def partial_options(settings: Settings) -> PartialOptions:
    """Partial transcripts as configured (their switch is the server's own setting: off in the library)."""
    return settings.options(PartialOptions, enabled=settings.partial_asr)


def fixed_replies(catalogue: Catalogue) -> list[str]:
    """Every reply our voice speaks word for word, each text once: the policy's (Twilio says the others) and the
    intents' replies."""
    texts = list(replies_spoken_by_agent(catalogue.replies).values())
    texts += [intent.reply for intent in catalogue.intents.values()]
    return list(dict.fromkeys(texts))


def preloaded_phrases(
    synthesizer: SpeechSynthesizer, catalogue: Catalogue, reuse: PhraseCache | None = None
) -> PhraseCache:
    """A phrase cache holding the audio of every fixed reply of `catalogue` (blocking: synthesises).

    Args:
        reuse: a cache whose audio is taken for replies it already holds (on a catalogue reload).
    """
    fixed = fixed_replies(catalogue)
    speech = PhraseCache(synthesizer, max_entries=max(128, 2 * len(fixed)))
    # The fixed replies must never wait for synthesis; after a fault (technical_problem) there may be none.
    speech.preload(fixed, reuse=reuse)
    return speech


DUTCH_VOICE_HELP = (
    "run `voice-agent models fetch nl_BE-nathalie-medium` and set VOICE_AGENT_VOICE=nl_BE-nathalie-medium (or "
    "VOICE_AGENT_PIPER_VOICE to a Dutch Piper .onnx); for tests only, VOICE_AGENT_VOICE=espeak-ng-nl is a robotic "
    "stand-in (`voice-agent models list` shows what is installed)"
)


@dataclass(frozen=True, slots=True)
class VoiceChoice:
    """The voice the settings choose, found and verified but not loaded."""

    description: str
    piper: tuple[Path, Path] | None = None
    """A Piper voice: (model, config)."""
    espeak_voice: str | None = None
    """The espeak-ng stand-in: its voice name."""


def recognizer_model_dir(settings: Settings) -> Path:
    """The Whisper model the settings choose: VOICE_AGENT_WHISPER_MODEL, else tiny.en for English and multilingual
    Whisper base (assembled into the model cache on first use) for another language.

    Raises:
        ModelNotFound: the model is missing; the message says what to install.
    """
    if settings.whisper_model is not None or settings.language == "en":
        return whisper_model_dir(settings.whisper_model)
    return multilingual_whisper_dir("base", settings.model_cache_dir())


def choose_voice(settings: Settings) -> VoiceChoice:
    """The voice the settings choose, checked to exist, to match its pins and to speak the configured language.

    Cheap (nothing is loaded), so `voice-agent serve` calls it before starting and stops with its message.

    Raises:
        ModelNotFound: no voice for the language, a configured voice is missing or corrupt, or it speaks another
            language; the message names the `voice-agent models` command.
        telephony.model_manifest.ManifestError: VOICE_AGENT_VOICE names no model of the manifest.
    """
    language = settings.language
    if settings.voice:
        entry = manifest_entry(settings.voice)
        if entry.kind not in ("piper", "espeak-ng"):
            raise ModelNotFound(f"VOICE_AGENT_VOICE={settings.voice}: {entry.name} is a recogniser, not a voice")
        if entry.language != language:
            raise ModelNotFound(
                f"VOICE_AGENT_VOICE={entry.name} speaks {entry.language!r}, but VOICE_AGENT_LANGUAGE={language}; "
                + (DUTCH_VOICE_HELP if language == "nl" else "unset VOICE_AGENT_VOICE for the bundled English voice")
            )
        if entry.kind == "espeak-ng":
            return VoiceChoice(f"{entry.name} (stand-in: {entry.description})", espeak_voice=entry.espeak_voice)
        return VoiceChoice(entry.name, piper=entry.piper_files(settings.model_cache_dir()))
    if settings.piper_voice is None and language != "en":
        raise ModelNotFound(
            f"VOICE_AGENT_LANGUAGE={language} needs a voice that speaks it, and none is set: " + DUTCH_VOICE_HELP
        )
    model, config = piper_voice_files(settings.piper_voice)
    spoken = _piper_language(config)
    if spoken != language:
        raise ModelNotFound(
            f"the Piper voice {model} speaks {spoken!r} (its config's espeak voice), but VOICE_AGENT_LANGUAGE="
            f"{language}; " + (DUTCH_VOICE_HELP if language == "nl" else "choose an English voice")
        )
    return VoiceChoice(model.name, piper=(model, config))


def load_synthesizer(choice: VoiceChoice, settings: Settings) -> SpeechSynthesizer:
    """Load the chosen voice (under a second), a Piper voice at the configured pace."""
    if choice.espeak_voice is not None:
        from voice.tts_espeak import EspeakStandInSynthesizer

        return EspeakStandInSynthesizer(choice.espeak_voice)
    # Imported here: piper-tts (GPL-3.0) is an optional backend.
    from voice.piper_options import PiperOptions
    from voice.tts_piper import PiperSynthesizer

    assert choice.piper is not None
    return PiperSynthesizer(*choice.piper, settings.options(PiperOptions))


def _piper_language(config: Path) -> str:
    """The language a Piper voice speaks, from its config's espeak voice ("en-us" -> "en", "nl" -> "nl")."""
    try:
        voice = json.loads(config.read_text(encoding="utf-8"))["espeak"]["voice"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelNotFound(f"{config}: not a Piper voice config with an espeak voice ({error})") from error
    return str(voice).split("-", 1)[0].lower()


def second_opinion(settings: Settings, catalogue: Catalogue) -> SecondOpinion | None:
    """The larger recogniser for second opinions, loaded (blocking), or None when none is configured.

    Raises:
        voice.models.ModelNotFound: `VOICE_AGENT_SECOND_OPINION_MODEL` is not a model directory.
    """
    if settings.second_opinion_model is None:
        return None
    from voice.asr import SpeechRecognizer

    directory = whisper_model_dir(settings.second_opinion_model, variable="VOICE_AGENT_SECOND_OPINION_MODEL")
    # The same options as the first recogniser (the greeting as prompt, the loop guard), in the catalogue's language.
    recognizer = SpeechRecognizer(directory, asr_options(settings, catalogue))
    return SecondOpinion(recognizer, f"Whisper {directory.name}", settings.options(SecondOpinionOptions))


def load_voice_services(settings: Settings, catalogue: Catalogue) -> VoiceServices:
    """Load the models (once per process) and warm the phrase cache with the fixed replies.

    Raises:
        voice.models.ModelNotFound: a model is neither configured nor bundled, or the voice does not speak the
            language; the message says what to install.
        voice.model_integrity.ModelIntegrityError: a model file is not the pinned one (telephony/model_check.py).
    """
    # Imported here: the heavy libraries load only in the server, not for `voice-agent chat`.
    from voice.asr import SpeechRecognizer
    from voice.workers import ModelWorkers

    choice = choose_voice(settings)
    whisper_dir = recognizer_model_dir(settings)
    # Before anything is loaded: a replaced model file must stop the start-up, never run.
    log.info("%s", check_model_files(settings, whisper_dir, choice.piper).summary())
    synthesizer = load_synthesizer(choice, settings)
    recognizer = SpeechRecognizer(whisper_dir, asr_options(settings, catalogue))
    turn_end_model = None
    # Heard only by the adaptive end of turn, which needs the pause's speculative transcript.
    if settings.smart_turn and settings.adaptive_end_of_turn and settings.speculative_asr:
        from voice.turn_model import SmartTurn, TurnModelOptions

        # The bundled file, checked against its pinned SHA-256.
        turn_end_model = SmartTurn(options=settings.options(TurnModelOptions))
    return settings.options(
        VoiceServices,
        engine=dialogue_engine(settings, catalogue),
        recognizer=recognizer,
        second_opinion=second_opinion(settings, catalogue),
        speech=preloaded_phrases(synthesizer, catalogue),
        workers=ModelWorkers(settings.model_workers),
        turn_options=turn_options(settings),
        end_of_turn=end_of_turn_options(settings),
        turn_end_model=turn_end_model,
        partials=partial_options(settings),
    )
