"""A call-back end to end in a real browser (Debian's Chromium driven by Playwright): a caller asks about a bill, asks
for a person, nobody answers, the caller chooses a call-back; the request appears in the desk's queue, an agent
account reveals the number (audited) and marks it done; the agent cannot export or delete the call, an admin can, and
every one of those actions is in the audit trail.

The call is a fixture replayed over the media stream (`voice-agent replay --server`); Twilio's webhooks after it are
posted as Twilio posts them, with the caller's number in ``From``. A voicemail on a second request is played through
the server from a fake Twilio on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from qa.loopback_server import LoopbackServer
from qa.replay import run_replay
from telephony.app import create_app
from telephony.roles import Role
from telephony.settings import load_settings
from telephony.twilio.recordings import RecordingFetcher

from .helpers import CHROMIUM, CHROMIUM_ARGS, TWILIO, FakeTwilio, call_sid, require_browser, voicemail_wav

CALL = Path(__file__).resolve().parent.parent / "audio_fixtures" / "calls" / "billing_then_agent.json"
CALLER = "+31612345678"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "fake-twilio-auth-token"
RECORDING = "RE" + "7" * 32
ACCOUNTS = {"alice": (Role.AGENT, "alice-long-password"), "root": (Role.ADMIN, "root-long-password-2")}

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def test_a_call_back_from_request_to_done_with_every_action_audited(voice_services, tmp_path, monkeypatch):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    # TWILIO_AUTH_TOKEN stays as tests/conftest.py sets it: the replay and the webhooks below sign with it.
    for name in ("VOICE_AGENT_AGENT_TOKEN", "VOICE_AGENT_ADMIN_TOKEN", "TWILIO_ACCOUNT_SID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    with FakeTwilio(
        recordings={RECORDING: voicemail_wav(b"\x00\x08\x00\xf8")}, credentials=(ACCOUNT_SID, TWILIO_TOKEN)
    ) as twilio:
        fetcher = RecordingFetcher(ACCOUNT_SID, TWILIO_TOKEN, api_base_url=twilio.url)
        app = create_app(load_settings(), services=voice_services, recordings=fetcher)
        with LoopbackServer(app) as server:
            state = app.state.voice
            for name, (role, password) in ACCOUNTS.items():
                state.accounts.add(name, role, password)

            # The caller: a billing question, then a person; the replay ends when the server hands the call over.
            result = run_replay([CALL], tmp_path / "replay", server_url=server.ws_url, progress=lambda line: None)
            assert result.exit_code == 0
            replayed_sid = result.calls[0].data["call_sid"]
            # Twilio, after the stream: the dial, nobody answers, the caller presses 1 for a call-back.
            form = {"CallSid": replayed_sid, "From": CALLER}
            with httpx.Client(base_url=server.http_base) as twilio_side:

                def post(path: str, data: dict[str, str]) -> httpx.Response:
                    return twilio_side.post(path, data=data, headers=TWILIO.headers(server.http_base + path, data))

                assert "<Dial" in post("/twilio/after-stream", form).text
                offer = post("/twilio/dial-status", {**form, "DialCallStatus": "no-answer"})
                assert "<Gather" in offer.text
                assert post("/twilio/dial-choice", {**form, "Digits": "1"}).status_code == 200
                # Another caller leaves a message instead.
                other = {"CallSid": call_sid("voicemail"), "From": "+441632960001"}
                assert post("/twilio/dial-choice", {**other, "Digits": "2"}).status_code == 200
                recorded = {**other, "RecordingSid": RECORDING, "RecordingDuration": "1"}
                assert post("/twilio/message-recorded", recorded).status_code == 200

            # Playwright's sync API runs an event loop of its own: the replay (asyncio.run) comes first.
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000)
                try:
                    page = browser.new_page()
                    page.set_default_timeout(15_000)
                    page.goto(f"{server.http_base}/desk")
                    page.get_by_label("Name").fill("alice")
                    page.get_by_label("Password").fill(ACCOUNTS["alice"][1])
                    page.get_by_role("button", name="Log in").click()
                    expect(page.get_by_role("heading", name="Call-backs")).to_be_visible()

                    # The transferred call's card: the topic, why a person takes over, and where the transfer stands
                    # after Twilio's webhooks (nobody answered, the caller chose a call-back).
                    card = page.locator(f"article#handoff-{replayed_sid}")
                    expect(card.locator(".topics")).to_have_text("a bill")
                    expect(card.locator(".reason")).to_have_text("They asked to speak to a person.")
                    expect(card.locator(".transfer-state")).to_have_attribute("data-state", "callback_requested")

                    # The queue: masked caller, why (the handoff's topic and reason), when; the longest waiting first.
                    rows = page.locator("#callback-rows tr")
                    expect(rows).to_have_count(2)
                    request = rows.nth(0)
                    expect(request.locator(".caller")).to_have_text("*********78")
                    expect(request.locator(".about")).to_have_text(
                        "speak to person, for billing: the caller asked for a person"
                    )
                    expect(request.locator(".voicemail")).to_have_text("none")
                    assert "612345" not in page.content()

                    # Reveal: the number is shown, and the audit trail names the account.
                    request.get_by_role("button", name="Reveal number of *********78").click()
                    expect(request.locator(".caller")).to_have_text(CALLER)
                    reveals = [e for e in state.audit.events() if e.action == "reveal_number"]
                    assert [(e.actor, e.target, e.outcome) for e in reveals] == [("alice", replayed_sid, "ok")]

                    # The voicemail plays through the server, which fetched it from Twilio with the account's token.
                    voicemail = rows.nth(1)
                    voicemail.get_by_role("button", name="Play voicemail").click()
                    audio = voicemail.locator("audio")
                    expect(audio).to_have_count(1)
                    # Polled from here: the desk's CSP forbids the string evaluation wait_for_function uses.
                    for _ in range(150):
                        if audio.evaluate("node => node.readyState") >= 1:  # HAVE_METADATA: the length is known
                            break
                        page.wait_for_timeout(100)
                    assert 0.9 < audio.evaluate("node => node.duration") < 1.1
                    assert twilio.requests[-1]["path"].endswith(f"/Recordings/{RECORDING}.wav")

                    # Done: the request leaves the queue, its number is deleted.
                    request.get_by_role("button", name="Done: called back *********78").click()
                    expect(rows).to_have_count(1)
                    assert state.callbacks.number(replayed_sid) is None

                    # The agent may not export or delete the call.
                    export_url = f"{server.http_base}/api/calls/{replayed_sid}/export"
                    call_url = f"{server.http_base}/api/calls/{replayed_sid}"
                    assert page.request.get(export_url).status == 403
                    assert page.request.delete(call_url).status == 403

                    # An admin may.
                    page.get_by_role("button", name="Log out").click()
                    page.get_by_label("Name").fill("root")
                    page.get_by_label("Password").fill(ACCOUNTS["root"][1])
                    page.get_by_role("button", name="Log in").click()
                    expect(page.get_by_role("heading", name="Call-backs")).to_be_visible()
                    exported = page.request.get(export_url)
                    assert exported.status == 200 and exported.json()["record"]["callback_requested"] is True
                    assert page.request.delete(call_url).json() == {"deleted": 1}
                    assert page.request.get(call_url).status == 404
                    audit = page.request.get(f"{server.http_base}/api/audit").json()
                    page.screenshot(path=str(tmp_path / "callbacks.png"), full_page=True)
                finally:
                    browser.close()
        state.store.close()

    trail = [(e["actor"], e["action"], e["target"], e["outcome"]) for e in audit]
    assert trail == [
        ("alice", "login", "alice", "ok"),
        ("alice", "reveal_number", replayed_sid, "ok"),
        ("alice", "play_voicemail", call_sid("voicemail"), "ok"),
        ("alice", "callback_done", replayed_sid, "ok"),
        ("alice", "export", replayed_sid, "refused"),
        ("alice", "delete_call", replayed_sid, "refused"),
        ("root", "login", "root", "ok"),
        ("root", "export", replayed_sid, "ok"),
        ("root", "delete_call", replayed_sid, "ok"),
    ]
    assert all(event["address"] == "127.0.0.1" for event in audit)
    assert "612345" not in str(audit)
    assert server.stopped_cleanly
