"""The settings: each tuning variable reaches its voice option, defaults and meanings come from the voice options,
and settings that only work together are refused together, naming each variable."""

from __future__ import annotations

import dataclasses

import pytest

from telephony.settings import Settings, SettingsError, VoiceTuning, load_settings, tuned
from telephony.voice_services import asr_options, end_of_turn_options, partial_options, turn_options
from voice.asr import AsrOptions
from voice.end_of_turn import EndOfTurnOptions
from voice.pipeline import VoiceServices
from voice.piper_options import PiperOptions
from voice.prompts import load_catalogue
from voice.turn_model import TurnModelOptions
from voice.turns import TurnOptions

from .helpers import PROMPTS_DIR


def _services_options(settings: Settings) -> VoiceServices:
    # Only the tuned fields are looked at: the models are not needed to see where the settings went.
    return settings.options(VoiceServices, engine=None, recognizer=None, speech=None, workers=None)


def _options(settings: Settings) -> dict[str, object]:
    catalogue = load_catalogue(PROMPTS_DIR, settings.language)
    return {
        "asr": asr_options(settings, catalogue),
        "turns": turn_options(settings),
        "end_of_turn": end_of_turn_options(settings),
        "services": _services_options(settings),
        "voice": settings.options(PiperOptions),
        "partials": partial_options(settings),
    }


# The public interface: these names must not change. Each variable, a value other than its default, and where the
# value must arrive.
ENVIRONMENT = [
    ("VOICE_AGENT_MODEL_WORKERS", "3", 3, [("asr", "num_workers")]),
    ("VOICE_AGENT_ASR_THREADS", "2", 2, [("asr", "cpu_threads")]),
    ("VOICE_AGENT_ASR_WINDOW_S", "20", 20, [("asr", "encoder_window_s")]),
    ("VOICE_AGENT_PARTIAL_ASR", "true", True, [("partials", "enabled")]),
    ("VOICE_AGENT_PARTIAL_ASR_EVERY_MS", "500", 500, [("partials", "every_ms")]),
    ("VOICE_AGENT_PARTIAL_ASR_COVER_MS", "250", 250, [("partials", "cover_ms")]),
    ("VOICE_AGENT_SPEECH_START_THRESHOLD", "0.6", 0.6, [("turns", "speech_start_threshold")]),
    (
        "VOICE_AGENT_END_OF_TURN_SILENCE_MS",
        "900",
        900,
        [("turns", "end_of_turn_silence_ms"), ("end_of_turn", "default_silence_ms")],
    ),
    ("VOICE_AGENT_ASR_TIMEOUT_S", "4.5", 4.5, [("services", "asr_timeout_s")]),
    ("VOICE_AGENT_TTS_TIMEOUT_S", "6", 6.0, [("services", "tts_timeout_s")]),
    ("VOICE_AGENT_STREAM_FIRST_SENTENCE", "false", False, [("services", "stream_first_sentence")]),
    ("VOICE_AGENT_ADAPTIVE_END_OF_TURN", "false", False, [("end_of_turn", "enabled")]),
    ("VOICE_AGENT_END_OF_TURN_COMPLETE_MS", "300", 300, [("end_of_turn", "complete_silence_ms")]),
    (
        "VOICE_AGENT_END_OF_TURN_COMPLETE_FROM_LAST_LOUD",
        "false",
        False,
        [("end_of_turn", "complete_from_last_loud")],
    ),
    ("VOICE_AGENT_END_OF_TURN_TRAILING_MS", "1500", 1500, [("end_of_turn", "trailing_silence_ms")]),
    ("VOICE_AGENT_SMART_TURN_EVERY_PAUSE", "true", True, [("end_of_turn", "smart_turn_every_pause")]),
    ("VOICE_AGENT_SPECULATIVE_ASR_AFTER_MS", "250", 250, [("turns", "pause_report_ms")]),
    ("VOICE_AGENT_VOICE_LENGTH_SCALE", "1.3", 1.3, [("voice", "length_scale")]),
]


@pytest.mark.parametrize(("variable", "raw", "value", "targets"), ENVIRONMENT, ids=[row[0] for row in ENVIRONMENT])
def test_each_tuning_variable_reaches_its_option(monkeypatch, variable, raw, value, targets):
    defaults = _options(load_settings())
    monkeypatch.setenv(variable, raw)
    tuned_options = _options(load_settings())
    for group, field in targets:
        assert getattr(defaults[group], field) != value, (variable, group, field)
        assert getattr(tuned_options[group], field) == value, (variable, group, field)
    # Nothing else moved.
    for group, options in tuned_options.items():
        changed = {
            field.name
            for field in dataclasses.fields(options)
            if getattr(options, field.name) != getattr(defaults[group], field.name)
        }
        assert changed == {field for target_group, field in targets if target_group == group}, (variable, group)


