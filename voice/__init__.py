"""Everything about speech and decisions. Knows no telephony provider or transport: audio comes in and goes out as
PCM at rates the transport declares, and the transport converts its wire format at its own edge."""

import os

# onnxruntime (Silero VAD, Piper) looks up a telemetry host some seconds after import; our machines have no
# internet and nothing may try to reach it. Set here, before any voice module can import it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
