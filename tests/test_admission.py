"""Admission control: beyond VOICE_AGENT_MAX_CALLS a new call hears a short message and goes to a person."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

from telephony.admission import Admission
from telephony.calls import CallRegistry, CallState
from telephony.settings import SettingsError, load_settings
from telephony.transfer_timeline import TransferState
from voice.prompts import HandoffReason
from voice.tone import reply_problems

from .helpers import (
    STREAM_SID,
    app_client,
    call_sid,
    post_webhook,
    receive_until_mark,
    start_message,
    stream_sid,
    twilio_stream,
)

BASE = "http://testserver"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_admitted_calls_count_until_their_stream_starts_or_their_admission_lapses():
    registry, clock = CallRegistry(), Clock()
    admission = Admission(registry, max_calls=2, pending_stream_s=15, clock=clock)
    assert admission.admit(call_sid("1")) and admission.admit(call_sid("2"))
    assert not admission.admit(call_sid("3"))  # neither stream has started yet: both still count
    registry.open(call_sid("1"), STREAM_SID)  # CA1's stream starts: counted once, as a live call
    assert admission.calls() == 2
    clock.now += 16  # CA2's stream never came (the caller hung up while connecting)
    assert admission.calls() == 1
    assert admission.admit(call_sid("4"))
    registry.open(call_sid("4"), stream_sid("4"))
    assert not admission.admit(call_sid("5"))
    registry.finish(call_sid("1"))
    assert admission.admit(call_sid("5"))


def test_max_calls_is_validated_naming_the_variable(monkeypatch):
    monkeypatch.setenv("VOICE_AGENT_MAX_CALLS", "0")
    with pytest.raises(SettingsError, match=r"VOICE_AGENT_MAX_CALLS=.*0"):
        load_settings()
    monkeypatch.delenv("VOICE_AGENT_MAX_CALLS")
    assert load_settings().max_calls == 10


@pytest.fixture
def client(voice_services):
    with app_client(voice_services, max_calls=1) as client:
        yield client


def test_a_call_beyond_the_limit_hears_a_calm_message_and_is_dialled_to_a_person(client):
    first = post_webhook(client, "/twilio/voice", {"CallSid": call_sid("first"), "From": "+15005550006"})
    assert "<Stream " in first.text

    response = post_webhook(client, "/twilio/voice", {"CallSid": call_sid("second"), "From": "+15005550007"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
    verbs = list(ElementTree.fromstring(response.text))
    assert [verb.tag for verb in verbs] == ["Say", "Dial"]  # never a Stream nobody would answer
    say, dial = verbs
    replies = client.app.state.voice.catalogue.replies
    assert say.text == replies.over_capacity and say.attrib["language"] == "en-US"
    assert reply_problems(say.text, "en") == []
    assert dial.attrib["action"] == f"{BASE}/twilio/dial-status"  # nobody answers: the call-back offer
    number = dial.find("Number")
    assert number.text == "+15005550101"  # the default department (customer service)
    assert number.attrib["url"] == f"{BASE}/twilio/whisper?call={call_sid('second')}"

    call = client.app.state.voice.registry.get(call_sid("second"))
    assert call.state is CallState.FINISHED
    assert call.outcome.rule == "over_capacity" and call.outcome.department == "customer_service"
    whisper = ElementTree.fromstring(post_webhook(client, number.attrib["url"], {"CallSid": call_sid("leg")}).text)
    reason = client.app.state.voice.catalogue.handoff.reasons[HandoffReason.ASSISTANT_UNAVAILABLE]
    assert whisper.find("Say").text.endswith(reason)
    assert call.handoff.reason == "the automated agent had all the calls it may take"  # the engine's record
    # The desk follows the transfer from the start: dialled, then answered by the person who heard the whisper.
    assert [event.state for event in call.transfer_events] == [TransferState.RINGING, TransferState.ANSWERED]


def test_below_the_limit_a_call_gets_the_stream_again(client):
    with twilio_stream(client) as ws:
        assert "<Stream " in post_webhook(client, "/twilio/voice", {"CallSid": call_sid("a")}).text
        ws.send_json(start_message(call_sid=call_sid("a")))
        receive_until_mark(ws)
        turned_away = post_webhook(client, "/twilio/voice", {"CallSid": call_sid("b")}).text
        assert "<Dial " in turned_away and "<Stream" not in turned_away
        ws.send_json({"event": "stop", "streamSid": STREAM_SID})
    # CA-a's record is finished once its socket closed: the next call is taken.
    response = post_webhook(client, "/twilio/voice", {"CallSid": call_sid("c")})
    assert '<Stream url="ws://testserver/twilio/media"' in response.text


def test_a_queue_department_is_joined_after_the_message(voice_services, tmp_path):
    deployment = tmp_path / "departments.yaml"
    targets = {
        "customer_service": "{queue: front}",
        "billing": '{number: "+15005550102"}',
        "technical_support": '{number: "+15005550103"}',
        "orders": '{number: "+15005550104"}',
        "retention": '{number: "+15005550105"}',
        "complaints": '{number: "+15005550106"}',
        "fraud": '{number: "+15005550107"}',
        "care": "{queue: care}",
    }
    deployment.write_text(
        "departments:\n" + "".join(f"  {name}: {target}\n" for name, target in targets.items()), encoding="utf-8"
    )
    with app_client(voice_services, max_calls=1, deployment_file=deployment, language="nl") as client:
        post_webhook(client, "/twilio/voice", {"CallSid": call_sid("1")})
        verbs = list(ElementTree.fromstring(post_webhook(client, "/twilio/voice", {"CallSid": call_sid("2")}).text))
    assert [verb.tag for verb in verbs] == ["Say", "Enqueue"]
    assert verbs[0].attrib["language"] == "nl-NL" and verbs[0].text.startswith("Onze geautomatiseerde assistent")
    assert verbs[1].text == "front" and verbs[1].attrib["waitUrl"] == f"{BASE}/twilio/queue-wait"
