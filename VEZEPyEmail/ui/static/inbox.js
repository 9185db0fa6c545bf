// Live inbox: listen to the mailbox's SSE stream and swap in fresh rows from the server.
// Requests are same-origin and carry the webmail's HttpOnly session cookie: no token in URLs.
(function () {
  "use strict";
  if (!window.EventSource) return;
  const params = new URLSearchParams(window.location.search);
  const query = new URLSearchParams();
  if (params.get("user")) query.set("user", params.get("user"));
  const suffix = query.toString() ? "?" + query.toString() : "";
  const source = new EventSource("/api/events" + suffix);

  // The session ended (signed out elsewhere, refresh refused): reloading the page sends the
  // person to sign in. At most once a minute, so a broken stream cannot loop the page.
  function reloadForSignIn() {
    const key = "veze-inbox-reloaded-at";
    const last = Number(window.sessionStorage.getItem(key) || "0");
    if (Date.now() - last < 60000) return;
    window.sessionStorage.setItem(key, String(Date.now()));
    window.location.reload();
  }

  async function refreshRow(id) {
    const response = await fetch("/api/messages/" + encodeURIComponent(id) + "/row", {
      credentials: "same-origin",
    });
    if (response.status === 401) { reloadForSignIn(); return; }
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
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) reloadForSignIn();
  });
})();
