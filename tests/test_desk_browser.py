"""The agent desk in a real browser: headless Chromium (Debian's package) driven by Playwright for Python.

The real app is served on 127.0.0.1; the test refuses a wrong password, logs in with a desk account, replays a
fixture call that asks for a person (`voice-agent replay --server` against that server) and waits for the handoff
card to appear live, without a reload; then plays Twilio's transfer webhooks and watches the card's transfer state
follow them, and opens the call from its row. Playwright's own browser download cannot work offline: the browser is
/usr/bin/chromium (`.ci/run` installs it); never run `playwright install`.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qa.loopback_server import LoopbackServer
from qa.replay import run_replay
from qa.report import ReplayResult
from telephony.roles import Role

from .helpers import CHROMIUM, CHROMIUM_ARGS, TWILIO, call_sid, make_app, require_browser

AGENT_TOKEN = "desk-agent-token-0123456789"
ADMIN_TOKEN = "desk-admin-token-9876543210"
AGENT_NAME, AGENT_PASSWORD = "desk-agent", "desk-agent-password"
CALL = Path(__file__).resolve().parent.parent / "audio_fixtures" / "calls" / "billing_then_agent.json"
CARD_TIMEOUT_MS = 60_000
"""The fixture call asks for a person about 20 s in; the card must appear well within this."""

# The replay's in-server WebSocket implementation is announced as deprecated on import; not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def no_env_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's tokens are the test's own, not the environment's."""
    for name in ("VOICE_AGENT_AGENT_TOKEN", "VOICE_AGENT_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@contextlib.contextmanager
def desk_page(app: Any) -> Iterator[tuple[LoopbackServer, Any]]:
    """`app` served on 127.0.0.1 with one desk account, and a headless Chromium page on its desk."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with LoopbackServer(app) as server, sync_playwright() as playwright:
        app.state.voice.accounts.add(AGENT_NAME, Role.AGENT, AGENT_PASSWORD)
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000)
        try:
            page = browser.new_page()
            page.set_default_timeout(10_000)
            page.goto(f"{server.http_base}/desk")
            yield server, page
        finally:
            browser.close()


def test_desk_refuses_a_wrong_password_then_shows_a_handoff_live(voice_services, tmp_path, no_env_tokens):
    from playwright.sync_api import expect

    app = make_app(voice_services, agent_token=AGENT_TOKEN, admin_token=ADMIN_TOKEN)
    replayed: list[ReplayResult] = []
    progress: list[str] = []

    with desk_page(app) as (server, page):
        # A wrong password is refused: a clear message, no session, no calls on screen.
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()
        page.get_by_label("Name").fill(AGENT_NAME)
        page.get_by_label("Password").fill("wrong-password-wrong")
        page.get_by_role("button", name="Log in").click()
        refused = "That name and password were refused. Check them and try again."
        expect(page.get_by_role("alert")).to_have_text(refused)
        expect(page.locator("#desk")).to_be_hidden()
        expect(page.get_by_role("heading", name="Calls", exact=True)).to_have_count(0)
        assert page.context.cookies() == []

        # The right password (typed and sent with the keyboard): the desk, connected to the live stream.
        page.get_by_label("Password").fill(AGENT_PASSWORD)
        page.get_by_label("Password").press("Enter")
        expect(page.get_by_role("heading", name="Calls", exact=True)).to_be_visible()
        expect(page.get_by_role("heading", name="Log in")).to_be_hidden()
        expect(page.get_by_role("status")).to_have_text("Connected: calls update live.")
        expect(page.locator("#no-handoffs")).to_be_visible()
        # Set on this document only: still there at the end means the page was never reloaded.
        page.evaluate("window.__sameDocument = true")

        def replay() -> None:
            replayed.append(run_replay([CALL], tmp_path / "replay", server_url=server.ws_url, progress=progress.append))

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
        # The replay's caller number (From, as Twilio sends it), masked but for its last two digits.
        expect(card.locator(".caller")).to_have_text(re.compile(r"^\*+\d\d$"))
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
        sid = card.get_attribute("data-call-sid")

        def post_as_twilio(path: str, form: dict[str, str]):
            url = server.http_base + path
            return page.request.post(url, form=form, headers=TWILIO.headers(url, form))

        # Twilio's transfer webhooks move the card's state live: dialled, then answered by a person.
        post_as_twilio("/twilio/after-stream", {"CallSid": sid})
        state = card.locator(".transfer-state")
        expect(state).to_have_attribute("data-state", "ringing")
        expect(state).to_have_text("Ringing the team")
        whisper = post_as_twilio(f"/twilio/whisper?call={sid}", {"CallSid": call_sid("leg")})
        assert summary in whisper.text()  # the person hears what the card says
        expect(state).to_have_attribute("data-state", "answered")
        expect(state).to_have_text("Answered by a person")

        # The call's row opens the call: conversation, decisions with their reasons, the transfer's steps.
        row.get_by_role("button", name=f"Open call {sid}").click()
        view = page.locator("#call-view")
        expect(view).to_be_visible()
        expect(page.get_by_role("heading", name=f"Call {sid}")).to_be_focused()
        expect(view.locator(".turn")).to_have_count(3)  # greeting, the bill, the person
        expect(view.locator(".turn").nth(1)).to_contain_text("question about my bill")
        decision = view.locator(".turn").nth(2).locator(".decision")
        decision.locator("summary").click()
        expect(decision.locator(".reasons")).to_contain_text("rule human_request")
        expect(view.locator("#call-view-timeline .step")).to_have_count(2)
        expect(view.locator("#call-view-timeline .step").nth(1)).to_have_attribute("data-state", "answered")
        # Still live: the person's call ends and the open view follows.
        post_as_twilio("/twilio/dial-status", {"CallSid": sid, "DialCallStatus": "completed"})
        expect(view.locator("#call-view-timeline .step")).to_have_count(3)
        expect(state).to_have_text("Talked to a person")
        page.screenshot(path=str(tmp_path / "desk-call-view.png"), full_page=True)
        page.get_by_role("button", name="Close the call view").click()
        expect(view).to_be_hidden()
        assert page.evaluate("window.__sameDocument") is True

        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()
        expect(page.get_by_role("alert")).to_have_text("You are logged out.")
        assert page.request.get(f"{server.http_base}/api/calls").status == 401

    # Against --server the replay knows only the wire: the server closed the stream for the transfer, cleanly.
    assert replayed and replayed[0].exit_code == 0, progress
    assert replayed[0].calls[0].data["ended"]["by"] == "server_closed"
    assert server.stopped_cleanly
    print(f"handoff card shown {card_after_s:.1f} s after the call started; screenshot: {tmp_path / 'desk.png'}")


def test_the_desk_speaks_dutch_when_the_deployment_does(voice_services, no_env_tokens):
    from playwright.sync_api import expect

    # Only the desk is looked at: the models loaded for English serve the app, no call is made.
    app = make_app(voice_services, language="nl")
    with desk_page(app) as (_, page):
        expect(page.get_by_role("heading", name="Inloggen")).to_be_visible()
        page.get_by_label("Naam").fill(AGENT_NAME)
        page.get_by_label("Wachtwoord").fill("wrong-password-wrong")
        page.get_by_role("button", name="Inloggen").click()
        # The refusal is the page's own Dutch label (labels.js), not the server's English detail.
        refused = "Die naam en dat wachtwoord zijn geweigerd. Controleer ze en probeer het opnieuw."
        expect(page.get_by_role("alert")).to_have_text(refused)

        page.get_by_label("Wachtwoord").fill(AGENT_PASSWORD)
        page.get_by_label("Wachtwoord").press("Enter")
        expect(page.get_by_role("heading", name="Gesprekken", exact=True)).to_be_visible()
        expect(page.get_by_role("heading", name="Terugbellen")).to_be_visible()
        expect(page.get_by_role("status")).to_have_text("Verbonden: gesprekken worden live bijgewerkt.")
        page.get_by_role("button", name="Uitloggen").click()
        expect(page.get_by_role("alert")).to_have_text("U bent uitgelogd.")
