"""Graceful drain: while the server drains before a stop, new calls go to a person and /healthz says so; at the
deadline each live call is handed to a person (telephony/drain.py; the whole path through SIGTERM is in
tests/test_drain_serve.py)."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ElementTree

import pytest
from fastapi.testclient import TestClient

from telephony.app import create_app
from telephony.calls import CallRegistry, CallState
from telephony.drain import DRAIN_REASON, Drain
from telephony.settings import SettingsError, load_settings
from voice.events import Action, Decision

from .helpers import call_sid, post_webhook, signed_upgrade, start_message


@pytest.fixture
def draining_client() -> TestClient:
    # Served without the models (no `with`: the lifespan does not run): /twilio/voice and /healthz need none.
    client = TestClient(create_app(load_settings()))
    client.app.state.voice.drain.draining = True
    return client


def test_a_new_call_during_a_drain_hears_the_calm_message_and_is_dialled_to_a_person(draining_client):
    form = {"CallSid": call_sid("new"), "From": "+15005550006"}
    response = post_webhook(draining_client, "/twilio/voice", form)
    assert response.status_code == 200
    verbs = list(ElementTree.fromstring(response.text))
    assert [verb.tag for verb in verbs] == ["Say", "Dial"]  # never a Stream the stopping server would refuse
    state = draining_client.app.state.voice
    assert verbs[0].text == state.catalogue.replies.over_capacity
    assert verbs[1].find("Number").text == "+15005550101"  # the default department (customer service)

    call = state.registry.get(call_sid("new"))
    assert call.state is CallState.FINISHED
    assert call.outcome.rule == "over_capacity" and call.outcome.action is Action.TRANSFER
    assert call.outcome.reasons[-1] == f"draining: {DRAIN_REASON}"
    assert call.handoff.reason == f"the automated agent was taking no new calls: {DRAIN_REASON}"


def test_healthz_says_draining_with_the_live_calls(draining_client):
    draining_client.app.state.voice.registry.open("CA-live", "MZ-live")
    response = draining_client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "draining", "live_calls": 1}


def test_a_media_stream_during_a_drain_is_refused_as_while_loading(draining_client):
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as closed, signed_upgrade(draining_client) as ws:
        ws.send_json(start_message(call_sid=call_sid("late")))
        ws.receive_json()
    assert closed.value.code == 1013
    assert draining_client.app.state.voice.registry.get(call_sid("late")) is None


def test_drain_timeout_is_validated_naming_the_variable(monkeypatch):
    monkeypatch.setenv("VOICE_AGENT_DRAIN_TIMEOUT_S", "-1")
    with pytest.raises(SettingsError, match=r"VOICE_AGENT_DRAIN_TIMEOUT_S=.*-1"):
        load_settings()
    monkeypatch.setenv("VOICE_AGENT_DRAIN_TIMEOUT_S", "0")
    assert load_settings().drain_timeout_s == 0
    monkeypatch.delenv("VOICE_AGENT_DRAIN_TIMEOUT_S")
    assert load_settings().drain_timeout_s == 60


class _Pipeline:
    """Stands in for a live call's CallPipeline: handing it over finishes its call, as the session does."""

    def __init__(self, registry: CallRegistry, call_sid: str) -> None:
        self.registry, self.call_sid = registry, call_sid
        self.handed_over_why: str | None = None

    async def hand_over_now(self, why: str) -> None:
        self.handed_over_why = why
        self.registry.finish(self.call_sid, Decision(reply="", action=Action.TRANSFER, rule="handed_over_now"))


def test_at_the_deadline_each_live_call_is_handed_over_with_the_reason():
    registry, drain = CallRegistry(), Drain()
    registry.open("CA-1", "MZ-1")
    pipeline = _Pipeline(registry, "CA-1")
    drain.add(pipeline)  # type: ignore[arg-type]
    asyncio.run(drain.run(registry, timeout_s=0))
    assert drain.draining
    assert pipeline.handed_over_why == DRAIN_REASON
    assert registry.live_count() == 0


def test_a_call_that_ends_before_the_deadline_is_not_handed_over():
    registry, drain = CallRegistry(), Drain()
    registry.open("CA-1", "MZ-1")
    pipeline = _Pipeline(registry, "CA-1")
    drain.add(pipeline)  # type: ignore[arg-type]

    async def drain_while_the_call_ends() -> None:
        running = asyncio.create_task(drain.run(registry, timeout_s=600))
        await asyncio.sleep(0.2)
        assert drain.draining and not running.done()  # still waiting for the live call
        registry.finish("CA-1")
        await asyncio.wait_for(running, 5)

    asyncio.run(drain_while_the_call_ends())
    assert pipeline.handed_over_why is None
