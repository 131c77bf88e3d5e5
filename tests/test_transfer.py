"""Transfers to a person: the TwiML per department with its whisper, the fallbacks when nobody answers, queues, the
signatures on the transfer's webhooks, and the REST redirect against a fake Twilio on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from qa.twilio_signing import TwilioCredentials
from telephony.call_record import call_record
from telephony.calls import CallInfo
from telephony.settings import SettingsError, load_settings
from telephony.twilio.transfer import (
    CALLBACK_KEY,
    MESSAGE_KEY,
    MESSAGE_MAX_LENGTH_S,
    CallRedirector,
    Transfers,
)
from voice.events import Dtmf, Transcript
from voice.handoff import Handoff, build_handoff
from voice.prompts import HandoffReason
from voice.tone import reply_problems

from .helpers import (
    STREAM_SID,
    TEST_AUTH_TOKEN,
    FakeTwilio,
    app_client,
    call_sid,
    dtmf_message,
    make_app,
    play_until_closed,
    post_webhook,
    receive_until_mark,
    start_message,
    stream_sid,
    twilio_stream,
)

TOKEN = TEST_AUTH_TOKEN
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
BASE = "http://testserver"

# Every department of the sample catalogue, reached in each of the three ways.
DEPLOYMENT = """\
departments:
  customer_service: {number: "+15005550101"}
  billing: {number: "+15005550102"}
  technical_support: {number: "+15005550103"}
  orders: {number: "+15005550104"}
  retention: {number: "+15005550105"}
  complaints: {number: "+15005550106", timeout_s: 45}
  fraud: {sip: "sip:fraud@pbx.example.com", timeout_s: 20}
  care: {queue: care}
