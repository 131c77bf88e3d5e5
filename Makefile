# Two commands do all set-up on a fresh machine (see README):
#   make run    install, then start the server on the embedded defaults (bundled models, sample catalogue); a
#               development server: unsigned Twilio requests are allowed unless TWILIO_AUTH_TOKEN is set
#   make test   install, then lint and run the whole test suite (what CI runs)
#   make test-fast  install, then lint and run the fast tier only: no model, browser or database server (~1 min)
#   make replay install, then replay the QA suite of fixture calls with a report
#   make lock   regenerate requirements.lock after a dependency change; make audit checks it for advisories
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export ORT_DISABLE_TELEMETRY := 1

HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: install lock audit run chat replay test test-fast lint bench bench-load clean

# Every dependency of `.[piper,dev]` (qa comes with dev) at the version and with the SHA-256 digests of
# requirements.lock, then the project itself without dependencies; only pip itself and the build tools pip fetches
# to build a source package are not pinned (docs/dependencies.md).
LOCK := requirements.lock

$(BIN)/voice-agent: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

install: $(BIN)/voice-agent

# Regenerate the lock after a change to pyproject.toml's dependencies: versions already locked are kept where they
# still fit. Everything to the newest allowed: make lock LOCK_ARGS=--upgrade. --universal: one lock for every Python
# version that pyproject.toml allows and every platform, with markers where they differ (CI's Python 3.11 on Linux
# x86_64 among them), whatever machine makes it.
LOCK_ARGS ?=
lock: install
	$(BIN)/uv pip compile pyproject.toml --extra piper --extra dev --generate-hashes --universal \
		--custom-compile-command 'make lock' --quiet $(LOCK_ARGS) -o $(LOCK)

# Known advisories of every locked version (PyPI's advisory data; needs the network, so never part of `make test`).
# --strict: a package that could not be looked up fails the audit instead of passing unchecked.
# Where PyPI's JSON API per version is out of reach: make audit AUDIT_ARGS='--vulnerability-service osv'.
PIP_AUDIT ?= pip-audit==2.10.1
AUDIT_ARGS ?=
audit: install
	$(BIN)/uv tool run --from '$(PIP_AUDIT)' pip-audit --requirement $(LOCK) --require-hashes --disable-pip --strict \
		$(AUDIT_ARGS)

# A development server: without TWILIO_AUTH_TOKEN it accepts unsigned Twilio requests (and says so loudly). Set the
# token (environment or .env) and it checks every webhook and media stream, as a deployment must.
run: install
	@[ -n "$$TWILIO_AUTH_TOKEN$$VOICE_AGENT_TWILIO_AUTH_TOKEN" ] || grep -qs '^TWILIO_AUTH_TOKEN=.' .env || \
		echo "make run: no TWILIO_AUTH_TOKEN: unsigned Twilio requests allowed (development only)"
	VOICE_AGENT_ALLOW_UNSIGNED_WEBHOOKS=$${VOICE_AGENT_ALLOW_UNSIGNED_WEBHOOKS:-true} \
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