def test_speculative_asr_off_reports_no_pauses(monkeypatch):
    monkeypatch.setenv("VOICE_AGENT_SPECULATIVE_ASR", "false")
    assert turn_options(load_settings()).pause_report_ms is None
    monkeypatch.setenv("VOICE_AGENT_SPECULATIVE_ASR", "true")
    assert turn_options(load_settings()).pause_report_ms == 64


def test_tuning_defaults_and_meanings_are_the_voice_options():
    declared = {
        "model_workers": (AsrOptions, "num_workers"),
        "asr_threads": (AsrOptions, "cpu_threads"),
        "speech_start_threshold": (TurnOptions, "speech_start_threshold"),
        "end_of_turn_silence_ms": (TurnOptions, "end_of_turn_silence_ms"),
        "asr_timeout_s": (VoiceServices, "asr_timeout_s"),
        "tts_timeout_s": (VoiceServices, "tts_timeout_s"),
        "stream_first_sentence": (VoiceServices, "stream_first_sentence"),
        "adaptive_end_of_turn": (EndOfTurnOptions, "enabled"),
        "end_of_turn_complete_ms": (EndOfTurnOptions, "complete_silence_ms"),
        "end_of_turn_trailing_ms": (EndOfTurnOptions, "trailing_silence_ms"),
        "voice_length_scale": (PiperOptions, "length_scale"),
    }
    settings = load_settings()
    for name, (options, field) in declared.items():
        [option_field] = [f for f in dataclasses.fields(options) if f.name == field]
        assert getattr(settings, name) == option_field.default, name
    # The descriptions are the options' own docstrings, not copies.
    assert Settings.model_fields["end_of_turn_silence_ms"].description.startswith("Unvoiced time that ends a turn.")
    assert Settings.model_fields["asr_threads"].description.startswith("Intra-op threads per transcription.")
    # Every variable is documented, the tuned ones and the server's own.
    assert all(field.description for field in Settings.model_fields.values())


def test_a_knob_setting_two_options_needs_one_default():
    @dataclasses.dataclass(frozen=True)
    class Other:
        silence_ms: int = 700

    with pytest.raises(TypeError, match="different defaults"):
        tuned((TurnOptions, "end_of_turn_silence_ms"), (Other, "silence_ms"))
    with pytest.raises(TypeError, match="not an option with a default"):
        tuned((TurnOptions, "no_such_option"))


def test_options_refuse_a_value_for_a_tuned_field():
    with pytest.raises(TypeError, match="end_of_turn_silence_ms"):
        VoiceTuning().options(TurnOptions, end_of_turn_silence_ms=500)


# --- settings that only work together ----------------------------------------------------------------------------


def test_adaptive_end_of_turn_set_on_needs_speculative_asr(monkeypatch):
    monkeypatch.setenv("VOICE_AGENT_SPECULATIVE_ASR", "false")
    monkeypatch.setenv("VOICE_AGENT_ADAPTIVE_END_OF_TURN", "true")
    with pytest.raises(
        SettingsError, match=r"^VOICE_AGENT_ADAPTIVE_END_OF_TURN=true needs VOICE_AGENT_SPECULATIVE_ASR=true"
    ):
        load_settings()
    # Left at its default, the adaptive end of turn simply takes no effect without speculative ASR.
    monkeypatch.delenv("VOICE_AGENT_ADAPTIVE_END_OF_TURN")
    assert turn_options(load_settings()).pause_report_ms is None
    monkeypatch.setenv("VOICE_AGENT_ADAPTIVE_END_OF_TURN", "false")
    assert not end_of_turn_options(load_settings()).enabled


