"""Nobody but Twilio opens a call: signed upgrades and webhooks, the one-time stream secret, refused starts that
leave every record as it was, stream deadlines, and TwiML that never carries a forged Host."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from qa.loopback_server import LoopbackServer
from qa.twilio_signing import TwilioCredentials
from telephony.admission import STREAM_SECRET_PARAMETER, Admission
from telephony.app import create_app
from telephony.call_record import call_record
from telephony.calls import CallRegistry, CallState
from telephony.settings import SettingsError, load_settings
from telephony.stream_tickets import StreamTickets

from .helpers import (
    BASE,
    TWILIO,
    admit,
    admit_on,
    app_client,
    call_sid,
    dtmf_message,
    make_app,
    play_until_closed,
    post_webhook,
    receive_until_mark,
    signed_upgrade,
    start_message,
    stream_sid,
    twilio_stream,
)

WAIT_S = 30.0


def _refused(ws) -> int:
    """The close code of a stream the server closes without sending any media."""
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    return closed.value.code


# --- the upgrade and the webhooks are signed ----------------------------------------------------------------------


def test_an_unsigned_or_wrongly_signed_media_stream_upgrade_is_refused():
    client = app_client(None)  # refused before anything else is looked at: no models needed
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/twilio/media"):
        pass
    assert refused.value.code == 1008
    wrong = TwilioCredentials("another-accounts-token")
    with pytest.raises(WebSocketDisconnect) as refused, signed_upgrade(client, wrong):
        pass
    assert refused.value.code == 1008


def test_without_an_auth_token_the_server_refuses_to_start_unless_unsigned_requests_are_allowed(monkeypatch):
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    with pytest.raises(SettingsError, match=r"TWILIO_AUTH_TOKEN is not set.*VOICE_AGENT_ALLOW_UNSIGNED_WEBHOOKS=true"):
        create_app(load_settings())
    monkeypatch.setenv("VOICE_AGENT_ALLOW_UNSIGNED_WEBHOOKS", "true")
    app = create_app(load_settings())
    assert app.state.voice.signatures.unsigned


def test_an_unsigned_webhook_is_refused_and_changes_nothing(voice_services):
    with app_client(voice_services) as client:
        form = {"CallSid": call_sid("forged"), "From": "+15005550006"}
        assert client.post("/twilio/voice", data=form).status_code == 403
        assert client.app.state.voice.registry.get(call_sid("forged")) is None
        assert client.app.state.voice.admission.calls() == 0
        status = {"CallSid": call_sid("forged"), "DialCallStatus": "completed"}
        assert client.post("/twilio/dial-status", data=status).status_code == 403


def test_a_development_server_says_loudly_that_requests_are_unsigned(voice_services, monkeypatch, caplog):
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    with app_client(voice_services, allow_unsigned_webhooks=True) as client:
        health = client.get("/healthz").json()
    assert "NOT checked" in health["warning"]
    assert any("NOT checked" in record.getMessage() for record in caplog.records)


def test_a_forged_host_never_reaches_twiml(voice_services):
    evil = {"host": "evil.example"}
    with app_client(voice_services) as client:
        form = {"CallSid": call_sid("host"), "From": "+15005550006"}
        # Signed for the real URL, sent with another Host: the signature no longer matches.
        response = client.post(
            "/twilio/voice", data=form, headers={**TWILIO.headers(BASE + "/twilio/voice", form), **evil}
        )
        assert response.status_code == 403 and "evil.example" not in response.text
    public = TwilioCredentials(TWILIO.auth_token, "https://voice.example.com")
    with app_client(voice_services, public_url="https://voice.example.com") as client:
        headers = {**public.headers(BASE + "/twilio/voice", form), **evil}
        response = client.post("/twilio/voice", data=form, headers=headers)
        assert response.status_code == 200 and "evil.example" not in response.text
        assert "wss://voice.example.com/twilio/media" in response.text


def test_a_development_server_never_puts_the_host_header_into_twiml(voice_services, monkeypatch):
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    with app_client(voice_services, allow_unsigned_webhooks=True) as client:
        form = {"CallSid": call_sid("dev-host")}
        response = client.post("/twilio/voice", data=form, headers={"host": "evil.example"})
    assert response.status_code == 200 and "evil.example" not in response.text


def test_a_repeated_state_changing_webhook_changes_nothing(voice_services):
    with app_client(voice_services) as client:
        with twilio_stream(client) as ws:
            ws.send_json(start_message(call_sid=call_sid("repeat")))
            receive_until_mark(ws)
            ws.send_json(dtmf_message("0"))
            play_until_closed(ws)
        form = {"CallSid": call_sid("repeat"), "DialCallStatus": "no-answer"}
        headers = {**TWILIO.headers(BASE + "/twilio/dial-status", form), "I-Twilio-Idempotency-Token": "t-1"}
        assert client.post("/twilio/dial-status", data=form, headers=headers).status_code == 200
        assert client.app.state.voice.registry.get(call_sid("repeat")).transfer_status == "no-answer"
        client.app.state.voice.registry.get(call_sid("repeat")).transfer_status = "completed"
        # The same signed request again (Twilio's retry, or someone replaying it): answered, nothing changed.
        assert client.post("/twilio/dial-status", data=form, headers=headers).status_code == 200
        assert client.app.state.voice.registry.get(call_sid("repeat")).transfer_status == "completed"


# --- the stream's one-time secret -----------------------------------------------------------------------------------


def test_a_start_with_a_forged_secret_is_refused_and_the_genuine_one_still_opens_the_call(voice_services):
    with app_client(voice_services) as client:
        parameters = admit(client, call_sid("forged-secret"))
        with signed_upgrade(client) as ws:
            forged = {**parameters, STREAM_SECRET_PARAMETER: "guessed"}
            ws.send_json(start_message(call_sid=call_sid("forged-secret"), parameters=forged))
            assert _refused(ws) == 1008
        assert client.app.state.voice.registry.get(call_sid("forged-secret")) is None
        with signed_upgrade(client) as ws:
            ws.send_json(start_message(call_sid=call_sid("forged-secret"), parameters=parameters))
            receive_until_mark(ws)  # the greeting
            ws.send_json({"event": "stop", "streamSid": start_message()["streamSid"]})


def test_a_start_without_an_admission_or_with_malformed_sids_is_refused(voice_services):
    with app_client(voice_services) as client:
        for start in (
            start_message(call_sid=call_sid("never-admitted"), parameters={STREAM_SECRET_PARAMETER: "x"}),
            start_message(call_sid="4111 1111 1111 1111", parameters={STREAM_SECRET_PARAMETER: "x"}),
            start_message(stream_sid="MZ1", call_sid=call_sid("bad-stream")),
            start_message(call_sid=""),
        ):
            with signed_upgrade(client) as ws:
                ws.send_json(start)
                assert _refused(ws) == 1008
        assert client.app.state.voice.registry.all() == []
        assert client.post("/twilio/voice", data={"CallSid": "x" * 20_002}).status_code == 403  # unsigned
        assert post_webhook(client, "/twilio/voice", {"CallSid": "x" * 20_002}).status_code == 400


def test_a_start_naming_a_live_or_finished_call_is_refused_and_both_records_are_unchanged(voice_services):
    with app_client(voice_services) as client:
        registry = client.app.state.voice.registry
        store = client.app.state.voice.store
        with twilio_stream(client) as finished:  # a call that was transferred and is over
            finished.send_json(start_message(stream_sid("done"), call_sid("done")))
            receive_until_mark(finished)
            finished.send_json(dtmf_message("0", stream_sid("done")))
            play_until_closed(finished)
        deadline = time.monotonic() + WAIT_S
        while registry.get(call_sid("done")).state is not CallState.FINISHED:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        while store.get(call_sid("done")) is None or store.get(call_sid("done")).state is not CallState.FINISHED:
            assert time.monotonic() < deadline  # the app's writer stores the record in the background
            time.sleep(0.05)
        stored_before = store.get(call_sid("done"))
        now = time.time()  # a live call's record shows its duration so far
        with twilio_stream(client) as live:
            live.send_json(start_message(stream_sid("live"), call_sid("live")))
            receive_until_mark(live)
            live_before = call_record(registry.get(call_sid("live")), now).model_dump()
            done_before = call_record(registry.get(call_sid("done"))).model_dump()

            for target in ("live", "done"):
                # Twilio never offers a call twice: /twilio/voice refuses it, so no secret is to be had ...
                response = post_webhook(client, "/twilio/voice", {"CallSid": call_sid(target)})
                assert response.status_code == 409
                # ... and a start naming it, with any secret, is refused.
                with signed_upgrade(client) as forged:
                    parameters = {STREAM_SECRET_PARAMETER: "anything", "caller": "+15005550199"}
                    forged.send_json(start_message(stream_sid("forged"), call_sid(target), parameters=parameters))
                    assert _refused(forged) == 1008

            live_info = registry.get(call_sid("live"))
            assert live_info.state is CallState.LIVE and live_info.stream_sid == stream_sid("live")
            assert call_record(live_info, now).model_dump() == live_before
            assert call_record(registry.get(call_sid("done"))).model_dump() == done_before
            live.send_json({"event": "stop", "streamSid": stream_sid("live")})
        assert store.get(call_sid("done")) == stored_before


def test_a_ticket_opens_only_its_own_call_once_and_only_while_valid():
    registry = CallRegistry()
    clock = [1000.0]
    tickets = StreamTickets(b"the shared auth token", lifetime_s=30, clock=lambda: clock[0])
    admission = Admission(registry, max_calls=2, tickets=tickets)
    ticket = admission.admit(call_sid("once"))
    assert ticket is not None and not admission.claim(call_sid("once"), ticket + "0")
    assert not admission.claim(call_sid("other"), ticket)  # another call's
    # Another instance with the same token may open the stream (the webhook and the stream may land apart) ...
    elsewhere = Admission(
        CallRegistry(), max_calls=2, tickets=StreamTickets(b"the shared auth token", clock=lambda: clock[0])
    )
    assert elsewhere.claim(call_sid("once"), ticket)
    # ... one with another key may not, nor anyone once the ticket has expired.
    assert not Admission(CallRegistry(), max_calls=2).claim(call_sid("once"), ticket)
    clock[0] += 31
    assert not admission.claim(call_sid("once"), ticket)
    clock[0] -= 31
    assert admission.claim(call_sid("once"), ticket)
    registry.open(call_sid("once"), stream_sid("once"))
    assert not admission.claim(call_sid("once"), ticket)  # reused while the call is live
    registry.finish(call_sid("once"))
    assert not admission.claim(call_sid("once"), ticket)  # reused after it ended


# --- deadlines and bounds -------------------------------------------------------------------------------------------


async def _idle_sockets(ws_url: str, count: int, wait_s: float) -> list[bool]:
    """Open `count` signed sockets that never send start; whether each was closed by the server within `wait_s`."""

    async def one() -> bool:
        async with connect(ws_url, additional_headers=TWILIO.headers(ws_url), open_timeout=10) as ws:
            try:
                await asyncio.wait_for(ws.recv(), wait_s)
            except ConnectionClosed:
                return True
            except TimeoutError:
                return False
            return False

    return list(await asyncio.gather(*(one() for _ in range(count))))


def test_idle_sockets_are_closed_within_the_start_deadline_and_a_signed_call_then_gets_through(voice_services):
    app = make_app(voice_services, max_calls=2, stream_start_timeout_s=1.0, max_streams_per_address=40)
    with LoopbackServer(app, name="idle-sockets") as server:
        started = time.monotonic()
        closed = asyncio.run(_idle_sockets(server.ws_url, 30, wait_s=10.0))
        assert all(closed) and time.monotonic() - started < 10.0
        assert app.state.voice.registry.all() == []

        async def a_call() -> str:
            parameters = admit_on(server.http_base, call_sid("after-idle"))
            signed = TWILIO.headers(server.ws_url)
            async with connect(server.ws_url, additional_headers=signed, open_timeout=10) as ws:
                start = start_message(call_sid=call_sid("after-idle"), parameters=parameters)
                await ws.send(json.dumps(start))
                return json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))["event"]

        assert asyncio.run(a_call()) == "media"  # the greeting


def test_unsigned_sockets_and_too_many_from_one_address_are_refused_at_the_upgrade(voice_services):
    app = make_app(voice_services, stream_start_timeout_s=5.0, max_streams_per_address=2)

    async def scenario(ws_url: str) -> None:
        with pytest.raises(InvalidStatus) as unsigned:
            async with connect(ws_url, open_timeout=10):
                pass
        assert unsigned.value.response.status_code == 403
        signed = TWILIO.headers(ws_url)
        async with connect(ws_url, additional_headers=signed), connect(ws_url, additional_headers=signed):
            with pytest.raises(InvalidStatus) as third:
                async with connect(ws_url, additional_headers=signed, open_timeout=10):
                    pass
            assert third.value.response.status_code == 403

    with LoopbackServer(app, name="address-cap") as server:
        asyncio.run(scenario(server.ws_url))


def test_a_started_stream_that_sends_no_audio_is_handed_to_a_person_with_why(voice_services):
    with app_client(voice_services, stream_silence_timeout_s=1.0) as client:
        with twilio_stream(client) as ws:
            ws.send_json(start_message(call_sid=call_sid("silent")))
            play_until_closed(ws)  # the greeting, the apology, then the close: no media was ever sent
        call = client.app.state.voice.registry.get(call_sid("silent"))
        deadline = time.monotonic() + WAIT_S
        while call.state is not CallState.FINISHED:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert call.outcome.action.value == "transfer"
    assert any("no audio arrived" in reason for reason in call.outcome.reasons)
    assert call.records[-1].decision.reply == voice_services.engine.catalogue.replies.technical_problem


def test_key_presses_beyond_the_most_exchanges_hand_the_call_to_a_person(voice_services):
    with app_client(voice_services, max_turns=3, max_keys_per_s=100.0) as client:
        with twilio_stream(client) as ws:
            ws.send_json(start_message(call_sid=call_sid("keys")))
            receive_until_mark(ws)
            for _ in range(30):
                ws.send_json(dtmf_message("7"))
            play_until_closed(ws)
        call = client.app.state.voice.registry.get(call_sid("keys"))
    exchanges = [record for record in call.records if record.caller is not None]
    # Thirty keys at once, all let in (none was answered yet): the hand-over starts as the third is recorded, so the
    # record holds exactly the most allowed, then the hand-over itself (no caller), with why.
    assert len(exchanges) == 3
    assert call.records[-1].caller is None
    assert "the call reached its most allowed exchanges (3)" in call.records[-1].decision.reasons
    assert any("most allowed exchanges (3)" in reason for reason in call.outcome.reasons)
    # A limit is no fault: the caller is not told of a technical problem.
    replies = voice_services.engine.catalogue.replies
    assert call.records[-1].decision.reply == replies.call_limit != replies.technical_problem