"""


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    path = tmp_path / "departments.yaml"
    path.write_text(DEPLOYMENT, encoding="utf-8")
    return path


@pytest.fixture
def client(voice_services, deployment):
    with app_client(voice_services, deployment_file=deployment) as client:
        yield client


def parse(body: str) -> ElementTree.Element:
    return ElementTree.fromstring(body)


def _signed(url: str, params: dict[str, str]) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, params)}


def decide_and_finish(client: TestClient, call_sid: str, *turns: Transcript | Dtmf) -> CallInfo:
    """Run the real engine over `turns` and leave the call as the session does when it transfers."""
    engine = client.app.state.running.services.engine
    state, greeting = engine.start()
    exchanges = [(None, greeting)]
    for turn in turns:
        state, decision = engine.step(state, turn)
        exchanges.append((turn, decision))
    registry = client.app.state.voice.registry
    info = registry.open(call_sid, "MZ" + call_sid, caller_number="+15005550006")
    info.handoff = build_handoff(engine.catalogue, call_sid, exchanges, decision, info.caller_number)
    registry.finish(call_sid, decision)
    return info


# --- the three ways to a person, each ending in the department's TwiML with a whisper -------------------------


@pytest.mark.parametrize(
    ("turn", "target", "timeout_s", "whisper"),
    [
        (
            Transcript("I want to speak to a person"),
            ("Number", "+15005550101"),
            "30",
            "The caller did not say what the call is about. They asked to speak to a person.",
        ),
        (
            Dtmf("0"),
            ("Number", "+15005550101"),
            "30",
            "The caller did not say what the call is about. They pressed 0 to speak to a person.",
        ),
        (
            Transcript("someone stole my phone"),
            ("Sip", "sip:fraud@pbx.example.com"),
            "20",
            "The caller asked about possible fraud or theft. "
            "The subject is sensitive, so it goes straight to a person.",
        ),
    ],
    ids=["asks_for_a_person", "presses_zero", "sensitive_topic"],
)
def test_transfer_dials_the_department_with_a_whisper_saying_topic_and_reason(
    client, request, turn, target, timeout_s, whisper
):
    sid = call_sid(request.node.callspec.id)
    decide_and_finish(client, sid, turn)

    body = post_webhook(client, "/twilio/after-stream", {"CallSid": sid}).text
    dial = parse(body).find("Dial")
    assert dial.attrib == {"action": f"{BASE}/twilio/dial-status", "method": "POST", "timeout": timeout_s}
    noun = dial.find(target[0])
    assert noun.text == target[1]
    assert noun.attrib == {"url": f"{BASE}/twilio/whisper?call={sid}", "method": "POST"}

    # Twilio fetches the whisper for the new leg (its own CallSid) and plays it to the person who answers.
    response = post_webhook(client, noun.attrib["url"], {"CallSid": call_sid("agent-leg")})
    say = parse(response.text).find("Say")
    assert say.text == whisper
    assert say.attrib["language"] == "en-US"
    # The desk card shows the same text as its headline (the call record's handoff summary).
    info = client.app.state.voice.registry.get(sid)
    assert call_record(info).handoff.summary == whisper


def test_a_pressed_zero_over_the_media_stream_ends_in_the_whisper_and_the_dial(client):
    with twilio_stream(client) as ws:
        start = start_message(call_sid=call_sid("ws-zero"))
        start["start"]["customParameters"] = {"caller": "+15005550006"}
        ws.send_json(start)
        receive_until_mark(ws)
        ws.send_json(dtmf_message("0"))
        play_until_closed(ws)  # the server closes the stream after the transfer sentence
    body = post_webhook(client, "/twilio/after-stream", {"CallSid": call_sid("ws-zero")}).text
    number = parse(body).find("Dial/Number")
    assert number.text == "+15005550101"
    assert number.attrib["url"] == f"{BASE}/twilio/whisper?call={call_sid('ws-zero')}"
    say = parse(post_webhook(client, number.attrib["url"], {"CallSid": call_sid("agent-leg")}).text).find("Say").text
    assert say == "The caller did not say what the call is about. They pressed 0 to speak to a person."


def test_a_queue_department_enqueues_with_a_calm_wait_message(client):
    decide_and_finish(client, call_sid("care"), Transcript("my husband died last week"))
    enqueue = parse(post_webhook(client, "/twilio/after-stream", {"CallSid": call_sid("care")}).text).find("Enqueue")
    assert enqueue.text == "care"
    assert enqueue.attrib["waitUrl"] == f"{BASE}/twilio/queue-wait"
    assert enqueue.attrib["action"] == f"{BASE}/twilio/dial-status"  # a full queue also gets the fallback

    wait = parse(post_webhook(client, "/twilio/queue-wait", {"CallSid": call_sid("care"), "QueuePosition": "2"}).text)
    assert [verb.tag for verb in wait] == ["Say", "Pause"]  # then Twilio asks again: a loop
    message = wait.find("Say").text
    assert message == client.app.state.voice.catalogue.replies.queue_wait
    assert reply_problems(message, "en") == []  # no exclamation marks, no feelings, at most two sentences


def test_whisper_for_an_unknown_call_still_says_something(client):
    say = parse(
        post_webhook(client, f"/twilio/whisper?call={call_sid('nobody')}", {"CallSid": call_sid("leg")}).text
    ).find("Say")
    assert say.text == client.app.state.voice.catalogue.handoff.missing


def test_whisper_never_reads_out_a_number(client):
    info = client.app.state.voice.registry.open(call_sid("digits"), stream_sid("digits"))
    # A record made elsewhere (an older version, another instance) whose summary carries a number.
    info.handoff = Handoff(
        call_sid=call_sid("digits"),
        caller="*********06",
        intent="payment",
        department="billing",
        reason="technical problem",
        kind=HandoffReason.TECHNICAL_FAILURE,
        topics=("a payment",),
        answered=(),
        reason_text="A technical problem stopped the automated assistant.",
        summary="The caller asked about a payment with card 4111 1111 1111 1111.",
        facts=(),
        transcript=(),
    )
    say = parse(post_webhook(client, f"/twilio/whisper?call={call_sid('digits')}", {}).text).find("Say").text
    assert "4111" not in say and "[number]" in say and "a payment" in say


# --- nobody answers: a call-back or a message, never a dropped call -------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        {"DialCallStatus": "no-answer"},
        {"DialCallStatus": "busy"},
        {"DialCallStatus": "failed"},
        {"DialCallStatus": "canceled"},
        {"QueueResult": "queue-full"},
    ],
)
def test_an_unanswered_transfer_offers_a_call_back_or_a_message(client, form):
    decide_and_finish(client, call_sid("unanswered"), Dtmf("0"))
    body = post_webhook(client, "/twilio/dial-status", {"CallSid": call_sid("unanswered"), **form}).text
    verbs = list(parse(body))
    assert [verb.tag for verb in verbs] == ["Gather", "Redirect"]
    gather, redirect = verbs
    assert gather.attrib["numDigits"] == "1"
    assert gather.attrib["action"] == f"{BASE}/twilio/dial-choice"
    offer = gather.find("Say")
    assert offer.text == client.app.state.voice.catalogue.replies.transfer_unanswered
    assert offer.attrib["language"] == "en-US"
    assert redirect.text == f"{BASE}/twilio/dial-choice"  # no key: the choice URL is asked without Digits
    assert client.app.state.voice.registry.get(call_sid("unanswered")).transfer_status == next(iter(form.values()))


def test_an_answered_transfer_hangs_up_when_the_person_is_done(client):
    decide_and_finish(client, call_sid("answered"), Dtmf("0"))
    body = post_webhook(
        client, "/twilio/dial-status", {"CallSid": call_sid("answered"), "DialCallStatus": "completed"}
    ).text
    assert [verb.tag for verb in parse(body)] == ["Hangup"]
    assert client.app.state.voice.registry.get(call_sid("answered")).transfer_status == "completed"


@pytest.mark.parametrize("digits", [CALLBACK_KEY, "", "7"], ids=["one", "no_key", "another_key"])
def test_a_call_back_is_confirmed_and_recorded(client, digits):
    info = decide_and_finish(client, call_sid("callback"), Dtmf("0"))
    form = {"CallSid": call_sid("callback")} | ({"Digits": digits} if digits else {})
    verbs = list(parse(post_webhook(client, "/twilio/dial-choice", form).text))
    assert [verb.tag for verb in verbs] == ["Say", "Hangup"]
    assert verbs[0].text == client.app.state.voice.catalogue.replies.callback_confirmed
    assert info.callback_requested


def test_a_message_is_recorded_then_thanked_for(client):
    info = decide_and_finish(client, call_sid("message"), Dtmf("0"))
    body = post_webhook(client, "/twilio/dial-choice", {"CallSid": call_sid("message"), "Digits": MESSAGE_KEY}).text
    verbs = list(parse(body))
    assert [verb.tag for verb in verbs] == ["Say", "Record", "Redirect"]
    replies = client.app.state.voice.catalogue.replies
    assert verbs[0].text == replies.leave_message
    record = verbs[1]
    assert record.attrib["maxLength"] == str(MESSAGE_MAX_LENGTH_S)
    assert record.attrib["action"] == f"{BASE}/twilio/message-recorded"
    assert "recordingStatusCallback" not in record.attrib
    assert verbs[2].text == f"{BASE}/twilio/dial-choice"  # silence records nothing: a call-back instead
    assert not info.callback_requested

    recorded = {"CallSid": call_sid("message"), "RecordingSid": "RE123", "RecordingDuration": "12"}
    verbs = list(parse(post_webhook(client, "/twilio/message-recorded", recorded).text))
    assert [verb.tag for verb in verbs] == ["Say", "Hangup"]
    assert verbs[0].text == replies.message_thanks
    assert info.message_recording_sid == "RE123"


def test_the_fallback_speaks_the_catalogue_language(voice_services, deployment):
    with app_client(voice_services, deployment_file=deployment, language="nl") as client:
        body = post_webhook(client, "/twilio/dial-status", {"CallSid": call_sid("nl"), "DialCallStatus": "busy"}).text
        offer = parse(body).find("Gather/Say")
        assert offer.attrib["language"] == "nl-NL"
        assert offer.text == client.app.state.voice.catalogue.replies.transfer_unanswered
        assert "Druk 1" in offer.text


def test_the_transfer_webhooks_refuse_a_missing_or_wrong_signature(voice_services, deployment, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    requests = [
        (f"/twilio/whisper?call={call_sid('1')}", {"CallSid": call_sid("leg")}),
        ("/twilio/queue-wait", {"CallSid": call_sid("1"), "QueuePosition": "1"}),
        ("/twilio/dial-status", {"CallSid": call_sid("1"), "DialCallStatus": "busy"}),
        ("/twilio/dial-choice", {"CallSid": call_sid("1"), "Digits": "1"}),
        ("/twilio/message-recorded", {"CallSid": call_sid("1"), "RecordingSid": "RE1"}),
    ]
    with app_client(voice_services, deployment_file=deployment) as client:
        for path, params in requests:
            assert client.post(path, data=params).status_code == 403, path
            wrong = {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
            assert client.post(path, data=params, headers=wrong).status_code == 403, path
            response = client.post(path, data=params, headers=_signed(BASE + path, params))
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith("application/xml")


# --- the REST redirect, against a fake Twilio on 127.0.0.1 ---------------------------------------------------


@pytest.fixture
def no_proxy(monkeypatch):
    # requests honours proxy variables: the fake must be reached directly.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in ("TWILIO_EDGE", "TWILIO_REGION"):  # twilio-python would rewrite the host
        monkeypatch.delenv(name, raising=False)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_redirect_sends_exactly_the_call_update_twilio_expects(no_proxy):
    call_sid = "CA" + "fedcba9876543210" * 2
    body = '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'
    with FakeTwilio() as fake:
        CallRedirector(ACCOUNT_SID, TOKEN, api_base_url=fake.url).redirect(call_sid, body)
    [request] = fake.requests
    assert request["method"] == "POST"
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call_sid}.json"
    assert request["authorization"] == _basic(ACCOUNT_SID, TOKEN)
    assert request["content_type"] == "application/x-www-form-urlencoded"
    assert request["form"] == {"Twiml": [body]}


def test_a_pressed_zero_is_redirected_with_the_after_stream_twiml(voice_services, deployment, monkeypatch, no_proxy):
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    call_sid = "CA" + "0000111122223333" * 2
    with FakeTwilio() as fake:
        redirector = CallRedirector(ACCOUNT_SID, TOKEN, api_base_url=fake.url)
        public = TwilioCredentials(TOKEN, "https://voice.example.com")
        with app_client(
            voice_services,
            redirector,
            deployment_file=deployment,
            transfer_mode="rest_redirect",
            public_url=public.public_url,
        ) as client:
            with twilio_stream(client, credentials=public) as ws:
                ws.send_json(start_message(call_sid=call_sid))
                receive_until_mark(ws)
                ws.send_json(dtmf_message("0"))
                play_until_closed(ws)  # the server closes the stream after the transfer sentence
            after_stream = post_webhook(client, "/twilio/after-stream", {"CallSid": call_sid}, public)
    [request] = fake.requests
    assert request["method"] == "POST"
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call_sid}.json"
    assert request["authorization"] == _basic(ACCOUNT_SID, TOKEN)
    assert request["form"] == {"Twiml": [after_stream.text]}  # one place builds the TwiML
    assert f"https://voice.example.com/twilio/whisper?call={call_sid}" in after_stream.text
    assert "+15005550101</Number>" in after_stream.text


def test_a_refused_redirect_falls_back_to_closing_the_stream(voice_services, deployment, no_proxy):
    with FakeTwilio(status=404) as fake:
        app = make_app(voice_services, deployment_file=deployment)
        catalogue = app.state.voice.catalogue
        transfers = Transfers(
            app.state.voice.targets, catalogue, CallRedirector(ACCOUNT_SID, TOKEN, api_base_url=fake.url)
        )
        redirected = asyncio.run(transfers.redirect(CallInfo(call_sid=call_sid("gone"), stream_sid=STREAM_SID), BASE))
    assert redirected is False  # logged; the session then closes the stream and Twilio asks after-stream
    assert len(fake.requests) == 1


def test_close_stream_mode_never_redirects(voice_services, deployment):
    app = make_app(voice_services, deployment_file=deployment)
    assert app.state.voice.transfers.redirector is None


PUBLIC = "VOICE_AGENT_PUBLIC_URL"


@pytest.mark.parametrize(
    ("environment", "missing"),
    [
        ({PUBLIC: "https://voice.example.com"}, "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN"),
        ({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, PUBLIC: "https://voice.example.com"}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_AUTH_TOKEN": TOKEN, PUBLIC: "https://voice.example.com"}, "TWILIO_ACCOUNT_SID"),
        # The redirect's TwiML URL must not come from a request's (forgeable) Host header.
        ({"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": ACCOUNT_SID}, PUBLIC),
    ],
)
def test_rest_redirect_without_credentials_stops_start_up_naming_them(deployment, monkeypatch, environment, missing):
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "VOICE_AGENT_TWILIO_ACCOUNT_SID", PUBLIC):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("VOICE_AGENT_TWILIO_AUTH_TOKEN", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=rf"VOICE_AGENT_TRANSFER_MODE=rest_redirect .*not set: {missing}$"):
        load_settings(deployment_file=deployment, transfer_mode="rest_redirect")


def test_bad_transfer_settings_name_the_variable(monkeypatch):
    monkeypatch.setenv("VOICE_AGENT_TRANSFER_MODE", "hang_up")
    with pytest.raises(SettingsError, match="VOICE_AGENT_TRANSFER_MODE='hang_up'"):
        load_settings()
    monkeypatch.delenv("VOICE_AGENT_TRANSFER_MODE")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "not-a-sid")
    with pytest.raises(SettingsError, match="TWILIO_ACCOUNT_SID='not-a-sid'"):
        load_settings()


@pytest.mark.parametrize(
    "url",
    ["https://api.example.com", "http://api.twilio.com", "https://evil.example/api.twilio.com", "ftp://127.0.0.1"],
)
def test_the_rest_api_can_only_be_twilios_or_a_loopback_fake(url):
    with pytest.raises(ValueError, match=r"api_base_url must be https://api\.twilio\.com"):
        CallRedirector(ACCOUNT_SID, TOKEN, api_base_url=url)
    CallRedirector(ACCOUNT_SID, TOKEN)  # Twilio's own
    CallRedirector(ACCOUNT_SID, TOKEN, api_base_url="http://127.0.0.1:9")
