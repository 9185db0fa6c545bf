// The copilot page: a WebSocket to /ws/copilot. Replies are rendered as text (textContent),
// links only when they are http(s) URLs, and a confirm reply gets Yes / No buttons.
(function () {
  "use strict";
  const log = document.getElementById("copilot-log");
  const form = document.getElementById("copilot-form");
  const input = document.getElementById("copilot-input");
  if (!log || !form) { return; }
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  const url = scheme + "//" + window.location.host + log.dataset.socket +
    "?access_token=" + encodeURIComponent(log.dataset.token);
  const socket = new WebSocket(url);

  function safeUrl(raw) {
    try {
      const parsed = new URL(raw, window.location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (error) { return null; }
  }

  function add(who, reply) {
    const item = document.createElement("div");
    item.className = "copilot-msg " + who + (reply.type === "error" ? " error" : "");
    if (reply.type) { item.dataset.type = reply.type; }
    if (reply.command) { item.dataset.command = reply.command; }
    item.textContent = reply.text;
    const links = (reply.links || []).map(function (link) {
      const href = safeUrl(link.url);
      if (!href) { return null; }
      const anchor = document.createElement("a");
      anchor.href = href;
      anchor.textContent = link.label;
      return anchor;
    }).filter(Boolean);
    if (reply.type === "confirm") {
      ["yes", "no"].forEach(function (answer) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "button small" + (answer === "no" ? " secondary" : "");
        button.textContent = answer === "yes" ? "Yes" : "No";
        button.addEventListener("click", function () { say(answer); });
        links.push(button);
      });
    }
    if (links.length) {
      const row = document.createElement("div");
      row.className = "links";
      row.append.apply(row, links);
      item.append(row);
    }
    log.append(item);
    log.scrollTop = log.scrollHeight;
  }

  function say(text) {
    if (socket.readyState !== WebSocket.OPEN) { return; }
    add("me", { text: text });
    socket.send(JSON.stringify({ text: text }));
  }

  socket.addEventListener("open", function () { log.dataset.state = "open"; });
  socket.addEventListener("message", function (event) { add("bot", JSON.parse(event.data)); });
  socket.addEventListener("close", function (event) {
    log.dataset.state = "closed";
    add("bot", { type: "error", text: "The copilot disconnected" + (event.reason ? ": " + event.reason : "") + ". Reload the page to talk again." });
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (text) { say(text); input.value = ""; }
  });
  document.querySelectorAll(".copilot-hint").forEach(function (hint) {
    hint.addEventListener("click", function () { say(hint.textContent.trim()); });
  });
})();
