"""The second opinion: asked only when the engine does not understand a turn (or the recogniser was unsure), its
transcript used only when the engine reads it better, and the decision's reasons say so.

The rules run against the real engine with typed transcripts; the pipeline's hook runs with the real VAD and scripted
recognisers (slow), and once with the real Whisper models loaded as the server loads them (slow).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from tests.test_pipeline import FakeRecognizer, RecordingOutput, caller_records, first_group_frames, play_call, services
from voice.dialogue import DialogueEngine
from voice.events import Transcript
from voice.pipeline import CallPipeline
from voice.second_opinion import SecondOpinion, SecondOpinionOptions, understood


def preview(engine: DialogueEngine, text: str, confidence: float = 0.9):
    state, _greeting = engine.start()
    return engine.step(state, Transcript(text, confidence))[1]


def opinion(below: float = 0.0, recognizer=None) -> SecondOpinion:
    return SecondOpinion(recognizer or FakeRecognizer([""]), "Whisper test", SecondOpinionOptions(below))


def test_asked_when_the_engine_does_not_understand(engine_en: DialogueEngine) -> None:
    first = Transcript("Blue elephants dance on the roof.", 0.8)
    decision = preview(engine_en, first.text)
    assert not understood(decision)
    assert opinion().why_ask(first, decision) == "the engine did not understand the first transcript"


def test_not_asked_when_understood_and_the_recogniser_was_sure(engine_en: DialogueEngine) -> None:
    first = Transcript("What are your opening hours?", 0.9)
    assert opinion(below=0.5).why_ask(first, preview(engine_en, first.text)) is None


def test_asked_below_the_confidence_setting_but_never_for_a_keyword(engine_en: DialogueEngine) -> None:
    unsure = Transcript("What are your opening hours?", 0.4)
    assert opinion(below=0.5).why_ask(unsure, preview(engine_en, unsure.text, 0.4)) == (
        "recogniser confidence 0.40 below 0.50"
    )
    assert opinion(below=0.0).why_ask(unsure, preview(engine_en, unsure.text, 0.4)) is None
    # "agent" is a keyword: the caller gets a person at once, however unsure the recogniser was.
    agent = Transcript("Agent.", 0.3)
    decision = preview(engine_en, agent.text, 0.3)
    assert decision.confidence == 1.0
    assert opinion(below=0.5).why_ask(agent, decision) is None


def test_the_second_transcript_is_used_when_the_engine_reads_it_and_not_the_first(engine_en: DialogueEngine) -> None:
    first = Transcript("Blue elephants dance on the roof.", 0.5)
    second = Transcript("I have a question about my last bill.", 0.8)
    verdict = opinion().choose("why", first, preview(engine_en, first.text), second, preview(engine_en, second.text))
    assert verdict.changed and verdict.transcript == second
    assert verdict.reason.startswith("second opinion (Whisper test) because why: read as billing_question")
    assert "(first: not understood); its transcript is used" in verdict.reason


def test_the_first_transcript_stands_when_the_second_is_no_better(engine_en: DialogueEngine) -> None:
    first = Transcript("Blue elephants dance on the roof.", 0.5)
    for text in ("Purple giraffes sing in the rain.", ""):
        second = Transcript(text, 0.6)
        verdict = opinion().choose("why", first, preview(engine_en, first.text), second, preview(engine_en, text))
        assert not verdict.changed and verdict.transcript == first
        assert verdict.reason.endswith("the first transcript stands")


def test_an_understood_first_transcript_is_replaced_only_by_a_surer_reading(engine_en: DialogueEngine) -> None:
    first = Transcript("I think there is something wrong with the bill maybe", 0.3)
    first_preview = preview(engine_en, first.text)
    assert understood(first_preview)
    same = opinion(0.5).choose("why", first, first_preview, first, first_preview)
    assert not same.changed


def test_the_confidence_setting_is_checked() -> None:
    with pytest.raises(ValueError, match=r"below_confidence must be in 0\.\.1"):
        SecondOpinionOptions(1.5)


# --- the pipeline's hook ------------------------------------------------------------------------------------------


def run_call(engine: DialogueEngine, first_texts: list[str], second_texts: list[str]):
    first, second = FakeRecognizer(first_texts), FakeRecognizer(second_texts)
    voice = services(engine, first, second_opinion=opinion(recognizer=second))
    pipeline = CallPipeline(voice, RecordingOutput([]))
    asyncio.run(play_call(pipeline, first_group_frames(), silence_s=1.5))
    voice.workers.shutdown()
    return caller_records(pipeline), second


@pytest.mark.slow
def test_the_pipeline_answers_the_second_opinion_and_says_so(engine_en: DialogueEngine) -> None:
    (record,), second = run_call(
        engine_en, ["Blue elephants dance on the roof."], ["I have a question about my last bill."]
    )
    assert len(second.heard) == 1
    # The same audio as the turn: the whole turn, from its start.
    assert second.heard[0][0].size > 0
    assert record.decision.intent == "billing_question"
    assert record.caller.text == "I have a question about my last bill."
    (reason,) = [reason for reason in record.decision.reasons if reason.startswith("second opinion")]
    assert "because the engine did not understand the first transcript" in reason
    assert "its transcript is used" in reason


@pytest.mark.slow
def test_the_pipeline_asks_no_second_opinion_on_an_understood_turn(engine_en: DialogueEngine) -> None:
    (record,), second = run_call(engine_en, ["What are your opening hours?"], ["Something else entirely."])
    assert second.heard == []
    assert record.decision.intent == "opening_hours"
    assert not any(reason.startswith("second opinion") for reason in record.decision.reasons)


@pytest.mark.slow
def test_the_pipeline_keeps_the_first_transcript_when_the_second_is_no_better(engine_en: DialogueEngine) -> None:
    first, second_text = ["Blue elephants dance on the roof."], ["Purple giraffes sing in the rain."]
    (record,), second = run_call(engine_en, first, second_text)
    assert len(second.heard) == 1
    assert record.caller.text == "Blue elephants dance on the roof."
    assert record.decision.rule == "not_understood"
    assert any(reason.endswith("the first transcript stands") for reason in record.decision.reasons)


@pytest.mark.slow
def test_the_server_loads_the_second_opinion_from_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real models as the server loads them. The bundled tiny.en stands in for the larger model here: what is
    # tested is the setting, the loading and a real transcription, not which model hears better.
    from qa.caller_audio import espeak_ng, telephone_round_trip
    from telephony.settings import load_settings
    from telephony.voice_services import second_opinion
    from voice.models import whisper_model_dir

    model = whisper_model_dir()
    monkeypatch.setenv("VOICE_AGENT_SECOND_OPINION_MODEL", str(model))
    monkeypatch.setenv("VOICE_AGENT_SECOND_OPINION_BELOW", "0.55")
    engine = DialogueEngine.from_prompts(Path(__file__).resolve().parents[1] / "prompts", "en")
    loaded = second_opinion(load_settings(), engine.catalogue)
    assert loaded is not None and loaded.options.below_confidence == 0.55
    assert loaded.name == f"Whisper {model.name}"
    heard = loaded.recognizer.transcribe(telephone_round_trip(espeak_ng("What are your opening hours?", "en-us")))
    assert "hours" in heard.text.lower()
    assert isinstance(heard.confidence, float) and np.isfinite(heard.confidence)

    monkeypatch.setenv("VOICE_AGENT_SECOND_OPINION_MODEL", "/nonexistent/model")
    from voice.models import ModelNotFound

    with pytest.raises(ModelNotFound, match="VOICE_AGENT_SECOND_OPINION_MODEL="):
        second_opinion(load_settings(), engine.catalogue)
    monkeypatch.delenv("VOICE_AGENT_SECOND_OPINION_MODEL")
    assert second_opinion(load_settings(), engine.catalogue) is None
