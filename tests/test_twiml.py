"""TwiML for the webhook, the end of the stream and the transfer's steps, and the deployment file behind transfers."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

from telephony.settings import DEFAULT_DEPLOYMENT_FILE
from telephony.twilio import twiml
from telephony.twilio.deployment import DEFAULT_DIAL_TIMEOUT_S, DeploymentError, TransferTarget, load_transfer_targets


def test_connect_stream_is_bidirectional_with_an_after_stream_action():
    body = twiml.connect_stream("https://voice.example.com/")
    assert '<Connect action="https://voice.example.com/twilio/after-stream" method="POST">' in body
    assert '<Stream url="wss://voice.example.com/twilio/media"' in body
    assert "<Start>" not in body  # <Start><Stream> would be one-way: no audio back, no keys


def test_websocket_url_follows_the_scheme():
    assert twiml.websocket_url("http://127.0.0.1:8080") == "ws://127.0.0.1:8080/twilio/media"
    with pytest.raises(ValueError, match="expected an http"):
        twiml.websocket_url("ftp://example.com")


def test_hang_up_and_dial_variants():
    assert "<Hangup />" in twiml.hang_up()
    assert "<Dial><Number>+15005550102</Number></Dial>" in twiml.dial_department(TransferTarget(number="+15005550102"))
    assert "<Sip>sip:care@pbx.example.com</Sip>" in twiml.dial_department(
        TransferTarget(sip="sip:care@pbx.example.com")
    )
    assert "<Enqueue>billing</Enqueue>" in twiml.dial_department(TransferTarget(queue="billing"))


def _verbs(body: str) -> list[ElementTree.Element]:
    return list(ElementTree.fromstring(body))


def test_dial_with_a_whisper_and_a_status_url_rings_for_the_targets_timeout():
    body = twiml.dial_department(
        TransferTarget(number="+15005550102"),
        whisper_url="https://voice.example.com/twilio/whisper?call=CA1",
        status_url="https://voice.example.com/twilio/dial-status",
    )
    [dial] = _verbs(body)
    assert dial.attrib == {"action": "https://voice.example.com/twilio/dial-status", "method": "POST", "timeout": "30"}
    number = dial.find("Number")
    assert number.text == "+15005550102"
    assert number.attrib == {"url": "https://voice.example.com/twilio/whisper?call=CA1", "method": "POST"}

    sip = TransferTarget(sip="sip:care@pbx.example.com", timeout_s=45)
    [dial] = _verbs(twiml.dial_department(sip, whisper_url="https://x/w?call=CA1&x=1", status_url="https://x/s"))
    assert dial.attrib["timeout"] == "45"
    assert dial.find("Sip").attrib["url"] == "https://x/w?call=CA1&x=1"  # escaped in the XML, intact when parsed


def test_enqueue_with_a_wait_url_and_an_action():
    body = twiml.dial_department(
        TransferTarget(queue="care"), whisper_url="https://x/w", status_url="https://x/s", wait_url="https://x/q"
    )
    [enqueue] = _verbs(body)
    assert enqueue.tag == "Enqueue" and enqueue.text == "care"
    assert enqueue.attrib == {
        "action": "https://x/s",
        "method": "POST",
        "waitUrl": "https://x/q",
        "waitUrlMethod": "POST",
    }


def test_say_builders():
    assert [(v.tag, v.text) for v in _verbs(twiml.say("Summary.", "en-US"))] == [("Say", "Summary.")]
    verbs = _verbs(twiml.say_and_hang_up("Goodbye.", "nl-NL"))
    assert [v.tag for v in verbs] == ["Say", "Hangup"] and verbs[0].attrib["language"] == "nl-NL"
    say, pause = _verbs(twiml.queue_wait("Please stay on the line.", "en-US", pause_s=30))
    assert say.text == "Please stay on the line." and pause.tag == "Pause" and pause.attrib["length"] == "30"


def test_offer_choice_gathers_one_key_and_falls_through_to_the_choice_url():
    gather, redirect = _verbs(twiml.offer_choice("Press 1 or 2.", "en-US", "https://x/c", timeout_s=8))
    assert gather.tag == "Gather"
    assert gather.attrib == {"action": "https://x/c", "method": "POST", "numDigits": "1", "timeout": "8"}
    assert gather.find("Say").text == "Press 1 or 2."
    assert (redirect.tag, redirect.text, redirect.attrib["method"]) == ("Redirect", "https://x/c", "POST")


def test_record_message_is_bounded_and_falls_through_when_nothing_was_said():
    say, record, redirect = _verbs(twiml.record_message("After the tone.", "en-US", "https://x/r", "https://x/c", 120))
    assert say.text == "After the tone."
    assert record.tag == "Record"
    assert record.attrib["maxLength"] == "120" and record.attrib["action"] == "https://x/r"
    assert record.attrib["finishOnKey"] == "#" and record.attrib["playBeep"] == "true"
    assert (redirect.tag, redirect.text) == ("Redirect", "https://x/c")


def test_sample_deployment_covers_every_department():
    targets = load_transfer_targets(
        DEFAULT_DEPLOYMENT_FILE,
        ["customer_service", "billing"] + ["technical_support", "orders", "retention", "complaints", "fraud", "care"],
    )
    assert targets["billing"].number == "+15005550102"


def test_deployment_errors_name_the_file_and_department(tmp_path):
    path = tmp_path / "departments.yaml"
    path.write_text("departments:\n  billing: {number: '12345'}\n", encoding="utf-8")
    with pytest.raises(DeploymentError, match=r"departments\.yaml: departments\.billing\.number"):
        load_transfer_targets(path, ["billing"])
    path.write_text("departments:\n  billing: {number: '+15005550102', queue: billing}\n", encoding="utf-8")
    with pytest.raises(DeploymentError, match="exactly one of number, sip or queue"):
        load_transfer_targets(path, ["billing"])
    path.write_text("departments:\n  billing: {queue: billing}\n", encoding="utf-8")
    with pytest.raises(DeploymentError, match="departments without a target: care"):
        load_transfer_targets(path, ["billing", "care"])
    with pytest.raises(DeploymentError, match="deployment file not found"):
        load_transfer_targets(tmp_path / "absent.yaml", ["billing"])


def test_dial_timeouts_are_bounded_and_only_for_numbers_and_sip(tmp_path):
    path = tmp_path / "departments.yaml"
    path.write_text("departments:\n  billing: {queue: billing, timeout_s: 20}\n", encoding="utf-8")
    with pytest.raises(DeploymentError, match="timeout_s applies to a number or a sip address, not to a queue"):
        load_transfer_targets(path, ["billing"])
    path.write_text("departments:\n  billing: {number: '+15005550102', timeout_s: 2}\n", encoding="utf-8")
    with pytest.raises(
        DeploymentError, match=r"departments\.billing\.timeout_s: Input should be greater than or equal to 5"
    ):
        load_transfer_targets(path, ["billing"])
    path.write_text("departments:\n  billing: {number: '+15005550102', timeout_s: 40}\n", encoding="utf-8")
    assert load_transfer_targets(path, ["billing"])["billing"].dial_timeout_s == 40
    assert TransferTarget(number="+15005550102").dial_timeout_s == DEFAULT_DIAL_TIMEOUT_S
