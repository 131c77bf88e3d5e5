// The agent desk: log in with a desk account, then follow the calls and their handoffs live (Server-Sent Events).
// No framework and no build step. Every value from the server is written with textContent, never as HTML.
"use strict";

(() => {
  const MAX_ROWS = 50;
  const MAX_CARDS = 50;
  const RETRY_MS = 3000;

  const $ = (id) => document.getElementById(id);
  const calls = new Map(); // call_sid -> {summary, receivedAt}
  const cards = new Map(); // call_sid -> <article>, or null while it loads
  let source = null;
  let ticker = null;

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

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  // --- screens ------------------------------------------------------------------------------------------------

  function showLogin(message) {
    disconnect();
    if (ticker !== null) clearInterval(ticker);
    ticker = null;
    calls.clear();
    cards.clear();
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
    setStatus("Connecting…");
    source = new EventSource("/api/events");
    // The subscription exists once the stream is open: load the list then, so no change falls in between.
    source.addEventListener("open", () => {
      setStatus("Connected: calls update live.");
      refresh();
    });
    source.addEventListener("call", (event) => update(JSON.parse(event.data)));
    source.addEventListener("error", () => {
      if (source && source.readyState === EventSource.CLOSED) {
        // The server refused the stream (an expired session) or is gone: find out which.
        checkSession();
      } else {
        setStatus("Connection lost; reconnecting…");
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
      setStatus("Connection lost; reconnecting…");
      setTimeout(() => {
        if (!$("desk").hidden) {
          showDesk();
          connect();
        }
      }, RETRY_MS);
    } catch (error) {
      if (error instanceof AuthError) {
        showLogin("Your session has ended. Log in again.");
      } else {
        setStatus("The server cannot be reached; retrying…");
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
      if (error instanceof AuthError) showLogin("Your session has ended. Log in again.");
    }
  }

  function update(summary, render = true) {
    calls.set(summary.call_sid, { summary, receivedAt: performance.now() });
    if (summary.has_handoff && !cards.has(summary.call_sid)) loadCard(summary.call_sid);
    if (render) renderRows();
  }

  // --- the call table -----------------------------------------------------------------------------------------

  function currentDuration({ summary, receivedAt }) {
    const running = summary.state === "live" ? (performance.now() - receivedAt) / 1000 : 0;
    return summary.duration_s + running;
  }

  function describeOutcome(outcome) {
    if (!outcome) return "";
    if (outcome.action === "transfer") return `transferred to ${words(outcome.department)}`;
    if (outcome.action === "end") return "ended by the agent";
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
      row.append(
        element("td", summary.call_sid),
        element("td", summary.state, "state"),
        element("td", words(summary.intent) || "not known yet", "intent"),
        element("td", formatDuration(currentDuration(entry)), "num duration"),
        element("td", describeOutcome(summary.outcome), "outcome"),
      );
      return row;
    });
    $("call-rows").replaceChildren(...rows);
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
      if (error instanceof AuthError) showLogin("Your session has ended. Log in again.");
    }
  }

  function addCard(record) {
    const handoff = record.handoff;
    const headingId = `card-${record.call_sid}`;
    const card = element("article", null, "card");
    card.dataset.callSid = record.call_sid;
    card.setAttribute("aria-labelledby", headingId);
    const heading = element("h3", `Transfer to ${words(handoff.department)}`);
    heading.id = headingId;

    const details = element("dl");
    const field = (label, value, className) => details.append(element("dt", label), element("dd", value, className));
    field("Caller", handoff.caller, "caller");
    field("Department", words(handoff.department), "department");
    field("Reason", handoff.reason, "reason");
    field("Intent", words(handoff.intent) || "not recognised", "intent");

    const facts = element("ul", null, "facts");
    for (const fact of handoff.facts) facts.append(element("li", fact));
    const transcript = element("ol", null, "transcript");
    for (const line of handoff.transcript) {
      const item = element("li");
      item.append(element("span", line.speaker === "caller" ? "Caller: " : "Agent: ", "speaker"), line.text);
      transcript.append(item);
    }
    const started = new Date(record.started_at).toLocaleTimeString();
    card.append(
      heading,
      details,
      element("h4", "Facts"),
      facts,
      element("h4", "Transcript"),
      transcript,
      element("p", `Call ${record.call_sid}, started ${started}`, "meta"),
    );
    const container = $("handoffs");
    container.prepend(card); // newest first; the container is aria-live, so the card is announced
    while (container.children.length > MAX_CARDS) container.lastElementChild.remove();
    cards.set(record.call_sid, card);
    renderEmpty();
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
      showLoginError("The server cannot be reached. Try again in a moment.");
      return;
    }
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      showLoginError(body.detail || "That name and password were refused.");
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

  function showLoginError(message) {
    const error = $("login-error");
    error.textContent = message;
    error.hidden = false;
  }

  async function logOut() {
    disconnect();
    await fetch("/desk/logout", { method: "POST", credentials: "same-origin" }).catch(() => undefined);
    showLogin("You are logged out.");
  }

  async function start() {
    $("login-form").addEventListener("submit", logIn);
    $("logout").addEventListener("click", logOut);
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
