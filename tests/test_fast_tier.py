"""The fast tier (`pytest --fast`, make test-fast): slow tests are left out, and a test left in that loads a model,
launches a browser or reaches a PostgreSQL server fails with the fix in the message.

Each check runs a small test file in a nested pytest with this suite's tier hooks; the nested guard patches over
(and then restores) the outer one, so these tests run in either tier.
"""

from __future__ import annotations

import psycopg
import pytest

from tests.fast_tier import FastTierError, FastTierGuard

TIER_HOOKS = """
from tests.conftest import (
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_makereport,
    pytest_unconfigure,
)
"""

TESTS = """
import pytest


@pytest.fixture
def voice_services():
    raise AssertionError("the models were loaded in the fast tier")


def test_uses_the_models(voice_services):
    pass


@pytest.mark.slow
def test_marked_slow():
    raise AssertionError("a slow test ran in the fast tier")


def test_pure():
    assert sum([1, 2]) == 3


def test_whisper(tmp_path):
    from faster_whisper import WhisperModel

    WhisperModel(str(tmp_path))


def test_onnx_model_behind_a_fallback():
    import onnxruntime

    try:
        onnxruntime.InferenceSession("silero_vad.onnx")
    except Exception:
        pass  # as product code with a fallback would


def test_browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        playwright.chromium.launch(executable_path="/usr/bin/chromium")


def test_unreachable_postgresql():
    import psycopg

    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect("postgresql://nobody@127.0.0.1:9/none", connect_timeout=5)
    assert any("mark this test slow" in note for note in refused.value.__notes__)
"""


@pytest.fixture
def tier_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(TIER_HOOKS)
    pytester.makeini("[pytest]\nmarkers =\n    slow: left out by --fast\naddopts = --strict-markers\n")
    pytester.makepyfile(test_tiers=TESTS)
    return pytester


def test_the_fast_tier_leaves_slow_tests_out_and_fails_what_loads_a_model_or_browser(tier_suite):
    result = tier_suite.runpytest_inprocess("--fast", "-p", "no:cacheprovider")

    result.assert_outcomes(passed=2, failed=3, deselected=2)
    result.stdout.fnmatch_lines(
        [
            "*FastTierError: fast tier: this test loads the Whisper model*; mark this test slow*",
            # The error was caught inside the test, which fails all the same.
            "fast tier: this test loads an ONNX model*; mark this test slow*",
            "*FastTierError: fast tier: this test launches a browser*; mark this test slow*",
            "FAILED test_tiers.py::test_whisper*",
            "FAILED test_tiers.py::test_onnx_model_behind_a_fallback*",
            "FAILED test_tiers.py::test_browser*",
        ]
    )


def test_a_test_using_the_models_fixture_is_marked_slow_in_every_tier(tier_suite):
    result = tier_suite.runpytest_inprocess("--collect-only", "-q", "-m", "slow", "-p", "no:cacheprovider")

    result.stdout.fnmatch_lines(["test_tiers.py::test_uses_the_models", "test_tiers.py::test_marked_slow", "*2/7*"])


def test_reaching_a_database_server_fails_and_closes_the_connection():
    closed = []

    class Connection:
        def close(self):
            closed.append(True)

    guard = FastTierGuard()
    connect = guard._postgres_connect(lambda *args, **kwargs: Connection())

    with pytest.raises(FastTierError, match=r"connects to a PostgreSQL server.*mark this test slow"):
        connect("postgresql://someone@db.example/calls")
    assert closed == [True]
    assert guard.take_violations() == [
        "fast tier: this test connects to a PostgreSQL server (psycopg.connect); mark this test slow "
        "(@pytest.mark.slow), or use the voice_services fixture, which marks it"
    ]


def test_the_guard_is_gone_after_the_fast_run():
    guard = FastTierGuard()
    connect = psycopg.connect
    guard.install()
    assert psycopg.connect is not connect
    guard.uninstall()
    assert psycopg.connect is connect
