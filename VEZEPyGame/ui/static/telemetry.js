// Client telemetry for the game pages: events are queued here and sent in batches to
// POST /telemetry/bulk (every 10 s, at 50 events, and with `keepalive` when the page is hidden),
// authenticated by the page's session cookie and its CSRF token. Losing a batch is acceptable;
// disturbing the player is not, so every failure is silent.
(function () {
  "use strict";
  var MAX_BATCH = 50;
  var FLUSH_MS = 10000;
  var queue = [];

  function csrfToken() {
    var field = document.querySelector('input[name="csrf_token"]');
    return field ? field.value : "";
  }

  function flush(keepalive) {
    if (!queue.length) return;
    var events = queue.splice(0, MAX_BATCH);
    fetch("/telemetry/bulk", {
      method: "POST",
      credentials: "same-origin",
      keepalive: Boolean(keepalive),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify({ events: events }),
    }).catch(function () {});
  }

  function record(event) {
    event.ts = new Date().toISOString();
    queue.push(event);
    if (queue.length >= MAX_BATCH) flush(false);
  }

  window.vezeTelemetry = { record: record, flush: flush };
  record({ type: "page_view", path: window.location.pathname.slice(0, 200) });
  window.addEventListener("error", function (event) {
    record({ type: "client_error", message: String(event.message || "script error").slice(0, 500) });
  });
  // Forms that say what they mean for fair play (data-telemetry="queue_leave", ...): recorded
  // and sent at once, with keepalive, since the page is about to be left.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var type = form && form.dataset ? form.dataset.telemetry : "";
    if (!type) return;
    var entry = { type: type };
    var mode = form.dataset.telemetryMode || (form.elements.mode && form.elements.mode.value);
    if (mode) entry.mode = mode;
    if (form.dataset.telemetryMatch) entry.match_id = form.dataset.telemetryMatch;
    record(entry);
    flush(true);
  });
  window.setInterval(function () { flush(false); }, FLUSH_MS);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") flush(true);
  });
})();
