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
  const text = window.deskText; // labels.js: the words in the deployment's language
  const words = (name) => (name ? name.replaceAll("_", " ") : "");
  let call = null;

  function element(tag, content, className) {
    const node = document.createElement(tag);
    if (content !== undefined && content !== null) node.textContent = content;
    if (className) node.className = className;
    return node;
  }

  function setStatus(message) {
    $("status").textContent = message;
  }

  const seconds = (value) => text("call_seconds", { seconds: value.toFixed(1) });

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
    $("call-id").textContent = text("call_id_connecting");
    $("agent-audio").textContent = seconds(0);
    if (!navigator.mediaDevices || !window.AudioWorkletNode) {
      fail(text("call_no_microphone_here"));
      return;
    }
    setStatus(text("call_asking_microphone"));
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (error) {
      fail(text("call_microphone_unavailable", { error: error.name }));
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
      fail(text("call_audio_failed", { error: error.name || error }));
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
    setStatus(text("status_connecting"));
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
    setStatus(text("call_not_in_call"));
    $("call-id").textContent = text("call_id_none");
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
    setStatus(text("call_ended_hung_up"));
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
      setStatus(text("call_ended_handed_over"));
    } else if (current.error || event.code === CLOSE_TRY_AGAIN_LATER) {
      setStatus(text("call_ended"));
      showError(current.error || text("call_agent_starting"));
    } else if (!current.live) {
      setStatus(text("call_not_in_call"));
      const response = await fetch("/api/calls", { credentials: "same-origin" }).catch(() => null);
      showError(
        response && response.status === 401
          ? text("call_session_ended")
          : text("call_not_connected"),
      );
    } else {
      setStatus(text("call_ended"));
      showError(text("call_cut_off"));
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
        setStatus(text("call_in_call"));
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
    $("agent-audio").textContent = seconds(current.agentSamples / current.outRate);
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
      const said = caller.kind === "dtmf" ? text("call_pressed", { digit: caller.digit }) : caller.text;
      const line = element("p", null, "caller-line");
      line.append(element("span", `${text("call_you")}: `, "speaker"), element("span", said, "said"));
      item.append(line);
    }
    const reply = element("p", null, "agent-line");
    reply.append(element("span", `${text("speaker_agent")}: `, "speaker"), element("span", decision.reply, "reply"));
    item.append(reply);

    const why = element("details", null, "why");
    why.open = true;
    why.append(element("summary", text("call_why")));
    const facts = element("dl");
    const field = (label, value, className) => facts.append(element("dt", label), element("dd", value, className));
    field(text("call_rule"), decision.rule, "rule");
    const unknown = caller ? text("call_intent_not_recognised") : text("call_intent_nothing_said");
    field(text("call_intent"), words(decision.intent) || unknown, "intent");
    field(text("call_confidence"), decision.confidence.toFixed(2), "confidence");
    field(text("call_action"), describeAction(decision), "action");
    const reasons = element("ul", null, "reasons");
    for (const reason of decision.reasons) reasons.append(element("li", reason));
    why.append(facts, element("h4", text("call_reasons")), reasons);
    item.append(why);

    $("turns").append(item);
    $("no-turns").hidden = true;
  }

  function describeAction(decision) {
    if (decision.action === "transfer") return text("call_action_transfer", { department: words(decision.department) });
    if (decision.action === "end") return text("call_action_end");
    return words(decision.action);
  }

  function showHandover(message) {
    const department = words(message.department);
    let announcement = text("call_ended_by_agent");
    if (message.action === "transfer") {
      announcement = message.reason
        ? text("call_transferred_because", { department, reason: message.reason })
        : text("call_transferred", { department });
    }
    const notice = $("handover");
    notice.textContent = announcement;
    notice.hidden = false;
  }

  // --- set-up -------------------------------------------------------------------------------------------------

  function makeKeypad() {
    for (const key of KEYS) {
      const button = element("button", key);
      button.type = "button";
      button.setAttribute("aria-label", text("call_key", { key }));
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
  $("call").disabled = false;
  $("hang-up").addEventListener("click", hangUp);
  // Closing the tab hangs up, so the call is not recorded as cut short.
  window.addEventListener("pagehide", () => {
    if (call && call.socket.readyState === WebSocket.OPEN) call.socket.send(JSON.stringify({ type: "hangup" }));
  });
})();
