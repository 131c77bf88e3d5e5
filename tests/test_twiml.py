"""TwiML for the webhook and the end of the stream, and the deployment file behind transfers."""

from __future__ import annotations

import pytest

from telephony import twiml
from telephony.deployment import DeploymentError, TransferTarget, load_transfer_targets
from telephony.settings import DEFAULT_DEPLOYMENT_FILE


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
