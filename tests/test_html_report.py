"""The replay's HTML report: one self-contained file, everything in it escaped, and in a real browser a timeline
with the bars and markers the call's report holds, and a recording that plays.

Rendered from the session's replay of the fixture suite (`suite_replay` in conftest.py). The browser is Debian's
Chromium driven by Playwright, as in test_desk_browser.py (helpers in tests/helpers.py).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import shutil

import pytest

from qa.html_report import (
    INLINE_AUDIO_MAX_CALLS,
    build_timeline,
    inline_audio_default,
    render_html,
    write_html_report,
)
from qa.report import ReplayResult

from .helpers import CHROMIUM, CHROMIUM_ARGS, require_browser

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _calls(result: ReplayResult) -> dict[str, dict]:
    return {call.name: call.data for call in result.calls}


def test_the_report_is_one_file_that_needs_nothing_from_outside(suite_replay: ReplayResult):
    html = suite_replay.html_path.read_text(encoding="utf-8")
    assert suite_replay.html_path.name == "report.html"
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html), "an external reference"
    assert "<link" not in html and "@import" not in html
    for call in suite_replay.calls:
        assert f'data-name="{call.name}"' in html
    assert html.count('src="data:audio/wav;base64,') == len(suite_replay.calls)


def test_everything_from_a_call_is_escaped(suite_replay: ReplayResult, tmp_path):
    original = suite_replay.calls[0]
    data = copy.deepcopy(original.data)
    data["description"] = "<script>alert('description')</script>"
    data["turns"][0]["transcript"] = "<img src=x onerror=alert(1)>"
    call = dataclasses.replace(original, data=data)
    html = render_html(dataclasses.replace(suite_replay, calls=(call,)))
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#39;description&#39;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_timeline_places_speech_latency_and_decisions(suite_replay: ReplayResult):
    data = _calls(suite_replay)["billing_then_agent"]
    timeline = build_timeline(data)
    assert len(timeline.caller_bars) == 2 and len(timeline.latencies) == 2
    assert [item["label"] for item in timeline.decisions] == [
        "greeting · reply",
        "billing_question · reply",
        "speak_to_person · transfer → billing",
    ]
    # Left to right: the greeting, the first question, its answer, the second question, the transfer.
    greeting, answer, transfer = (item["x"] for item in timeline.decisions)
    first, second = (bar["x"] for bar in timeline.caller_bars)
    assert greeting < first < answer < second < transfer
    for latency, bar in zip(timeline.latencies, timeline.caller_bars, strict=True):
        assert latency["x1"] == pytest.approx(bar["x"] + bar["width"], abs=0.2)
        assert latency["x2"] > latency["x1"]


def test_the_report_in_a_browser_shows_each_timeline_and_plays_the_recording(suite_replay: ReplayResult, tmp_path):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    calls = _calls(suite_replay)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1200})
            page.set_default_timeout(10_000)
            page.goto(suite_replay.html_path.as_uri())
            expect(page.get_by_role("heading", name="Replay report")).to_be_visible()
            expect(page.locator("#summary tbody tr")).to_have_count(len(calls))

            billing = page.locator('section[data-name="billing_then_agent"]')
            svg = billing.locator("svg.timeline")
            expect(svg).to_be_visible()
            expect(svg.locator("rect.caller-speech")).to_have_count(2)
            expect(svg.locator("g.latency")).to_have_count(2)
            expect(svg.locator("g.decision")).to_have_count(3)
            expect(svg.locator("g.decision text").last).to_have_text("speak_to_person · transfer → billing")
            agent_bars = len(calls["billing_then_agent"]["timeline"]["agent_audio"])
            assert agent_bars >= 3  # the greeting, the answer, the transfer announcement
            expect(svg.locator("rect.agent-audio")).to_have_count(agent_bars)
            expect(svg.locator("g.barge-in")).to_have_count(0)

            barge_in = page.locator('section[data-name="barge_in"] svg.timeline')
            expect(barge_in.locator("g.barge-in")).to_have_count(1)
            expect(barge_in.locator("g.clear")).to_have_count(len(calls["barge_in"]["agent_audio"]["clears_at_ms"]))
            press_zero = page.locator('section[data-name="press_zero"] svg.timeline')
            expect(press_zero.locator("g.key-press-marker")).to_have_count(1)
            expect(press_zero.locator("g.key-press-marker text")).to_have_text("key 0")

            # Every expectation of the suite passed, and the passed ones are folded away.
            expect(page.locator("li.check.failed")).to_have_count(0)
            expect(billing.locator("details.passed-checks summary")).to_contain_text("expectations passed")

            # The recording is a real WAV the browser decodes, as long as the call; the playhead follows it.
            audio = billing.locator("audio")
            duration_s = audio.evaluate(
                """element => new Promise((resolve, reject) => {
                    if (element.readyState >= 1) return resolve(element.duration);
                    element.addEventListener("loadedmetadata", () => resolve(element.duration));
                    element.addEventListener("error", () => reject(new Error("the audio did not load")));
                    element.load();
                })"""
            )
            assert duration_s == pytest.approx(calls["billing_then_agent"]["duration_ms"] / 1000, abs=0.1)
            audio.evaluate("element => { element.currentTime = 10; element.dispatchEvent(new Event('timeupdate')); }")
            playhead_x = float(svg.locator("line.playhead").get_attribute("x1"))
            left, plot = float(svg.get_attribute("data-left")), float(svg.get_attribute("data-plot"))
            expected_x = left + 10_000 / calls["billing_then_agent"]["timeline"]["duration_ms"] * plot
            assert playhead_x == pytest.approx(expected_x, abs=1)

            # The top of the report, as people first see it (docs/replay-report.png is one of these).
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(tmp_path / "replay-report.png"), full_page=False)
        finally:
            browser.close()
    print(f"screenshot: {tmp_path / 'replay-report.png'}")


def test_clicking_a_timeline_event_plays_the_recording_from_there(suite_replay: ReplayResult):
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1200})
            page.set_default_timeout(10_000)
            page.goto(suite_replay.html_path.as_uri())
            billing = page.locator('section[data-name="billing_then_agent"]')
            audio = billing.locator("audio")
            audio.evaluate(
                """element => new Promise((resolve, reject) => {
                    if (element.readyState >= 1) return resolve();
                    element.addEventListener("loadedmetadata", () => resolve());
                    element.addEventListener("error", () => reject(new Error("the audio did not load")));
                    element.load();
                })"""
            )
            svg = billing.locator("svg.timeline")
            for event in (svg.locator("g.caller-turn").nth(1), svg.locator("g.decision").last.locator("text")):
                event.scroll_into_view_if_needed()
                event.click()
                at_ms = float(event.locator("xpath=ancestor-or-self::*[@data-at-ms][1]").get_attribute("data-at-ms"))
                assert at_ms > 0
                assert audio.evaluate("element => element.currentTime") == pytest.approx(at_ms / 1000, abs=0.05)
            # Between events, the time under the pointer: the middle of the plot is the middle of the call.
            box = svg.bounding_box()
            left, plot = float(svg.get_attribute("data-left")), float(svg.get_attribute("data-plot"))
            scale = box["width"] / 1000  # the viewBox is 1000 units wide
            page.mouse.click(box["x"] + (left + plot / 2) * scale, box["y"] + box["height"] - 2)
            duration_s = _calls(suite_replay)["billing_then_agent"]["duration_ms"] / 1000
            assert audio.evaluate("element => element.currentTime") == pytest.approx(duration_s / 2, abs=0.3)
        finally:
            browser.close()


def test_a_large_suite_links_its_recordings_instead_of_inlining_them(suite_replay: ReplayResult, tmp_path):
    # Eleven calls (more than INLINE_AUDIO_MAX_CALLS): the suite's own reports, copied under new names.
    calls = []
    for number in range(INLINE_AUDIO_MAX_CALLS + 1):
        original = suite_replay.calls[number % len(suite_replay.calls)]
        name = f"call_{number:02d}"
        wav = tmp_path / f"{name}.wav"
        shutil.copyfile(original.wav_path, wav)
        calls.append(dataclasses.replace(original, name=name, data={**original.data, "name": name}, wav_path=wav))
    result = write_html_report(dataclasses.replace(suite_replay, calls=tuple(calls), report_dir=tmp_path))

    html = result.html_path.read_text(encoding="utf-8")
    assert "data:audio" not in html
    recordings = sum(call.wav_path.stat().st_size for call in calls)
    assert len(html.encode("utf-8")) < recordings / 10, "the page should not carry the recordings"
    sources = re.findall(r'<audio [^>]*src="([^"]+)"', html)
    assert len(sources) == len(calls)
    for source in sources:
        assert not source.startswith(("/", "file:", "http")), source  # relative: the folder can move
        assert (result.html_path.parent / source).is_file(), source

    # A small suite has them inside, unless told otherwise.
    assert inline_audio_default(INLINE_AUDIO_MAX_CALLS) and not inline_audio_default(INLINE_AUDIO_MAX_CALLS + 1)
    assert "data:audio" not in render_html(suite_replay, inline_audio=False)
