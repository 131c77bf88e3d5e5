// The microphone's capture for a browser call: an AudioWorklet processor that turns the first input channel into
// 16-bit little-endian PCM and posts it to the page in frames of `frameSamples` (20 ms at the context's rate).
"use strict";

class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.frame = new Int16Array(options.processorOptions.frameSamples);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true; // no input yet (or it ended): keep the node alive
    for (let i = 0; i < channel.length; i++) {
      // The server's scale (32768 both ways), clipped: an Int16Array would wrap an overshoot around.
      this.frame[this.filled++] = Math.max(-32768, Math.min(32767, Math.round(channel[i] * 32768)));
      if (this.filled === this.frame.length) {
        // Int16Array is in the platform's byte order, little-endian on every platform browsers run on.
        const out = this.frame.slice();
        this.port.postMessage(out.buffer, [out.buffer]);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
