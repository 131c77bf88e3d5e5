// A call to the agent from the browser: the microphone streams to WS /browser/call, the agent's voice plays back, and
// each decision shows with its reasons. The protocol is documented in telephony/browser/protocol.py.
// No framework and no build step. Every value from the server is written with textContent, never as HTML.
"use strict";

(() => {
  const CAPTURE_RATE_HZ = 16000; // the recogniser's rate: asked of the AudioContext, so nothing is resampled later
  const FRAME_MS = 20;
  const START_AHEAD_S = 0.05; // scheduling slack for the first chunk after a pause
  const MARK_CHECK_MS = 20;
  const CLOSE_TRY_AGAIN_LATER = 1013;
  const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];

  const $ = (id) => document.getElementById(id);
  const words = (name) => (name ? name.replaceAll("_", " ") : "");
  let call = null;

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function setStatus(text) {
    $("status").textContent = text;
  }

  function showError(message) {
    const error = $("error");
    error.textContent = message;
    error.hidden = !message;
  }

  // --- starting and ending ------------------------------------------------------------------------------------

  async function startCall() {
    $("call").disabled = true;
    showError("");
    $("handover").hidden = true;
    $("turns").replaceChildren();
    $("no-turns").hidden = false;
    $("call-id").textContent = "connecting…";
    $("agent-audio").textContent = "0.0 s";
    if (!navigator.mediaDevices || !window.AudioWorkletNode) {
      fail("This browser cannot capture the microphone here: it allows that only on https:// pages and on localhost.");
      return;
    }
    setStatus("Asking for the microphone…");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (error) {
      fail(`The microphone is not available (${error.name}). Allow it for this page, then call again.`);
      return;
    }
    let context;
    try {
      context = new AudioContext({ sampleRate: CAPTURE_RATE_HZ });
    } catch {
      context = new AudioContext(); // the server takes the device's own rate too: the start message says which
    }
    try {
      await context.resume();
      await context.audioWorklet.addModule("/desk/call-worklet.js");
    } catch (error) {
      stream.getTracks().forEach((track) => track.stop());
      context.close();
      fail(`The browser could not set up the audio (${error.name || error}).`);
      return;
    }
    const source = context.createMediaStreamSource(stream);
    const capture = new AudioWorkletNode(context, "pcm-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      processorOptions: { frameSamples: Math.round((context.sampleRate * FRAME_MS) / 1000) },
    });
    source.connect(capture);

    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/browser/call`);
    socket.binaryType = "arraybuffer";
    const current = {
      socket,
      context,
      stream,
      source,
      capture,
      live: false,
      outRate: CAPTURE_RATE_HZ,
      nextTime: 0,
      sources: new Set(),
      marks: [],
      agentSamples: 0,
      handover: null,
      hungUp: false,
      error: null,
      timer: setInterval(() => checkMarks(current), MARK_CHECK_MS),
    };
    call = current;
    setStatus("Connecting…");
    socket.addEventListener("open", () => {
      socket.send(JSON.stringify({ type: "start", sample_rate: context.sampleRate, encoding: "pcm_s16le" }));
    });
    socket.addEventListener("message", (event) => receive(current, event.data));
    socket.addEventListener("close", (event) => closed(current, event));
    capture.port.onmessage = (event) => {
      if (current.live && !current.handover && socket.readyState === WebSocket.OPEN) socket.send(event.data);
    };
    $("hang-up").disabled = false;
  }

  function fail(message) {
    showError(message);
    setStatus("Not in a call.");
    $("call-id").textContent = "none";
    $("call").disabled = false;
  }

  function hangUp() {
    const current = call;
    if (!current) return;
    current.hungUp = true;
    if (current.socket.readyState === WebSocket.OPEN) {
      current.socket.send(JSON.stringify({ type: "hangup" }));
      current.socket.close(1000);
    }
    release(current);
    setStatus("Call ended: you hung up.");
  }

  // Stop the microphone and the audio; the call's socket is closed or closing.
  function release(current) {
    clearInterval(current.timer);
    current.capture.port.onmessage = null;
    current.source.disconnect();
    current.stream.getTracks().forEach((track) => track.stop());
    if (current.context.state !== "closed") current.context.close();
    $("keypad").hidden = true;
    $("hang-up").disabled = true;
    $("call").disabled = false;
    if (call === current) call = null;
  }

  async function closed(current, event) {
    if (current.hungUp) return;
    release(current);
    if (current.handover) {
      setStatus("Call ended: handed over.");
    } else if (current.error || event.code === CLOSE_TRY_AGAIN_LATER) {
      setStatus("Call ended.");
      showError(current.error || "The agent is still starting. Try again in a minute.");
    } else if (!current.live) {
      setStatus("Not in a call.");
      const response = await fetch("/api/calls", { credentials: "same-origin" }).catch(() => null);
      showError(
        response && response.status === 401
          ? "Your desk session has ended. Log in again at the desk, then come back to call."
          : "The call could not be connected. Try again in a moment.",
      );
    } else {
      setStatus("Call ended.");
      showError("The call was cut off: the connection to the server was lost.");
    }
  }

  // --- messages from the server -------------------------------------------------------------------------------

  function receive(current, data) {
    if (typeof data !== "string") {
      play(current, data);
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    switch (message.type) {
      case "ready":
        current.live = true;
        current.outRate = message.sample_rate;
        $("call-id").textContent = message.call_id;
        $("keypad").hidden = false;
        setStatus("In a call: speak as you would on the phone; you may interrupt the agent.");
        break;
      case "mark":
        current.marks.push({ name: message.name, at: current.nextTime });
        checkMarks(current);
        break;
      case "clear":
        clearPlayback(current);
        break;
      case "decision":
        addTurn(message);
        break;
      case "handover":
        current.handover = message;
        showHandover(message);
        break;
      case "error":
        current.error = message.detail;
        break;
    }
  }

  // --- the agent's voice --------------------------------------------------------------------------------------

  function play(current, data) {
    const samples = new Int16Array(data);
    if (samples.length === 0 || current.context.state === "closed") return;
    const context = current.context;
    const buffer = context.createBuffer(1, samples.length, current.outRate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i++) channel[i] = samples[i] / 32768;
    const node = context.createBufferSource();
    node.buffer = buffer;
    node.connect(context.destination);
    const at = Math.max(current.nextTime, context.currentTime + START_AHEAD_S);
    node.start(at);
    current.nextTime = at + buffer.duration;
    current.sources.add(node);
    node.addEventListener("ended", () => current.sources.delete(node));
    current.agentSamples += samples.length;
    $("agent-audio").textContent = `${(current.agentSamples / current.outRate).toFixed(1)} s`;
  }

  function sendMark(current, name) {
    if (current.socket.readyState === WebSocket.OPEN) current.socket.send(JSON.stringify({ type: "mark", name }));
  }

  // Report each mark once playback has reached it: the agent then knows its reply was heard.
  function checkMarks(current) {
    const now = current.context.currentTime;
    while (current.marks.length > 0 && current.marks[0].at <= now) sendMark(current, current.marks.shift().name);
  }

  // Barge-in: stop talking at once, drop what is queued, and report the pending marks.
  function clearPlayback(current) {
    for (const node of current.sources) {
      try {
        node.stop();
      } catch {
        // not started yet in some browsers: dropping it is enough
      }
    }
    current.sources.clear();
    current.nextTime = 0;
    for (const mark of current.marks.splice(0)) sendMark(current, mark.name);
  }

  // --- the conversation ---------------------------------------------------------------------------------------

  function addTurn(message) {
    const { caller, decision } = message;
    const item = element("li", null, "turn");
    item.dataset.rule = decision.rule;
    if (caller) {
      const said = caller.kind === "dtmf" ? `(pressed ${caller.digit})` : caller.text;
      const line = element("p", null, "caller-line");
      line.append(element("span", "You: ", "speaker"), element("span", said, "said"));
      item.append(line);
    }
    const reply = element("p", null, "agent-line");
    reply.append(element("span", "Agent: ", "speaker"), element("span", decision.reply, "reply"));
    item.append(reply);

    const why = element("details", null, "why");
    why.open = true;
    why.append(element("summary", "Why the agent answered this way"));
    const facts = element("dl");
    const field = (label, value, className) => facts.append(element("dt", label), element("dd", value, className));
    field("Rule", decision.rule, "rule");
    field("Intent", words(decision.intent) || (caller ? "not recognised" : "none (nothing said yet)"), "intent");
    field("Confidence", decision.confidence.toFixed(2), "confidence");
    field("Action", describeAction(decision), "action");
    const reasons = element("ul", null, "reasons");
    for (const reason of decision.reasons) reasons.append(element("li", reason));
    why.append(facts, element("h4", "Reasons"), reasons);
    item.append(why);

    $("turns").append(item);
    $("no-turns").hidden = true;
  }

  function describeAction(decision) {
    if (decision.action === "transfer") return `transfer to ${words(decision.department)}`;
    if (decision.action === "end") return "end the call";
    return words(decision.action);
  }

  function showHandover(message) {
    const text =
      message.action === "transfer"
        ? `In a real call you would now be transferred to ${words(message.department)}` +
          (message.reason ? ` (${message.reason}).` : ".")
        : "The agent ended the call; a phone call would now hang up.";
    const notice = $("handover");
    notice.textContent = text;
    notice.hidden = false;
  }

  // --- set-up -------------------------------------------------------------------------------------------------

  function makeKeypad() {
    for (const key of KEYS) {
      const button = element("button", key);
      button.type = "button";
      button.setAttribute("aria-label", `Key ${key}`);
      button.addEventListener("click", () => {
        if (call && call.live && call.socket.readyState === WebSocket.OPEN) {
          call.socket.send(JSON.stringify({ type: "dtmf", digit: key }));
        }
      });
      $("keypad").append(button);
    }
  }

  makeKeypad();
  $("call").addEventListener("click", startCall);
  $("hang-up").addEventListener("click", hangUp);
  // Closing the tab hangs up, so the call is not recorded as cut short.
  window.addEventListener("pagehide", () => {
    if (call && call.socket.readyState === WebSocket.OPEN) call.socket.send(JSON.stringify({ type: "hangup" }));
  });
})();
