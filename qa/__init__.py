"""QA tools, a client of the server and never imported by it: the replay of fixture calls through the real
Media Streams path (a Twilio emulator, expectations, reports), and the helpers the benchmarks share (caller audio,
load harness, evaluation, statistics). Installed with the ``qa`` extra: ``pip install -e '.[qa]'``."""
