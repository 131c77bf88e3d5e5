"""A call from the browser, in a real browser: headless Chromium (Debian's package) driven by Playwright for Python,
with a fake microphone that plays audio_fixtures/browser_call_billing_16k.wav (silence, then "Hi, I have a question
about my bill.", looped by Chromium).

The real app and models are served on 127.0.0.1. The test opens the call page, is sent to the desk's login and back,
calls, and checks that the greeting plays (its text is shown, agent audio arrives, and its marks come back once it has
played), that the spoken question gets the catalogue's billing answer with its reasons, that the desk's API shows the
call live under its ``BR...`` id, and that hanging up ends it cleanly (the desk then lists it finished). A second call
presses 0 during the greeting: the greeting is cleared and the page shows the transfer before the call ends. The
browser is /usr/bin/chromium (`.ci/run` installs it); never run `playwright install`.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from qa.loopback_server import LoopbackServer
from telephony.calls import CallState
from telephony.roles import Role

from .helpers import CHROMIUM, CHROMIUM_ARGS, make_app, require_browser

AGENT_TOKEN = "browser-call-agent-token-0123"
AGENT_NAME, AGENT_PASSWORD = "caller-test", "caller-test-password"
MICROPHONE = Path(__file__).resolve().parent.parent / "audio_fixtures" / "browser_call_billing_16k.wav"
# A fake microphone fed from the fixture (looped), granted without a prompt.
FAKE_MICROPHONE_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    f"--use-file-for-fake-audio-capture={MICROPHONE}",
]
ANSWER_TIMEOUT_MS = 60_000
"""The question starts 15 s into the call; its answer must be shown well within this."""


def _agent_audio_s(page) -> float:
    return float(page.locator("#agent-audio").text_content().removesuffix(" s"))


def _wait_for_agent_audio(page, more_than_s: float, timeout_s: float) -> float:
    """Wait until the page has received more than `more_than_s` of agent audio; returns how much.

    Polled from here: the page's Content-Security-Policy (no eval) refuses Playwright's wait_for_function.
    """
    deadline = time.monotonic() + timeout_s
    while (received := _agent_audio_s(page)) <= more_than_s:
        assert time.monotonic() < deadline, f"only {received} s of agent audio after {timeout_s} s"
        page.wait_for_timeout(100)
    return received


def _wait_finished(app, call_id: str, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        call = app.state.voice.registry.get(call_id)
        if call is not None and call.state is CallState.FINISHED:
            return call
        time.sleep(0.05)
    raise AssertionError(f"call {call_id} did not finish within {timeout_s} s")


def test_a_browser_call_is_greeted_and_a_spoken_billing_question_gets_the_billing_answer(
    voice_services, tmp_path, monkeypatch
):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    for name in ("VOICE_AGENT_AGENT_TOKEN", "VOICE_AGENT_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    app = make_app(voice_services, agent_token=AGENT_TOKEN)
    catalogue = app.state.voice.catalogue
    billing = catalogue.intents["billing_question"]
    speech = voice_services.speech
    greeting_s = sum(len(part) for part in speech.get_or_synthesize(catalogue.replies.greeting)) / speech.sample_rate_hz

    with LoopbackServer(app) as server, sync_playwright() as playwright:
        app.state.voice.accounts.add(AGENT_NAME, Role.AGENT, AGENT_PASSWORD)
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS + FAKE_MICROPHONE_ARGS, timeout=30_000
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(10_000)
            script_errors: list[str] = []
            page.on("pageerror", lambda error: script_errors.append(str(error)))

            # The call page is for desk users: without a session it is the desk's login, which leads back to it.
            page.goto(f"{server.http_base}/desk/call")
            expect(page).to_have_url(f"{server.http_base}/desk?next=call")
            page.get_by_label("Name").fill(AGENT_NAME)
            page.get_by_label("Password").fill(AGENT_PASSWORD)
            page.get_by_role("button", name="Log in").click()
            expect(page).to_have_url(f"{server.http_base}/desk/call")
            expect(page.get_by_role("heading", name="Call the agent")).to_be_visible()
            expect(page.get_by_role("button", name="Hang up")).to_be_disabled()

            page.get_by_role("button", name="Call the agent").click()
            expect(page.locator("#call-id")).to_have_text(re.compile(r"^BR[0-9a-f]{32}$"))
            call_id = page.locator("#call-id").text_content()

            # The greeting: shown with its decision, and played (agent audio arrives in the browser).
            turns = page.locator("#turns li.turn")
            greeting = turns.first
            expect(greeting.locator(".reply")).to_have_text(catalogue.replies.greeting)
            expect(greeting.locator(".rule")).to_have_text("greeting")
            expect(greeting.locator(".caller-line")).to_have_count(0)
            _wait_for_agent_audio(page, more_than_s=greeting_s - 0.5, timeout_s=10)

            # The desk sees the call live, under the browser's call id.
            live = page.request.get(f"{server.http_base}/api/calls/{call_id}")
            assert live.status == 200 and live.json()["state"] == "live"

            # The spoken question (15 s into the fake microphone's audio) gets the billing answer, with its reasons.
            answer = turns.filter(has=page.locator(".intent", has_text="billing question")).first
            expect(answer).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
            expect(answer.locator(".caller-line")).to_contain_text(re.compile("bill", re.IGNORECASE))
            expect(answer.locator(".reply")).to_have_text(billing.reply)
            expect(answer.locator(".rule")).to_have_text("intent")
            expect(answer.locator(".action")).to_have_text("reply")
            assert float(answer.locator(".confidence").text_content()) > 0.5
            reasons = answer.locator(".reasons li")
            expect(reasons.first).to_be_visible()
            expect(reasons.last).to_contain_text("end of turn after")
            # Its reply's audio arrives too (the greeting's came at once, at the start; the question comes again only
            # after 18 s).
            _wait_for_agent_audio(page, more_than_s=greeting_s + 3, timeout_s=10)
            page.screenshot(path=str(tmp_path / "browser-call.png"), full_page=True)

            record = page.request.get(f"{server.http_base}/api/calls/{call_id}").json()
            intents = [turn["decision"]["intent"] for turn in record["turns"]]
            assert "billing_question" in intents, intents

            page.get_by_role("button", name="Hang up").click()
            expect(page.get_by_role("status")).to_have_text("Call ended: you hung up.")
            expect(page.get_by_role("button", name="Call the agent")).to_be_enabled()

            # The desk lists the call, finished, and links back to the call page.
            page.get_by_role("link", name="Back to the desk").click()
            row = page.locator(f'#call-rows tr[data-call-sid="{call_id}"]')
            expect(row.locator(".state")).to_have_text("finished")
            expect(row.locator(".intent")).to_have_text("billing question")
            page.get_by_role("link", name="Call the agent from this browser").click()

            # A second call: key 0 during the greeting clears it at once and hands the call over, which the page
            # shows before the call ends.
            page.get_by_role("button", name="Call the agent").click()
            expect(page.locator("#call-id")).not_to_have_text(call_id)
            expect(page.locator("#call-id")).to_have_text(re.compile(r"^BR[0-9a-f]{32}$"))
            second_id = page.locator("#call-id").text_content()
            _wait_for_agent_audio(page, more_than_s=greeting_s - 0.5, timeout_s=10)
            page.get_by_role("button", name="Key 0").click()
            expect(page.locator("#handover")).to_have_text(
                "In a real call you would now be transferred to customer service (the caller pressed 0 for a person).",
                timeout=30_000,
            )
            expect(page.get_by_role("status")).to_have_text("Call ended: handed over.")
            expect(turns.last.locator(".caller-line")).to_have_text("You: (pressed 0)")
        finally:
            browser.close()

    call = _wait_finished(app, call_id)
    assert call.failure is None  # hung up, not cut short
    assert call.records[0].decision.rule == "greeting"
    assert call.records[0].heard, "the greeting's marks never came back from the browser"
    answered = [record for record in call.records if record.decision.intent == "billing_question"]
    assert answered and answered[0].decision.reply == billing.reply
    transferred = _wait_finished(app, second_id)
    assert transferred.outcome.action.value == "transfer" and transferred.outcome.department == "customer_service"
    assert transferred.records[0].interrupted  # the greeting was cleared in the browser, its marks came back
    assert transferred.failure is None and transferred.handoff is not None
    assert server.stopped_cleanly
    assert script_errors == []
    print(f"call {call_id}: {len(call.records)} turns; screenshot: {tmp_path / 'browser-call.png'}")
