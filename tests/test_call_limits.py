"""The bounds of one stream and the guards in front of it, with a fake clock: key rate, the watchdog's reasons and its
turn bound, the per-address cap, the memory of repeated webhooks and the SID formats."""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from telephony.call_limits import CallLimits, CallWatchdog, Exceeded, KeyRate
from telephony.calls import CallInfo
from telephony.connection_cap import ConnectionsPerAddress
from telephony.twilio.sids import is_call_sid, is_stream_sid
from telephony.twilio.signature import RecentRequests
from voice.events import Action, Decision, Dtmf
from voice.pipeline import TurnRecord


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_keys_beyond_the_rate_are_dropped_after_a_burst_of_two_seconds_worth():
    clock = Clock()
    keys = KeyRate(5.0, clock)
    assert [keys.allow() for _ in range(12)] == [True] * 10 + [False] * 2
    clock.now += 1.0  # five more keys' worth
    assert [keys.allow() for _ in range(6)] == [True] * 5 + [False]
    assert keys.dropped == 3


def _exchange(digit: str) -> TurnRecord:
    return TurnRecord(caller=Dtmf(digit), decision=Decision(reply="Fine.", action=Action.REPLY, rule="test"))


def test_the_watchdog_names_the_bound_a_call_reached():
    clock = Clock()
    limits = CallLimits(silence_timeout_s=10, max_call_s=60, max_turns=3)
    watchdog, info = CallWatchdog(limits, clock), CallInfo(call_sid="CA" + "0" * 32, stream_sid="MZ" + "0" * 32)
    assert watchdog.exceeded(info) is None
    clock.now += 10
    assert watchdog.exceeded(info) == Exceeded("no audio arrived on the call's stream for 10 s", at_limit=False)
    watchdog.heard_audio()
    clock.now += 50
    watchdog.heard_audio()
    assert watchdog.exceeded(info) == Exceeded("the call reached its longest allowed length (60 s)", at_limit=True)


class HandOverPipeline:
    """The part of `CallPipeline` the watchdog uses: what it was asked to hand over, and why."""

    def __init__(self) -> None:
        self.finished = False
        self.why: list[str] = []
        self.at_limit: list[bool] = []

    async def hand_over_now(self, why: str, *, at_limit: bool = False) -> None:
        self.why.append(why)
        self.at_limit.append(at_limit)
        self.finished = True


def test_the_hand_over_starts_as_the_exchange_that_reaches_the_most_is_recorded():
    async def call() -> HandOverPipeline:
        pipeline = HandOverPipeline()
        watchdog = CallWatchdog(CallLimits(max_turns=3))
        info = CallInfo(call_sid="CA" + "1" * 32, stream_sid="MZ" + "1" * 32)
        # The greeting is no exchange.
        info.records = [TurnRecord(caller=None, decision=_exchange("1").decision), _exchange("1"), _exchange("2")]
        watchdog.recorded(info, pipeline)
        await asyncio.sleep(0)
        assert pipeline.why == []
        info.records.append(_exchange("3"))
        watchdog.recorded(info, pipeline)
        watchdog.recorded(info, pipeline)  # told again (the hand-over's own record): started once
        # Its first step runs on the loop's next turn, before anything else the pipeline waits for.
        await asyncio.sleep(0)
        assert pipeline.why == ["the call reached its most allowed exchanges (3)"]
        await watchdog.watch(info, pipeline)  # returns: the call is handed over
        return pipeline

    pipeline = asyncio.run(call())
    assert (pipeline.why, pipeline.at_limit) == (["the call reached its most allowed exchanges (3)"], [True])


def test_one_address_holds_at_most_its_share_of_streams():
    cap = ConnectionsPerAddress(2)
    assert cap.open("10.0.0.1") and cap.open("10.0.0.1") and not cap.open("10.0.0.1")
    assert cap.open("10.0.0.2")
    cap.close("10.0.0.1")
    assert cap.open("10.0.0.1") and not cap.open("10.0.0.1")


def _request(headers: dict[str, str], path: str = "/twilio/dial-status") -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return Request({"type": "http", "method": "POST", "path": path, "headers": raw, "query_string": b""})


def test_a_webhook_is_acted_on_once_per_idempotency_token_or_signature_and_memory_is_bounded():
    recent = RecentRequests(capacity=4)
    first = {"I-Twilio-Idempotency-Token": "t1", "X-Twilio-Signature": "s1"}
    assert not recent.repeated(_request(first))
    assert recent.repeated(_request(first))  # Twilio's retry
    assert recent.repeated(_request({"X-Twilio-Signature": "s1"}))  # replayed without the token
    assert recent.repeated(_request({"I-Twilio-Idempotency-Token": "t1", "X-Twilio-Signature": "s2"}))
    assert not recent.repeated(_request(first, path="/twilio/message-recorded"))  # another hook
    for index in range(4):
        recent.repeated(_request({"X-Twilio-Signature": f"other-{index}"}))
    assert not recent.repeated(_request({"X-Twilio-Signature": "s1"}))  # long forgotten


def test_sids_are_twilios_format_only():
    assert is_call_sid("CA" + "0123456789abcdef" * 2) and is_stream_sid("MZ" + "0123456789ABCDEF" * 2)
    for bad in ("", "CA1", "CA" + "0" * 33, "4111 1111 1111 1111", "CA" + "g" * 32, "x" * 20_002, "MZ" + "0" * 32):
        assert not is_call_sid(bad), bad
    assert not is_stream_sid("CA" + "0" * 32)
