// The desk's call-back queue: who is waiting to be called back (masked), why, since when, their voicemail, and the
// two actions on it: reveal the number (recorded in the audit trail with the desk account's name) and mark it done.
// Kept apart from desk.js; it works while the desk is shown and forgets everything (numbers too) when it is hidden.
"use strict";

(() => {
  const REFRESH_MS = 10000;
  const $ = (id) => document.getElementById(id);
  const text = window.deskText; // labels.js: the words in the deployment's language
  const revealed = new Map(); // call_sid -> number, shown until the request is done or the desk is left
  let timer = null;
  let busy = false;

  const words = (name) => (name ? name.replaceAll("_", " ") : "");

  function element(tag, content, className) {
    const node = document.createElement(tag);
    if (content !== undefined && content !== null) node.textContent = content;
    if (className) node.className = className;
    return node;
  }

  function button(label, onClick) {
    const node = element("button", label);
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  }

  function showError(message) {
    const error = $("callbacks-error");
    error.textContent = message || "";
    error.hidden = !message;
  }

  async function post(path) {
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
    return body;
  }

  function about(request) {
    const topic = words(request.intent) || text("topic_none");
    const subject = request.department ? text("about_department", { topic, department: words(request.department) }) : topic;
    return request.reason ? `${subject}: ${request.reason}` : subject;
  }

  function row(request) {
    const tr = document.createElement("tr");
    tr.dataset.call = request.call_sid;
    const asked = new Date(request.requested_at);
    tr.append(element("td", asked.toLocaleString(), "asked"));
    const number = revealed.get(request.call_sid);
    tr.append(element("td", number || request.caller, number ? "caller revealed" : "caller"));
    tr.append(element("td", about(request), "about"));

    const voicemail = element("td", request.has_voicemail ? "" : text("voicemail_none"), "voicemail");
    if (request.has_voicemail) {
      voicemail.append(
        button(text("play_voicemail"), (event) => {
          const audio = document.createElement("audio");
          audio.controls = true;
          audio.preload = "auto";
          audio.src = `/api/callbacks/${encodeURIComponent(request.call_sid)}/voicemail`;
          audio.setAttribute("aria-label", text("voicemail_of", { caller: request.caller }));
          event.currentTarget.replaceWith(audio);
          audio.play().catch(() => undefined); // a browser may refuse to autoplay; the controls stay
        }),
      );
    }
    tr.append(voicemail);

    const actions = element("td", null, "actions");
    if (request.has_number && !number) {
      actions.append(
        button(text("reveal_number", { caller: request.caller }), async () => {
          try {
            const body = await post(`/api/callbacks/${encodeURIComponent(request.call_sid)}/reveal`);
            revealed.set(request.call_sid, body.number);
            showError("");
            await refresh();
          } catch (error) {
            showError(text("reveal_failed", { error: error.message }));
          }
        }),
      );
    }
    actions.append(
      button(text("callback_done", { caller: request.caller }), async () => {
        try {
          await post(`/api/callbacks/${encodeURIComponent(request.call_sid)}/done`);
          revealed.delete(request.call_sid);
          showError("");
          await refresh();
        } catch (error) {
          showError(text("done_failed", { error: error.message }));
        }
      }),
    );
    tr.append(actions);
    return tr;
  }

  async function refresh() {
    if (busy || $("desk").hidden) return;
    busy = true;
    try {
      const response = await fetch("/api/callbacks", {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) return; // logged out or not ready: desk.js shows the login
      const requests = await response.json();
      // A row being played stays as it is, so a refresh never cuts a voicemail off.
      const playing = new Map(
        [...$("callback-rows").querySelectorAll("tr")]
          .filter((tr) => tr.querySelector("audio"))
          .map((tr) => [tr.dataset.call, tr]),
      );
      const rows = requests.map((request) => playing.get(request.call_sid) || row(request));
      $("callback-rows").replaceChildren(...rows);
      $("no-callbacks").hidden = requests.length > 0;
      $("callback-table").hidden = requests.length === 0;
    } finally {
      busy = false;
    }
  }

  function clear() {
    revealed.clear();
    $("callback-rows").replaceChildren();
    showError("");
  }

  function start() {
    // desk.js shows and hides the desk (login, logout): follow it.
    new MutationObserver(() => {
      if ($("desk").hidden) {
        clear();
      } else {
        refresh().catch(() => undefined);
      }
    }).observe($("desk"), { attributes: true, attributeFilter: ["hidden"] });
    timer = setInterval(() => refresh().catch(() => undefined), REFRESH_MS);
    refresh().catch(() => undefined);
  }

  start();
  window.addEventListener("pagehide", () => clearInterval(timer));
})();
