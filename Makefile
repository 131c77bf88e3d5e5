# Two commands do all set-up on a fresh machine (see README):
#   make run    install, then start the server on the embedded defaults (bundled models, sample catalogue)
#   make test   install, then lint and run the whole test suite (what CI runs)
#   make test-fast  install, then lint and run the fast tier only: no model, browser or database server (~1 min)
#   make replay install, then replay the QA suite of fixture calls with a report
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export ORT_DISABLE_TELEMETRY := 1

HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: install run chat replay test test-fast lint bench bench-load clean

$(BIN)/voice-agent: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[piper,dev]'
	touch $@

install: $(BIN)/voice-agent

run: install
	$(BIN)/voice-agent serve --host $(HOST) --port $(PORT)

chat: install
	$(BIN)/voice-agent chat

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/voice-agent lint-prompts

# The agent-desk test drives Debian's Chromium (Playwright's own browser download cannot work offline).
/usr/bin/chromium:
	apt-get update -qq && apt-get install -y -qq chromium

# The proxy test runs Debian's nginx with the sample site in deploy/nginx/ in front of the server.
/usr/sbin/nginx:
	apt-get update -qq && apt-get install -y -qq nginx

# Debian's espeak-ng: the stand-in Dutch voice of the tests (no Dutch Piper voice is on any registry), and the
# callers of the fairness and ASR benchmarks in several English accents and in Dutch.
/usr/bin/espeak-ng:
	apt-get update -qq && apt-get install -y -qq espeak-ng

# The QA suite of fixture calls, all at once (about 45 s of calls, after loading the models), the Dutch ones against
# a Dutch server (with the espeak-ng stand-in voice unless VOICE_AGENT_VOICE names a Dutch one); the report is
# replay-report/report.html.
replay: install /usr/bin/espeak-ng
	$(BIN)/voice-agent replay audio_fixtures/calls --parallel 8

# The whole suite, both tiers; CI runs it (.ci/run). The storage tests also run on PostgreSQL: tests/start_postgres.sh
# installs (Debian package) and starts it on 127.0.0.1 and prints the URL of a throwaway test database.
test: lint /usr/bin/chromium /usr/sbin/nginx /usr/bin/espeak-ng
	VOICE_AGENT_TEST_DATABASE_URL="$$(tests/start_postgres.sh)" $(BIN)/python -m pytest

# The inner loop: the tests not marked slow, without Chromium or PostgreSQL. `--fast` fails any of them that loads a
# model, launches a browser or reaches PostgreSQL, naming the fix (mark it slow; see tests/conftest.py); the
# slowest durations show what is creeping up.
test-fast: lint
	$(BIN)/python -m pytest --fast --durations=5

bench: install /usr/bin/espeak-ng
	$(BIN)/python benchmarks/intents.py
	$(BIN)/python benchmarks/codec_throughput.py --repeat 5
	$(BIN)/python benchmarks/asr_latency.py
	$(BIN)/python benchmarks/tts_first_audio.py
	$(BIN)/python benchmarks/redaction.py
	$(BIN)/python benchmarks/redaction.py --corpus benchmarks/data/redaction_heldout.yaml
	$(BIN)/python benchmarks/storage.py --calls 100
	$(BIN)/python benchmarks/asr.py
	$(BIN)/python benchmarks/fairness.py
	$(BIN)/python benchmarks/response_latency.py

# Many calls against one server subprocess: ~5 min for the concurrency levels, ~2 h for the full soak (real-time
# calls). A shorter soak: make bench-load SOAK_ARGS="--sequential 20 --waves 2 --wave-size 10"
SOAK_ARGS ?=
bench-load: install
	$(BIN)/python benchmarks/concurrency.py
	$(BIN)/python benchmarks/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
