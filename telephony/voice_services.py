"""The voice services as the server runs them: the models loaded once, with the options the settings choose.

The option dataclasses come from the settings (`VoiceTuning.options`); what is written here is only what the settings
cannot say by themselves: values taken from the catalogue, and values that follow from more than one setting.
"""

from __future__ import annotations

from telephony.settings import Settings
from telephony.twilio.say import replies_spoken_by_agent
from voice.asr import AsrOptions
from voice.asr_prompt import catalogue_prompt
from voice.end_of_turn import EndOfTurnOptions
from voice.pipeline import VoiceServices
from voice.prompts import Catalogue
from voice.second_opinion import SecondOpinion, SecondOpinionOptions
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
    """Adaptive end of turn as configured; its default silence is the configured end-of-turn silence."""
    return settings.options(EndOfTurnOptions)


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


def second_opinion(settings: Settings, catalogue: Catalogue) -> SecondOpinion | None:
    """The larger recogniser for second opinions, loaded (blocking), or None when none is configured.

    Raises:
        voice.models.ModelNotFound: `VOICE_AGENT_SECOND_OPINION_MODEL` is not a model directory.
    """
    if settings.second_opinion_model is None:
        return None
    from voice.asr import SpeechRecognizer
    from voice.models import whisper_model_dir

    directory = whisper_model_dir(settings.second_opinion_model, variable="VOICE_AGENT_SECOND_OPINION_MODEL")
    # The same options as the first recogniser (the greeting as prompt, the loop guard), in the catalogue's language.
    recognizer = SpeechRecognizer(directory, asr_options(settings, catalogue))
    return SecondOpinion(recognizer, f"Whisper {directory.name}", settings.options(SecondOpinionOptions))


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
    model, config = piper_voice_files(settings.piper_voice)
    synthesizer = PiperSynthesizer(model, config)
    return settings.options(
        VoiceServices,
        engine=DialogueEngine(catalogue, heard_examples=settings.heard_examples),
        recognizer=recognizer,
        second_opinion=second_opinion(settings, catalogue),
        speech=preloaded_phrases(synthesizer, catalogue),
        workers=ModelWorkers(settings.model_workers),
        turn_options=turn_options(settings),
        end_of_turn=end_of_turn_options(settings),
    )
