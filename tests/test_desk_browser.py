"""The agent desk in a real browser: headless Chromium (Debian's package) driven by Playwright for Python.

The real app is served on 127.0.0.1; the test refuses a wrong token, logs in, replays a fixture call that asks for
a person (`voice-agent replay --server` against that server) and waits for the handoff card to appear live, without
a reload; then plays Twilio's transfer webhooks and watches the card's transfer state follow them, and opens the
call from its row. Playwright's own browser download cannot work offline: the browser is /usr/bin/chromium (`.ci/run`
installs it); never run `playwright install`.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from qa.loopback_server import LoopbackServer
from qa.replay import run_replay
from qa.report import ReplayResult

from .helpers import CHROMIUM, CHROMIUM_ARGS, make_app, require_browser

AGENT_TOKEN = "desk-agent-token-0123456789"
ADMIN_TOKEN = "desk-admin-token-9876543210"
CALL = Path(__file__).resolve().parent.parent / "audio_fixtures" / "calls" / "billing_then_agent.json"
CARD_TIMEOUT_MS = 60_000
"""The fixture call asks for a person about 20 s in; the card must appear well within this."""

# The replay's in-server WebSocket implementation is announced as deprecated on import; not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_desk_refuses_a_wrong_token_then_shows_a_handoff_live(voice_services, tmp_path, monkeypatch):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    for name in ("VOICE_AGENT_AGENT_TOKEN", "VOICE_AGENT_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    app = make_app(voice_services, agent_token=AGENT_TOKEN, admin_token=ADMIN_TOKEN)
    replayed: list[ReplayResult] = []
    progress: list[str] = []

    with LoopbackServer(app) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000)
        try:
            page = browser.new_page()
            page.set_default_timeout(10_000)
            page.goto(f"{server.base_url}/desk")

            # A wrong token is refused: a clear message, no session, no calls on screen.
            expect(page.get_by_role("heading", name="Log in")).to_be_visible()
            page.get_by_label("Access token").fill("wrong-token-wrong-token")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("alert")).to_have_text("That token was refused. Check it and try again.")
            expect(page.locator("#desk")).to_be_hidden()
            expect(page.get_by_role("heading", name="Calls", exact=True)).to_have_count(0)
            assert page.context.cookies() == []

            # The right token (typed and sent with the keyboard): the desk, connected to the live stream.
            page.get_by_label("Access token").fill(AGENT_TOKEN)
            page.get_by_label("Access token").press("Enter")
            expect(page.get_by_role("heading", name="Calls", exact=True)).to_be_visible()
            expect(page.get_by_role("heading", name="Log in")).to_be_hidden()
            expect(page.get_by_role("status")).to_have_text("Connected: calls update live.")
            expect(page.locator("#no-handoffs")).to_be_visible()
            # Set on this document only: still there at the end means the page was never reloaded.
            page.evaluate("window.__sameDocument = true")

            def replay() -> None:
                replayed.append(
                    run_replay([CALL], tmp_path / "replay", server_url=server.ws_url, progress=progress.append)
                )

            caller = threading.Thread(target=replay, name="replayed-caller", daemon=True)
            started = time.monotonic()
            caller.start()

            row = page.locator("#call-rows tr").first
            expect(row.locator(".state")).to_have_text("live", timeout=30_000)
            card = page.locator("#handoffs article")
            expect(card).to_have_count(1, timeout=CARD_TIMEOUT_MS)
            # The card is an article named by its heading, so a screen reader announces what it is about.
            expect(page.get_by_role("article", name="Transfer to billing")).to_be_visible()
            # The headline is the handoff: the same two sentences the person who answers hears in the whisper.
            summary = (
                "The caller asked about a bill and already heard the automated answer. They asked to speak to a person."
            )
            expect(card.locator(".handoff-summary")).to_have_text(summary)
            expect(card.locator(".topics")).to_have_text("a bill")
            expect(card.locator(".answered")).to_have_text("a bill")
            expect(card.locator(".reason")).to_have_text("They asked to speak to a person.")
            expect(card).to_have_attribute("data-reason", "person_requested")
            expect(card.locator(".department")).to_have_text("billing")
            expect(card.locator(".caller")).to_have_text("unknown")  # the replay sends no caller number
            expect(card.locator(".transcript")).to_contain_text("Caller:")
            expect(card.locator(".transfer-state")).to_have_attribute("data-state", "pending")
            # The cards come before the call list.
            assert page.evaluate(
                "document.querySelector('#handoffs').compareDocumentPosition(document.querySelector('#calls'))"
                " & Node.DOCUMENT_POSITION_FOLLOWING"
            )
            expect(page.locator("#handoffs")).to_have_attribute("aria-live", "polite")
            card_after_s = time.monotonic() - started
            page.screenshot(path=str(tmp_path / "desk.png"), full_page=True)

            caller.join(timeout=60)
            assert not caller.is_alive(), "the replayed call did not end"
            expect(row.locator(".state")).to_have_text("finished")
            expect(row.locator(".outcome")).to_have_text("transferred to billing")
            call_sid = card.get_attribute("data-call-sid")

            # Twilio's transfer webhooks move the card's state live: dialled, then answered by a person.
            page.request.post(f"{server.base_url}/twilio/after-stream", form={"CallSid": call_sid})
            state = card.locator(".transfer-state")
            expect(state).to_have_attribute("data-state", "ringing")
            expect(state).to_have_text("Ringing the team")
            whisper = page.request.post(f"{server.base_url}/twilio/whisper?call={call_sid}", form={"CallSid": "CA-leg"})
            assert summary in whisper.text()  # the person hears what the card says
            expect(state).to_have_attribute("data-state", "answered")
            expect(state).to_have_text("Answered by a person")

            # The call's row opens the call: conversation, decisions with their reasons, the transfer's steps.
            row.get_by_role("button", name=f"Open call {call_sid}").click()
            view = page.locator("#call-view")
            expect(view).to_be_visible()
            expect(page.get_by_role("heading", name=f"Call {call_sid}")).to_be_focused()
            expect(view.locator(".turn")).to_have_count(3)  # greeting, the bill, the person
            expect(view.locator(".turn").nth(1)).to_contain_text("question about my bill")
            decision = view.locator(".turn").nth(2).locator(".decision")
            decision.locator("summary").click()
            expect(decision.locator(".reasons")).to_contain_text("rule human_request")
            expect(view.locator("#call-view-timeline .step")).to_have_count(2)
            expect(view.locator("#call-view-timeline .step").nth(1)).to_have_attribute("data-state", "answered")
            # Still live: the person's call ends and the open view follows.
            page.request.post(
                f"{server.base_url}/twilio/dial-status", form={"CallSid": call_sid, "DialCallStatus": "completed"}
            )
            expect(view.locator("#call-view-timeline .step")).to_have_count(3)
            expect(state).to_have_text("Talked to a person")
            page.screenshot(path=str(tmp_path / "desk-call-view.png"), full_page=True)
            page.get_by_role("button", name="Close the call view").click()
            expect(view).to_be_hidden()
            assert page.evaluate("window.__sameDocument") is True

            page.get_by_role("button", name="Log out").click()
            expect(page.get_by_role("heading", name="Log in")).to_be_visible()
            expect(page.get_by_role("alert")).to_have_text("You are logged out.")
            assert page.request.get(f"{server.base_url}/api/calls").status == 401
        finally:
            browser.close()

    # Against --server the replay knows only the wire: the server closed the stream for the transfer, cleanly.
    assert replayed and replayed[0].exit_code == 0, progress
    assert replayed[0].calls[0].data["ended"]["by"] == "server_closed"
    assert server.stopped_cleanly
    print(f"handoff card shown {card_after_s:.1f} s after the call started; screenshot: {tmp_path / 'desk.png'}")
