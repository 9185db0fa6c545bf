// Live inbox: listen to the mailbox's SSE stream and swap in fresh rows from the server.
(function () {
  "use strict";
  const params = new URLSearchParams(window.location.search);
  const token = params.get("access_token");
  if (!token || !window.EventSource) return;
  const query = new URLSearchParams({ access_token: token });
  if (params.get("user")) query.set("user", params.get("user"));
  const source = new EventSource("/api/events?" + query.toString());
  async function refreshRow(id) {
    const response = await fetch("/api/messages/" + encodeURIComponent(id) + "/row?" + query.toString());
    if (!response.ok) return;
    const html = await response.text();
    const current = document.getElementById("message-" + id);
    if (current) current.outerHTML = html;
    const unread = document.querySelectorAll("#message-list .row-unread").length;
    const counter = document.getElementById("unread-count");
    if (counter) counter.textContent = String(unread);
  }
  source.addEventListener("message.updated", function (event) {
    const data = JSON.parse(event.data);
    if (data.id !== undefined) refreshRow(data.id);
  });
  source.addEventListener("message.created", function () { window.location.reload(); });
})();
