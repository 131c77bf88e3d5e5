// The agent desk: log in with a desk account, then follow the calls and their handoffs live (Server-Sent Events);
// open a call to read its conversation, the decisions with their reasons and the transfer's steps.
// No framework and no build step. Every value from the server is written with textContent, never as HTML.
"use strict";

(() => {
  const MAX_ROWS = 50;
  const MAX_CARDS = 50;
  const RETRY_MS = 3000;

  const $ = (id) => document.getElementById(id);
  const text = window.deskText; // labels.js: the words in the deployment's language
  const calls = new Map(); // call_sid -> {summary, receivedAt}
  const cards = new Map(); // call_sid -> <article>, or null while it loads
  let source = null;
  let ticker = null;
  let openCallSid = null; // the call in the call view, refreshed when it changes

  class AuthError extends Error {}

  function setStatus(text) {
    $("status").textContent = text;
  }

  async function getJson(path) {
    const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.status === 401) throw new AuthError("not logged in");
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  const words = (name) => (name ? name.replaceAll("_", " ") : "");

  function formatDuration(seconds) {
    const total = Math.max(0, Math.round(seconds));
    const minutes = Math.floor(total / 60);
    return `${minutes}:${String(total % 60).padStart(2, "0")}`;
  }

  function element(tag, content, className) {
    const node = document.createElement(tag);
    if (content !== undefined && content !== null) node.textContent = content;
    if (className) node.className = className;
    return node;
  }

  const speaker = (label) => element("span", `${label}: `, "speaker");

  // --- screens ------------------------------------------------------------------------------------------------

  function showLogin(message) {
    disconnect();
    if (ticker !== null) clearInterval(ticker);
    ticker = null;
    calls.clear();
    cards.clear();
    closeCallView();
    $("call-rows").replaceChildren();
    $("handoffs").replaceChildren();
    $("desk").hidden = true;
    $("logout").hidden = true;
    $("call-link").hidden = true;
    $("login").hidden = false;
    setStatus("");
    const error = $("login-error");
    error.textContent = message || "";
    error.hidden = !message;
    $("name").focus();
  }

  function showDesk() {
    $("login").hidden = true;
    $("login-error").hidden = true;
    $("desk").hidden = false;
    $("logout").hidden = false;
    $("call-link").hidden = false;
    renderRows();
    renderEmpty();
    if (ticker === null) ticker = setInterval(renderDurations, 1000);
  }

  // --- the live stream ----------------------------------------------------------------------------------------

  function connect() {
    disconnect();
    setStatus(text("status_connecting"));
    source = new EventSource("/api/events");
    // The subscription exists once the stream is open: load the list then, so no change falls in between.
    source.addEventListener("open", () => {
      setStatus(text("status_connected"));
      refresh();
    });
    source.addEventListener("call", (event) => update(JSON.parse(event.data)));
    source.addEventListener("error", () => {
      if (source && source.readyState === EventSource.CLOSED) {
        // The server refused the stream (an expired session) or is gone: find out which.
        checkSession();
      } else {
        setStatus(text("status_reconnecting"));
      }
    });
  }

  function disconnect() {
    if (source !== null) source.close();
    source = null;
  }

  async function checkSession() {
    disconnect();
    try {
      await getJson("/api/calls");
      setStatus(text("status_reconnecting"));
      setTimeout(() => {
        if (!$("desk").hidden) {
          showDesk();
          connect();
        }
      }, RETRY_MS);
    } catch (error) {
      if (error instanceof AuthError) {
        showLogin(text("session_ended"));
      } else {
        setStatus(text("status_unreachable"));
        setTimeout(checkSession, RETRY_MS);
      }
    }
  }

  async function refresh() {
    try {
      const list = await getJson("/api/calls");
      calls.clear();
      for (const summary of list) update(summary, false);
      renderRows();
    } catch (error) {
      if (error instanceof AuthError) showLogin(text("session_ended"));
    }
  }

  function update(summary, render = true) {
    calls.set(summary.call_sid, { summary, receivedAt: performance.now() });
    if (summary.has_handoff && !cards.has(summary.call_sid)) loadCard(summary.call_sid);
    const card = cards.get(summary.call_sid);
    if (card) showTransferState(card, summary.transfer_state);
    if (summary.call_sid === openCallSid) loadCallView(summary.call_sid);
    if (render) renderRows();
  }

  // --- the call table -----------------------------------------------------------------------------------------

  function currentDuration({ summary, receivedAt }) {
    const running = summary.state === "live" ? (performance.now() - receivedAt) / 1000 : 0;
    return summary.duration_s + running;
  }

  function describeOutcome(outcome) {
    if (!outcome) return "";
    if (outcome.action === "transfer") return text("outcome_transferred", { department: words(outcome.department) });
    if (outcome.action === "end") return text("outcome_ended");
    return words(outcome.action);
  }

  function renderRows() {
    const entries = [...calls.values()].sort((a, b) => {
      const live = (b.summary.state === "live") - (a.summary.state === "live");
      return live || b.summary.started_at.localeCompare(a.summary.started_at);
    });
    const rows = entries.slice(0, MAX_ROWS).map((entry) => {
      const { summary } = entry;
      const row = element("tr", null, summary.state);
      row.dataset.callSid = summary.call_sid;
      const open = element("button", summary.call_sid, "open-call");
      open.type = "button";
      open.setAttribute("aria-label", text("open_call", { call: summary.call_sid }));
      open.addEventListener("click", () => openCallView(summary.call_sid));
      const first = element("td");
      first.append(open);
      row.append(
        first,
        element("td", describeCallState(summary.state), "state"),
        element("td", words(summary.intent) || text("intent_unknown"), "intent"),
        element("td", formatDuration(currentDuration(entry)), "num duration"),
        element("td", describeOutcome(summary.outcome), "outcome"),
      );
      return row;
    });
    // The rows are rebuilt on every change: a keyboard user's focus on a row's button must survive that.
    const focused = document.activeElement;
    const focusedSid = focused && focused.closest("#call-rows") ? focused.closest("tr").dataset.callSid : null;
    $("call-rows").replaceChildren(...rows);
    if (focusedSid) {
      const again = rows.find((row) => row.dataset.callSid === focusedSid);
      if (again) again.querySelector(".open-call").focus();
    }
    renderEmpty();
  }

  function renderDurations() {
    for (const row of $("call-rows").children) {
      const entry = calls.get(row.dataset.callSid);
      if (entry && entry.summary.state === "live") {
        row.querySelector(".duration").textContent = formatDuration(currentDuration(entry));
      }
    }
  }

  function renderEmpty() {
    $("no-calls").hidden = calls.size > 0;
    $("calls").hidden = calls.size === 0;
    $("no-handoffs").hidden = $("handoffs").children.length > 0;
  }

  // --- handoff cards ------------------------------------------------------------------------------------------

  async function loadCard(callSid) {
    cards.set(callSid, null);
    try {
      const record = await getJson(`/api/calls/${encodeURIComponent(callSid)}`);
      if (record.handoff) {
        addCard(record);
      } else {
        cards.delete(callSid);
      }
    } catch (error) {
      cards.delete(callSid); // tried again on the call's next change
      if (error instanceof AuthError) showLogin(text("session_ended"));
    }
  }

  // A state the labels do not name yet (a newer server) is still shown, in its own words.
  function labelOr(name, fallback) {
    try {
      return text(name);
    } catch {
      return fallback;
    }
  }

  // Each transfer state's label is transfer_<state> (telephony/transfer_timeline.py: TransferState).
  function describeTransferState(state) {
    return labelOr(`transfer_${state || "pending"}`, words(state));
  }

  function describeCallState(state) {
    return labelOr(`state_${state}`, words(state));
  }

  function showTransferState(card, state) {
    const node = card.querySelector(".transfer-state");
    node.dataset.state = state || "pending";
    node.textContent = describeTransferState(state);
  }

  // The card's headline is the handoff's summary: the same two sentences the person hears in the whisper.
  function addCard(record) {
    const handoff = record.handoff;
    const headingId = `card-${record.call_sid}`;
    const card = element("article", null, "card");
    card.id = `handoff-${record.call_sid}`;
    card.dataset.callSid = record.call_sid;
    card.dataset.startedAt = record.started_at;
    card.dataset.reason = handoff.kind || "";
    card.setAttribute("aria-labelledby", headingId);
    const heading = element("h3", text("card_heading", { department: words(handoff.department) }));
    heading.id = headingId;
    const summary = element("p", handoff.summary, "handoff-summary");

    const details = element("dl");
    const field = (label, value, className) => details.append(element("dt", label), element("dd", value, className));
    field(text("field_transfer"), "", "transfer-state");
    const topics = handoff.topics && handoff.topics.length ? handoff.topics.join(", ") : text("topics_none");
    field(text("field_topics"), topics, "topics");
    const answered = handoff.answered && handoff.answered.length ? handoff.answered.join(", ") : text("answered_none");
    field(text("field_answered"), answered, "answered");
    field(text("field_reason"), handoff.reason_text || handoff.reason, "reason");
    field(text("field_department"), words(handoff.department), "department");
    field(text("field_caller"), handoff.caller, "caller");

    const facts = element("ul", null, "facts");
    for (const fact of handoff.facts) facts.append(element("li", fact));
    const transcript = element("ol", null, "transcript");
    for (const line of handoff.transcript) {
      const item = element("li");
      item.append(speaker(line.speaker === "caller" ? text("speaker_caller") : text("speaker_agent")), line.text);
      transcript.append(item);
    }
    const open = element("button", text("open_the_call"), "open-call");
    open.type = "button";
    open.addEventListener("click", () => openCallView(record.call_sid));
    const started = new Date(record.started_at).toLocaleTimeString();
    card.append(
      heading,
      summary,
      details,
      element("h4", text("facts_heading")),
      facts,
      element("h4", text("transcript_heading")),
      transcript,
      element("p", text("card_meta", { call: record.call_sid, time: started }), "meta"),
      open,
    );
    showTransferState(card, latestTransferState(record));
    placeCard(card);
    cards.set(record.call_sid, card);
    renderEmpty();
  }

  function latestTransferState(record) {
    const known = calls.get(record.call_sid);
    return (known && known.summary.transfer_state) || record.transfer_state;
  }

  // Newest first, whatever order the cards finish loading in.
  function placeCard(card) {
    const container = $("handoffs");
    const later = [...container.children].find((other) => other.dataset.startedAt < card.dataset.startedAt);
    container.insertBefore(card, later || null); // the container is aria-live, so the card is announced
    while (container.children.length > MAX_CARDS) {
      cards.delete(container.lastElementChild.dataset.callSid);
      container.lastElementChild.remove();
    }
  }

  // --- the call view ------------------------------------------------------------------------------------------

  function openCallView(callSid) {
    openCallSid = callSid;
    $("call-view").hidden = false;
    $("call-view-heading").textContent = text("call_view_heading_of", { call: callSid });
    $("call-view").dataset.callSid = callSid;
    loadCallView(callSid).then(() => $("call-view-heading").focus());
  }

  function closeCallView() {
    openCallSid = null;
    $("call-view").hidden = true;
    delete $("call-view").dataset.callSid;
  }

  async function loadCallView(callSid) {
    const error = $("call-view-error");
    try {
      const record = await getJson(`/api/calls/${encodeURIComponent(callSid)}`);
      if (callSid !== openCallSid) return; // another call was opened meanwhile
      error.hidden = true;
      renderCallView(record);
    } catch (failure) {
      if (failure instanceof AuthError) {
        showLogin(text("session_ended"));
        return;
      }
      error.textContent = text("call_view_error", { error: failure.message });
      error.hidden = false;
    }
  }

  function renderCallView(record) {
    const facts = $("call-view-facts");
    facts.replaceChildren();
    const field = (label, value, className) => facts.append(element("dt", label), element("dd", value, className));
    field(text("field_state"), describeCallState(record.state), "state");
    field(text("field_started"), new Date(record.started_at).toLocaleString(), "started");
    field(text("field_duration"), formatDuration(record.duration_s), "duration");
    field(text("field_caller"), record.caller, "caller");
    field(text("field_outcome"), describeOutcome(record.outcome) || text("outcome_none"), "outcome");
    if (record.handoff) field(text("field_handoff"), record.handoff.summary, "handoff-summary");
    if (record.failure) field(text("field_failure"), record.failure, "failure");

    const turns = record.turns.map((turn) => {
      const item = element("li", null, "turn");
      item.dataset.rule = turn.decision.rule;
      if (turn.caller) {
        const said = turn.caller.kind === "dtmf" ? text("pressed_key", { digit: turn.caller.digit }) : turn.caller.text;
        item.append(element("p", null, "caller-line"));
        item.lastChild.append(speaker(text("speaker_caller")), said);
      }
      item.append(element("p", null, "agent-line"));
      item.lastChild.append(speaker(text("speaker_agent")), turn.decision.reply);
      const why = element("details", null, "decision");
      const { rule, intent, action } = turn.decision;
      const decision = intent
        ? text("decision_with_intent", { rule: words(rule), intent: words(intent), action })
        : text("decision", { rule: words(rule), action });
      why.append(element("summary", decision));
      const reasons = element("ul", null, "reasons");
      for (const reason of turn.decision.reasons) reasons.append(element("li", reason));
      why.append(reasons);
      item.append(why);
      return item;
    });
    $("call-view-turns").replaceChildren(...turns);

    const steps = record.transfer_timeline.map((step) => {
      const item = element("li", null, "step");
      item.dataset.state = step.state;
      const detail = step.detail ? ` (${step.detail})` : "";
      item.append(element("time", new Date(step.at).toLocaleTimeString()), ` ${describeTransferState(step.state)}${detail}`);
      item.querySelector("time").dateTime = step.at;
      return item;
    });
    $("call-view-timeline").replaceChildren(...steps);
    $("call-view-no-transfer").hidden = steps.length > 0;
  }

  // --- log in and out -----------------------------------------------------------------------------------------

  async function logIn(event) {
    event.preventDefault();
    const input = $("password");
    const error = $("login-error");
    error.hidden = true;
    let response;
    try {
      response = await fetch("/desk/login", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ name: $("name").value, password: input.value }),
      });
    } catch {
      showLoginError(text("login_unreachable"));
      return;
    }
    if (!response.ok) {
      showLoginError(await loginRefusal(response));
      input.select();
      return;
    }
    input.value = "";
    // Sent here from the call page without a session: back to it (the only place `next` may name).
    if (new URLSearchParams(location.search).get("next") === "call") {
      location.assign("/desk/call");
      return;
    }
    showDesk();
    $("calls-heading").focus();
    connect();
  }

  // The server's own message is English; the page says the same in the deployment's language.
  async function loginRefusal(response) {
    if (response.status === 401) return text("login_refused");
    if (response.status === 429) {
      const minutes = Math.max(1, Math.ceil(Number(response.headers.get("Retry-After") || 60) / 60));
      return minutes === 1 ? text("login_throttled_one") : text("login_throttled", { minutes });
    }
    const body = await response.json().catch(() => ({}));
    return body.detail || text("login_refused");
  }

  function showLoginError(message) {
    const error = $("login-error");
    error.textContent = message;
    error.hidden = false;
  }

  async function logOut() {
    disconnect();
    await fetch("/desk/logout", { method: "POST", credentials: "same-origin" }).catch(() => undefined);
    showLogin(text("logged_out"));
  }

  async function start() {
    $("login-form").addEventListener("submit", logIn);
    $("logout").addEventListener("click", logOut);
    $("call-view-close").addEventListener("click", closeCallView);
    try {
      await getJson("/api/calls"); // already logged in (the session cookie is still valid)
      showDesk();
      connect();
    } catch {
      showLogin();
    }
  }

  start();
})();
