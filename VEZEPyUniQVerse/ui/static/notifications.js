// The header bell: the portal's live notifications (GET /notifications/stream, SSE).
// Everything is inserted with textContent; links only when they are http(s) URLs.
(function () {
  "use strict";
  const bell = document.getElementById("bell");
  if (!bell || !window.EventSource) { return; }
  const list = document.getElementById("bell-list");
  const count = document.getElementById("bell-count");
  const button = bell.querySelector(".bell-button");
  const MAX_ITEMS = 20;
  let unseen = 0;

  function safeUrl(raw) {
    try {
      const url = new URL(raw, window.location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (error) { return null; }
  }

  function show(notification) {
    const empty = list.querySelector(".bell-empty");
    if (empty) { empty.remove(); }
    const item = document.createElement("li");
    item.className = "bell-item";
    item.dataset.kind = notification.kind;
    const title = document.createElement("strong");
    title.textContent = notification.title;
    const text = document.createElement("span");
    text.textContent = notification.text;
    const href = notification.link ? safeUrl(notification.link) : null;
    const holder = href ? document.createElement("a") : document.createElement("div");
    if (href) { holder.href = href; }
    holder.append(title, document.createElement("br"), text);
    item.append(holder);
    list.prepend(item);
    while (list.children.length > MAX_ITEMS) { list.lastElementChild.remove(); }
    unseen += 1;
    count.textContent = String(unseen);
    count.hidden = false;
  }

  button.addEventListener("click", function () {
    const open = list.hidden;
    list.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) { unseen = 0; count.hidden = true; }
  });

  const source = new EventSource(bell.dataset.stream);
  source.addEventListener("status", function (event) {
    const live = JSON.parse(event.data).live || [];
    bell.dataset.state = live.length ? "live" : "connecting";
    bell.dataset.live = live.join(" ");
  });
  source.addEventListener("notification", function (event) {
    const notification = JSON.parse(event.data);
    show(notification);
    // The home page's unread count follows along.
    const unread = document.getElementById("mail-unread");
    if (unread && notification.kind === "mail.new") {
      unread.textContent = String((parseInt(unread.textContent, 10) || 0) + 1);
    }
  });
  source.addEventListener("error", function () { bell.dataset.state = "reconnecting"; });
})();