def test_a_pause_is_reported_before_the_silence_ends_the_turn(monkeypatch):
    monkeypatch.setenv("VOICE_AGENT_SPECULATIVE_ASR_AFTER_MS", "800")
    with pytest.raises(
        SettingsError,
        match=r"^VOICE_AGENT_SPECULATIVE_ASR_AFTER_MS=800 must be below VOICE_AGENT_END_OF_TURN_SILENCE_MS=800",
    ):
        load_settings()
    monkeypatch.setenv("VOICE_AGENT_END_OF_TURN_SILENCE_MS", "1000")
    assert turn_options(load_settings()).pause_report_ms == 800
    # Without speculative ASR no pause is reported, so the two do not meet.
    monkeypatch.setenv("VOICE_AGENT_END_OF_TURN_SILENCE_MS", "600")
    monkeypatch.setenv("VOICE_AGENT_SPECULATIVE_ASR", "false")
    monkeypatch.setenv("VOICE_AGENT_ADAPTIVE_END_OF_TURN", "false")
    assert turn_options(load_settings()).end_of_turn_silence_ms == 600


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (
            {"VOICE_AGENT_END_OF_TURN_COMPLETE_MS": "900"},
            r"^VOICE_AGENT_END_OF_TURN_COMPLETE_MS=900 must not exceed VOICE_AGENT_END_OF_TURN_SILENCE_MS=800",
        ),
        (
            {"VOICE_AGENT_END_OF_TURN_SILENCE_MS": "1500"},
            r"^VOICE_AGENT_END_OF_TURN_SILENCE_MS=1500 must not exceed VOICE_AGENT_END_OF_TURN_TRAILING_MS=1200",
        ),
        (
            {"VOICE_AGENT_END_OF_TURN_TRAILING_MS": "700"},
            r"^VOICE_AGENT_END_OF_TURN_SILENCE_MS=800 must not exceed VOICE_AGENT_END_OF_TURN_TRAILING_MS=700",
        ),
    ],
)
def test_end_of_turn_silences_are_ordered_complete_default_trailing(monkeypatch, environment, message):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        load_settings()
    # With the adaptive end of turn off only the default silence is used: nothing to order.
    monkeypatch.setenv("VOICE_AGENT_ADAPTIVE_END_OF_TURN", "false")
    assert not end_of_turn_options(load_settings()).enabled


def test_equal_silences_are_accepted(monkeypatch):
    for name in ("END_OF_TURN_COMPLETE_MS", "END_OF_TURN_SILENCE_MS", "END_OF_TURN_TRAILING_MS"):
        monkeypatch.setenv("VOICE_AGENT_" + name, "900")
    options = end_of_turn_options(load_settings())
    assert options.complete_silence_ms == options.default_silence_ms == options.trailing_silence_ms == 900


@pytest.mark.parametrize(("raw", "level"), [("debug", "debug"), ("WARNING", "warning"), (" Error ", "error")])
def test_the_log_level_is_read_in_any_case(monkeypatch, raw, level):
    monkeypatch.setenv("VOICE_AGENT_LOG_LEVEL", raw)
    assert load_settings().log_level == level


def test_an_unknown_log_level_names_the_variable_and_the_choices(monkeypatch):
    monkeypatch.setenv("VOICE_AGENT_LOG_LEVEL", "verbose")
    with pytest.raises(SettingsError, match=r"^VOICE_AGENT_LOG_LEVEL='verbose': .*'debug', 'info', 'warning'"):
        load_settings()


@pytest.mark.parametrize("raw", ["3", "0.5", "fast"])
def test_a_voice_pace_out_of_range_stops_start_up_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("VOICE_AGENT_VOICE_LENGTH_SCALE", raw)
    with pytest.raises(SettingsError, match="VOICE_AGENT_VOICE_LENGTH_SCALE"):
        load_settings()


def test_smart_turn_is_opt_in_and_its_knobs_reach_their_options(monkeypatch):
    assert not load_settings().options(TurnModelOptions).enabled
    monkeypatch.setenv("VOICE_AGENT_SMART_TURN", "true")
    monkeypatch.setenv("VOICE_AGENT_SMART_TURN_THREADS", "2")
    monkeypatch.setenv("VOICE_AGENT_SMART_TURN_SURE_PROBABILITY", "0.95")
    settings = load_settings()
    assert settings.options(TurnModelOptions) == TurnModelOptions(enabled=True, threads=2)
    assert end_of_turn_options(settings).sure_finished_probability == 0.95


def test_the_finished_silence_stays_between_the_complete_and_the_default_silence(monkeypatch):
    monkeypatch.setenv("VOICE_AGENT_END_OF_TURN_FINISHED_MS", "2000")
    assert end_of_turn_options(load_settings()).finished_silence_ms == 800
    monkeypatch.setenv("VOICE_AGENT_END_OF_TURN_FINISHED_MS", "100")
    assert end_of_turn_options(load_settings()).finished_silence_ms == 350


def test_partial_transcripts_need_speculative_asr_and_the_adaptive_end_of_turn(monkeypatch):
    monkeypatch.setenv("VOICE_AGENT_PARTIAL_ASR", "true")
    monkeypatch.setenv("VOICE_AGENT_SPECULATIVE_ASR", "false")
    with pytest.raises(SettingsError, match="VOICE_AGENT_PARTIAL_ASR=true needs VOICE_AGENT_SPECULATIVE_ASR=true"):
        load_settings()
