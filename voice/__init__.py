"""Everything about speech and decisions. Knows nothing about Twilio or any other telephony provider."""

import os

# onnxruntime (Silero VAD, Piper) looks up a telemetry host some seconds after import; our machines have no
# internet and nothing may try to reach it. Set here, before any voice module can import it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
