"""The voice services as the server runs them: the models loaded once, with the options the settings choose.

The option dataclasses come from the settings (`VoiceTuning.options`); what is written here is only what the settings
cannot say by themselves: values taken from the catalogue, and values that follow from more than one setting.
"""

from __future__ import annotations

import dataclasses

from telephony.settings import Settings
from telephony.twilio.say import replies_spoken_by_agent
from voice.asr import AsrOptions
from voice.asr_prompt import catalogue_prompt
from voice.end_of_turn import EndOfTurnOptions
from voice.pipeline import VoiceServices
from voice.prompts import Catalogue
from voice.tts import PhraseCache, SpeechSynthesizer
from voice.turns import TurnOptions


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


def fixed_replies(catalogue: Catalogue) -> list[str]:
    """Every reply our voice speaks word for word: the intents' replies and the policy's (Twilio says the others)."""
    return list(replies_spoken_by_agent(catalogue.replies).values()) + [
        intent.reply for intent in catalogue.intents.values()
    ]


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


def load_voice_services(settings: Settings, catalogue: Catalogue) -> VoiceServices:
    """Load the models (once per process) and warm the phrase cache with the fixed replies.

    Raises:
        voice.models.ModelNotFound: a model is neither configured nor bundled; the message says what to install.
    """
    # Imported here: the heavy libraries load only in the server, not for `voice-agent chat`.
    from voice.asr import SpeechRecognizer
    from voice.dialogue import DialogueEngine
    from voice.models import piper_voice_files, whisper_model_dir
    from voice.tts_piper import PiperSynthesizer
    from voice.workers import ModelWorkers

    recognizer = SpeechRecognizer(whisper_model_dir(settings.whisper_model), asr_options(settings, catalogue))
    turn_end_model = None
    # Heard only by the adaptive end of turn, which needs the pause's speculative transcript.
    if settings.smart_turn and settings.adaptive_end_of_turn and settings.speculative_asr:
        from voice.turn_model import SmartTurn, TurnModelOptions

        # The bundled file, checked against its pinned SHA-256.
        turn_end_model = SmartTurn(options=settings.options(TurnModelOptions))
    model, config = piper_voice_files(settings.piper_voice)
    synthesizer = PiperSynthesizer(model, config)
    return settings.options(
        VoiceServices,
        engine=DialogueEngine(catalogue),
        recognizer=recognizer,
        speech=preloaded_phrases(synthesizer, catalogue),
        workers=ModelWorkers(settings.model_workers),
        turn_options=turn_options(settings),
        end_of_turn=end_of_turn_options(settings),
        turn_end_model=turn_end_model,
    )
