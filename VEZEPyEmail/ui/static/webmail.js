// Webmail: swaps server-rendered partials into the three panes, writes through the JSON API
// (session cookie + X-CSRF-Token), listens to the mailbox's SSE stream, and maps the keyboard.
// No token ever appears in a URL: every request is same-origin with the HttpOnly cookie.
(function () {
  "use strict";
  const app = document.getElementById("mail-app");
  if (!app) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  const list = document.getElementById("message-list");
  const reader = document.getElementById("reader");
  const searchInput = document.getElementById("search-input");
  const toastBox = document.getElementById("toast");
  const MOVES = { archive: "Archive", junk: "Junk", notjunk: "INBOX" };
  const state = {
    folder: app.dataset.folder || "INBOX",
    query: app.dataset.query || "",
    selected: Number(app.dataset.selected) || null,
  };
  const webmail = (window.VezeWebmail = { state: state });

  // ---- small helpers ------------------------------------------------------------------
  function reloadForSignIn() {
    const key = "veze-webmail-reloaded-at";
    const last = Number(window.sessionStorage.getItem(key) || "0");
    if (Date.now() - last < 60000) return;
    window.sessionStorage.setItem(key, String(Date.now()));
    window.location.reload();
  }

  let toastTimer = null;
  function toast(message, options) {
    options = options || {};
    window.clearTimeout(toastTimer);
    toastBox.replaceChildren(document.createTextNode(message));
    toastBox.classList.toggle("error", Boolean(options.error));
    if (options.action) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = options.action.label;
      button.addEventListener("click", function () {
        toastBox.hidden = true;
        options.action.run();
      });
      toastBox.appendChild(button);
    }
    toastBox.hidden = false;
    toastTimer = window.setTimeout(function () { toastBox.hidden = true; }, options.timeout || 5000);
  }
  webmail.toast = toast;

  async function errorOf(response) {
    try {
      const body = await response.json();
      if (body && body.detail) return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch (_) { /* not JSON */ }
    return "The server said " + response.status + ".";
  }

  async function api(method, url, body) {
    const init = { method: method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    if (response.status === 401) { reloadForSignIn(); throw new Error("Signed out"); }
    if (!response.ok) throw new Error(await errorOf(response));
    const type = response.headers.get("content-type") || "";
    return type.indexOf("application/json") === 0 ? response.json() : null;
  }
  webmail.api = api;

  async function html(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (response.status === 401) { reloadForSignIn(); throw new Error("Signed out"); }
    if (!response.ok) throw new Error(await errorOf(response));
    return response.text();
  }

  function query(params) {
    const out = new URLSearchParams();
    Object.keys(params).forEach(function (key) {
      if (params[key] !== null && params[key] !== undefined && params[key] !== "") out.set(key, params[key]);
    });
    return out.toString();
  }
  function pageUrl(extra) {
    return "/ui/mail?" + query(Object.assign({ folder: state.folder, q: state.query }, extra || {}));
  }

  function rows() { return Array.prototype.slice.call(list.querySelectorAll(".msg-row")); }
  function rowOf(id) { return document.getElementById("row-" + id); }
  function currentRow() { return list.querySelector(".msg-row.current") || rowOf(state.selected); }
  function setCurrent(row, focus) {
    rows().forEach(function (item) { item.classList.toggle("current", item === row); });
    if (row && focus) {
      const link = row.querySelector(".msg-open");
      link.focus({ preventScroll: true });
      row.scrollIntoView({ block: "nearest" });
    }
  }
  function selectedIds() {
    const ids = rows().filter(function (row) { return row.querySelector(".msg-select").checked; })
      .map(function (row) { return Number(row.dataset.id); });
    if (ids.length) return ids;
    if (state.selected) return [state.selected];
    const row = currentRow();
    return row ? [Number(row.dataset.id)] : [];
  }

  // ---- title and folders ------------------------------------------------------------------
  function updateTitle() {
    const nav = document.querySelector("#folder-list .folders");
    const unread = nav ? Number(nav.dataset.inboxUnread || "0") : 0;
    const place = state.query ? "Search" : state.folder;
    document.title = (unread > 0 ? "(" + unread + ") " : "") + place + " · VEZE Mail";
  }
  let foldersTimer = null;
  function refreshFolders() {
    window.clearTimeout(foldersTimer);
    foldersTimer = window.setTimeout(async function () {
      try {
        document.getElementById("folder-list").innerHTML = await html("/ui/mail/folders?" + query({ folder: state.folder }));
        updateTitle();
        refreshMoveOptions();
      } catch (_) { /* the next event refreshes again */ }
    }, 60);
  }
  webmail.refreshFolders = refreshFolders;
  function refreshMoveOptions() {
    const select = document.getElementById("bulk-move");
    const names = Array.prototype.map.call(document.querySelectorAll("#folder-list [data-folder-link]"), function (a) { return a.dataset.folderLink; });
    select.replaceChildren();
    const first = document.createElement("option");
    first.value = ""; first.textContent = "Move to…";
    select.appendChild(first);
    names.filter(function (name) { return name !== state.folder; }).forEach(function (name) {
      const option = document.createElement("option");
      option.value = name; option.textContent = name;
      select.appendChild(option);
    });
  }

  // ---- the list -----------------------------------------------------------------------------
  async function loadList(push) {
    const problem = document.getElementById("page-problem");
    if (problem) problem.remove();
    const heading = document.getElementById("list-heading");
    heading.textContent = state.query ? "Search results" : state.folder;
    try {
      list.innerHTML = await html("/ui/mail/list?" + query({ folder: state.folder, q: state.query }));
    } catch (error) {
      toast(error.message, { error: true });
      return;
    }
    document.querySelector("#search-form input[name=folder]").value = state.folder;
    app.dataset.folder = state.folder;
    const clear = document.getElementById("clear-search");
    if (clear) clear.hidden = !state.query;
    document.getElementById("select-all").checked = false;
    if (push) window.history.pushState({}, "", pageUrl());
    watchMore();
    refreshFolders();
    updateTitle();
    markOpen();
  }

  const moreObserver = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) { if (entry.isIntersecting) loadMore(entry.target); });
  }, { root: list, rootMargin: "600px" }) : null;
  function watchMore() {
    const more = list.querySelector(".list-more");
    if (more && moreObserver) moreObserver.observe(more);
  }
  async function loadMore(more) {
    if (more.dataset.loading) return;
    more.dataset.loading = "1";
    if (moreObserver) moreObserver.unobserve(more);
    try {
      const markup = await html(more.dataset.moreUrl);
      const holder = document.createElement("template");
      holder.innerHTML = markup;
      holder.content.querySelectorAll(".msg-row").forEach(function (row) {
        if (rowOf(row.dataset.id)) row.remove();
      });
      more.replaceWith(holder.content);
      watchMore();
    } catch (error) {
      delete more.dataset.loading;
      toast(error.message, { error: true });
    }
  }

  function belongsHere(folder) {
    if (state.query) return false; // a search result set is not live-updated in place
    return folder === state.folder;
  }

  async function refreshRow(id, insertIfMissing) {
    let markup;
    try {
      markup = await html("/ui/mail/rows/" + encodeURIComponent(id) + "?" + query({ folder: state.folder, q: state.query }));
    } catch (_) {
      const gone = rowOf(id);
      if (gone) gone.remove();
      return;
    }
    const holder = document.createElement("template");
    holder.innerHTML = markup.trim();
    const fresh = holder.content.firstElementChild;
    const existing = rowOf(id);
    if (existing) {
      fresh.classList.toggle("current", existing.classList.contains("current"));
      fresh.classList.toggle("open", existing.classList.contains("open"));
      const wasChecked = existing.querySelector(".msg-select").checked;
      fresh.querySelector(".msg-select").checked = wasChecked;
      fresh.classList.toggle("selected", wasChecked);
      if (!state.query && fresh.dataset.folder !== state.folder) { existing.remove(); return; }
      existing.replaceWith(fresh);
      return;
    }
    if (!insertIfMissing || !belongsHere(fresh.dataset.folder)) return;
    // Newest first: before the first row that arrived earlier; past the loaded page, leave it.
    const later = rows().find(function (row) { return row.dataset.received < fresh.dataset.received; });
    if (later) list.insertBefore(fresh, later);
    else if (!list.querySelector(".list-more")) list.insertBefore(fresh, list.querySelector(".list-empty, .list-more"));
    else return;
    const empty = document.getElementById("list-empty");
    if (empty) empty.remove();
  }
  webmail.refreshRow = refreshRow;

  function markOpen() {
    rows().forEach(function (row) { row.classList.toggle("open", Number(row.dataset.id) === state.selected); });
  }

  // ---- the reading pane -----------------------------------------------------------------------
  let openSeq = 0;
  async function openMessage(id, push) {
    // The choice is made now: shortcuts pressed while the pane loads act on this message.
    const previous = state.selected;
    const seq = ++openSeq;
    state.selected = Number(id);
    let markup;
    try {
      markup = await html("/ui/mail/messages/" + encodeURIComponent(id));
    } catch (error) {
      if (seq === openSeq) state.selected = previous;
      toast(error.message, { error: true });
      return;
    }
    if (seq !== openSeq) return; // a later open won
    reader.innerHTML = markup;
    app.dataset.view = "message";
    app.dataset.selected = String(id);
    const row = rowOf(id);
    if (row) setCurrent(row, false);
    markOpen();
    if (push) window.history.pushState({}, "", pageUrl({ m: id }));
    const article = document.getElementById("reader-message");
    if (article && article.dataset.unread === "true") {
      if (row) row.classList.remove("unread");
      api("POST", "/api/messages/" + id + "/read", { read: true }).then(refreshFolders).catch(function () {});
    }
    if (window.matchMedia("(max-width: 760px)").matches) reader.focus({ preventScroll: true });
  }
  webmail.openMessage = openMessage;

  function closeMessage(push) {
    state.selected = null;
    app.dataset.view = "list";
    app.dataset.selected = "";
    reader.innerHTML = '<div class="reader-empty"><p class="muted">Select a message to read it.</p></div>';
    markOpen();
    if (push) window.history.pushState({}, "", pageUrl());
    const row = currentRow();
    if (row) setCurrent(row, true);
  }

  // ---- actions ------------------------------------------------------------------------------------
  function neighbour(id) {
    const all = rows();
    const index = all.findIndex(function (row) { return Number(row.dataset.id) === id; });
    if (index < 0) return null;
    return all[index + 1] || all[index - 1] || null;
  }

  function originsOf(ids) {
    const origins = {};
    const article = document.getElementById("reader-message");
    ids.forEach(function (id) {
      const row = rowOf(id);
      if (row) origins[id] = row.dataset.folder;
      else if (article && Number(article.dataset.id) === id) origins[id] = article.dataset.folder;
      else origins[id] = state.folder;
    });
    return origins;
  }

  async function moveAll(ids, folder, undoable) {
    const origins = originsOf(ids);
    await Promise.all(ids.map(function (id) { return api("POST", "/api/messages/" + id + "/move", { folder: folder }); }));
    removeRows(ids, folder);
    if (undoable) {
      toast((ids.length === 1 ? "Message" : ids.length + " messages") + " moved to " + folder + ".", {
        action: { label: "Undo", run: function () { moveBack(ids, origins); } },
      });
    }
  }

  function removeRows(ids, newFolder) {
    let next = null;
    ids.forEach(function (id) {
      const row = rowOf(id);
      if (!row) return;
      if (state.query || newFolder === state.folder) { refreshRow(id, false); return; }
      if (id === state.selected) next = neighbour(id);
      row.remove();
    });
    if (ids.indexOf(state.selected) >= 0 && !state.query) {
      if (next && !ids.includes(Number(next.dataset.id))) openMessage(next.dataset.id, true);
      else closeMessage(true);
    }
    refreshFolders();
  }

  async function act(action, ids) {
    if (!ids.length) { toast("Select a message first."); return; }
    try {
      if (action === "read" || action === "unread") {
        await Promise.all(ids.map(function (id) { return api("POST", "/api/messages/" + id + "/read", { read: action === "read" }); }));
        ids.forEach(function (id) { refreshRow(id, false); });
        if (state.selected && ids.indexOf(state.selected) >= 0 && action === "unread") closeMessage(true);
        refreshFolders();
      } else if (action === "flag") {
        const first = rowOf(ids[0]);
        const article = document.getElementById("reader-message");
        const flagged = first ? first.classList.contains("flagged") : Boolean(article && article.dataset.flagged === "true");
        await Promise.all(ids.map(function (id) { return api("POST", "/api/messages/" + id + "/star", { starred: !flagged }); }));
        ids.forEach(function (id) { refreshRow(id, false); });
        if (state.selected && ids.indexOf(state.selected) >= 0) openMessage(state.selected, false);
      } else if (action === "delete") {
        const origins = originsOf(ids);
        const results = await Promise.all(ids.map(function (id) { return api("DELETE", "/api/messages/" + id); }));
        const purged = results.filter(function (result) { return result && result.purged; }).length;
        removeRows(ids, "Trash");
        toast(purged ? purged + " deleted for good." : (ids.length === 1 ? "Message" : ids.length + " messages") + " moved to Trash.", purged ? {} : {
          action: { label: "Undo", run: function () { moveBack(ids, origins); } },
        });
      } else if (MOVES[action]) {
        await moveAll(ids, MOVES[action], true);
      }
    } catch (error) {
      toast(error.message, { error: true });
    }
  }
  webmail.act = act;
  function moveBack(ids, origins) {
    Promise.all(ids.map(function (id) {
      return api("POST", "/api/messages/" + id + "/move", { folder: origins[id] });
    })).then(function () {
      ids.forEach(function (id) { refreshRow(id, true); });
      refreshFolders();
    }).catch(function (error) { toast(error.message, { error: true }); });
  }

  async function setLabels(id, labels) {
    try {
      await api("POST", "/api/messages/" + id + "/labels", { labels: labels });
      await openMessage(id, false);
      refreshRow(id, false);
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  // ---- clicks -----------------------------------------------------------------------------------------
  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0) return;
    const plain = !(event.metaKey || event.ctrlKey || event.shiftKey || event.altKey);
    const target = event.target;

    const open = target.closest("[data-open]");
    if (open && plain) {
      event.preventDefault();
      openMessage(open.dataset.open, true);
      return;
    }
    const folderLink = target.closest("[data-folder-link]");
    if (folderLink && plain) {
      event.preventDefault();
      state.folder = folderLink.dataset.folderLink;
      state.query = "";
      searchInput.value = "";
      app.classList.remove("sidebar-open");
      document.getElementById("sidebar-toggle").setAttribute("aria-expanded", "false");
      closeMessage(false);
      loadList(true);
      return;
    }
    const flag = target.closest("[data-flag]");
    if (flag) {
      const row = flag.closest(".msg-row");
      act("flag", [Number(row.dataset.id)]);
      return;
    }
    const bulk = target.closest("[data-bulk]");
    if (bulk) { act(bulk.dataset.bulk, selectedIds()); return; }
    const action = target.closest("[data-action]");
    if (action) { runAction(action.dataset.action); return; }
    const theme = target.closest("[data-theme-choice]");
    if (theme) { setTheme(theme.dataset.themeChoice); return; }
    const rename = target.closest("[data-folder-rename]");
    if (rename) { renameFolder(rename.dataset.folderRename); return; }
    const remove = target.closest("[data-folder-delete]");
    if (remove) { deleteFolder(remove.dataset.folderDelete); return; }
    const labelRemove = target.closest("[data-label-remove]");
    if (labelRemove) {
      const article = document.getElementById("reader-message");
      const labels = JSON.parse(article.dataset.labels).filter(function (label) { return label !== labelRemove.dataset.labelRemove; });
      setLabels(Number(article.dataset.id), labels);
      return;
    }
    if (target.id === "clear-search" && plain) {
      event.preventDefault();
      state.query = "";
      searchInput.value = "";
      closeMessage(false);
      loadList(true);
      return;
    }
    const more = target.closest(".list-more button");
    if (more) { loadMore(more.closest(".list-more")); return; }
    if (app.classList.contains("sidebar-open") && !target.closest("#mail-sidebar, #sidebar-toggle")) {
      closeSidebar();
      return;
    }
    const toggle = target.closest("#sidebar-toggle");
    if (toggle) {
      const open = !app.classList.contains("sidebar-open");
      app.classList.toggle("sidebar-open", open);
      toggle.setAttribute("aria-expanded", String(open));
      if (open) document.querySelector("#folder-list a[aria-current]").focus();
    }
  });

  function closeSidebar() {
    app.classList.remove("sidebar-open");
    const toggle = document.getElementById("sidebar-toggle");
    toggle.setAttribute("aria-expanded", "false");
    toggle.focus();
  }

  function runAction(name) {
    const id = state.selected;
    if (name === "back") { closeMessage(true); return; }
    if (name in MOVES || name === "delete" || name === "unread" || name === "flag" || name === "read") {
      act(name, id ? [id] : selectedIds());
      return;
    }
    if (webmail.compose) webmail.compose(name, id);
  }
  webmail.runAction = runAction;

  // Shift+click on a checkbox selects the whole range from the previous one clicked.
  let anchorRow = null;
  list.addEventListener("click", function (event) {
    const box = event.target.closest(".msg-select");
    if (!box) return;
    const row = box.closest(".msg-row");
    if (event.shiftKey && anchorRow && anchorRow.isConnected) {
      const all = rows();
      const from = all.indexOf(anchorRow);
      const to = all.indexOf(row);
      all.slice(Math.min(from, to), Math.max(from, to) + 1).forEach(function (item) {
        item.querySelector(".msg-select").checked = box.checked;
        item.classList.toggle("selected", box.checked);
      });
    }
    anchorRow = row;
  });
  list.addEventListener("change", function (event) {
    if (!event.target.classList.contains("msg-select")) return;
    event.target.closest(".msg-row").classList.toggle("selected", event.target.checked);
  });
  document.getElementById("select-all").addEventListener("change", function (event) {
    rows().forEach(function (row) {
      row.querySelector(".msg-select").checked = event.target.checked;
      row.classList.toggle("selected", event.target.checked);
    });
  });
  document.getElementById("bulk-move").addEventListener("change", function (event) {
    const folder = event.target.value;
    event.target.value = "";
    if (folder) moveAll(selectedIds(), folder, true).catch(function (error) { toast(error.message, { error: true }); });
  });

  document.getElementById("search-form").addEventListener("submit", function (event) {
    event.preventDefault();
    state.query = searchInput.value.trim();
    closeMessage(false);
    loadList(true);
  });

  document.getElementById("new-folder-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    const input = document.getElementById("new-folder-name");
    try {
      await api("POST", "/api/folders", { name: input.value });
      toast("Folder " + input.value.trim() + " created.");
      input.value = "";
      refreshFolders();
    } catch (error) {
      toast(error.message, { error: true });
    }
  });
  async function renameFolder(name) {
    const next = window.prompt("Rename folder " + name + " to:", name);
    if (!next || next === name) return;
    try {
      const folder = await api("PATCH", "/api/folders/" + encodeURIComponent(name), { name: next });
      if (state.folder === name) { state.folder = folder.name; loadList(true); } else refreshFolders();
    } catch (error) {
      toast(error.message, { error: true });
    }
  }
  async function deleteFolder(name) {
    if (!window.confirm("Delete the folder " + name + "? Its messages move to Trash.")) return;
    try {
      await api("DELETE", "/api/folders/" + encodeURIComponent(name));
      toast("Folder " + name + " deleted.");
      if (state.folder === name) { state.folder = "INBOX"; loadList(true); } else refreshFolders();
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  // A conversation's other messages open in place, loaded the first time they are expanded.
  reader.addEventListener("toggle", async function (event) {
    const details = event.target;
    if (!details.open || !details.dataset.bodyUrl || details.dataset.loaded) return;
    details.dataset.loaded = "1";
    const body = details.querySelector(".thread-body");
    try {
      body.innerHTML = await html(details.dataset.bodyUrl);
    } catch (error) {
      delete details.dataset.loaded;
      body.textContent = error.message;
    }
  }, true);

  reader.addEventListener("submit", async function (event) {
    const form = event.target;
    if (form.id === "label-form") {
      event.preventDefault();
      const article = document.getElementById("reader-message");
      const value = form.elements.label.value.trim();
      if (!value) return;
      setLabels(Number(article.dataset.id), JSON.parse(article.dataset.labels).concat([value]));
      return;
    }
    if (!form.dataset.swap) return;
    event.preventDefault();
    const data = new FormData(form);
    if (event.submitter && event.submitter.name) data.set(event.submitter.name, event.submitter.value);
    const response = await fetch(form.action, {
      method: "POST", body: data, credentials: "same-origin", headers: { "X-CSRF-Token": csrf },
    });
    if (!response.ok) { toast(await errorOf(response), { error: true }); return; }
    document.querySelector(form.dataset.swap).innerHTML = await response.text();
  });

  function setTheme(theme) {
    document.documentElement.dataset.theme = theme;
    document.cookie = "veze_webmail_theme=" + theme + "; Path=/; Max-Age=31536000; SameSite=Lax";
    document.querySelectorAll("[data-theme-choice]").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.dataset.themeChoice === theme));
    });
  }

  // ---- drag to a folder -------------------------------------------------------------------------------
  list.addEventListener("dragstart", function (event) {
    const row = event.target.closest(".msg-row");
    if (!row) return;
    const ids = row.querySelector(".msg-select").checked ? selectedIds() : [Number(row.dataset.id)];
    event.dataTransfer.setData("application/x-veze-messages", JSON.stringify(ids));
    event.dataTransfer.effectAllowed = "move";
    row.classList.add("dragging");
  });
  list.addEventListener("dragend", function (event) {
    const row = event.target.closest(".msg-row");
    if (row) row.classList.remove("dragging");
  });
  const sidebar = document.getElementById("folder-list");
  sidebar.addEventListener("dragover", function (event) {
    const folder = event.target.closest(".folder");
    if (!folder || event.dataTransfer.types.indexOf("application/x-veze-messages") < 0) return;
    event.preventDefault();
    folder.classList.add("drop-target");
  });
  sidebar.addEventListener("dragleave", function (event) {
    const folder = event.target.closest(".folder");
    if (folder) folder.classList.remove("drop-target");
  });
  sidebar.addEventListener("drop", function (event) {
    const folder = event.target.closest(".folder");
    if (!folder) return;
    event.preventDefault();
    folder.classList.remove("drop-target");
    const ids = JSON.parse(event.dataTransfer.getData("application/x-veze-messages") || "[]");
    if (ids.length && folder.dataset.folder !== state.folder) {
      moveAll(ids, folder.dataset.folder, true).catch(function (error) { toast(error.message, { error: true }); });
    }
  });

  // ---- history -------------------------------------------------------------------------------------------
  window.addEventListener("popstate", function () {
    const params = new URLSearchParams(window.location.search);
    const folder = params.get("folder") || "INBOX";
    const q = params.get("q") || "";
    const m = Number(params.get("m")) || null;
    if (folder !== state.folder || q !== state.query) {
      state.folder = folder; state.query = q; searchInput.value = q;
      loadList(false);
    }
    if (m) openMessage(m, false); else closeMessage(false);
  });

  // ---- keyboard ----------------------------------------------------------------------------------------------
  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true'], dialog[open]");
  }
  function step(delta) {
    const all = rows();
    if (!all.length) return;
    const current = currentRow();
    let index = current ? all.indexOf(current) + delta : 0;
    index = Math.max(0, Math.min(all.length - 1, index));
    const row = all[index];
    setCurrent(row, true);
    if (state.selected) openMessage(row.dataset.id, true);
    if (index >= all.length - 3) {
      const more = list.querySelector(".list-more");
      if (more) loadMore(more);
    }
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape" && event.target === searchInput) { searchInput.blur(); list.focus(); }
      return;
    }
    const key = event.key;
    const handlers = {
      j: function () { step(1); },
      k: function () { step(-1); },
      ArrowDown: function () { step(1); },
      ArrowUp: function () { step(-1); },
      o: function () { const row = currentRow(); if (row) openMessage(row.dataset.id, true); },
      Enter: function () {
        if (event.target.closest("button, a[href]:not(.msg-open)")) return false;
        const row = currentRow(); if (row) openMessage(row.dataset.id, true);
      },
      u: function () { closeMessage(true); },
      Escape: function () {
        if (app.classList.contains("sidebar-open")) closeSidebar();
        else if (state.selected) closeMessage(true);
      },
      x: function () {
        const row = currentRow(); if (!row) return;
        const box = row.querySelector(".msg-select");
        box.checked = !box.checked; row.classList.toggle("selected", box.checked);
      },
      s: function () { act("flag", selectedIds()); },
      e: function () { act("archive", selectedIds()); },
      "#": function () { act("delete", selectedIds()); },
      "/": function () { searchInput.focus(); searchInput.select(); },
      "?": function () { document.getElementById("help-dialog").showModal(); },
      c: function () { if (webmail.compose) webmail.compose("compose", null); else return false; },
      r: function () { if (webmail.compose && state.selected) webmail.compose("reply", state.selected); else return false; },
      a: function () { if (webmail.compose && state.selected) webmail.compose("reply-all", state.selected); else return false; },
      f: function () { if (webmail.compose && state.selected) webmail.compose("forward", state.selected); else return false; },
    };
    const handler = handlers[key];
    if (!handler) return;
    if (handler() !== false) event.preventDefault();
  });
  list.addEventListener("focusin", function (event) {
    const row = event.target.closest(".msg-row");
    if (row) setCurrent(row, false);
  });

  // Screen readers hear about new mail without the focus moving.
  function announce(message) {
    const announcer = document.getElementById("announcer");
    const line = document.createElement("p");
    line.textContent = message;
    announcer.appendChild(line);
    while (announcer.children.length > 5) announcer.firstElementChild.remove();
  }

  // ---- live updates --------------------------------------------------------------------------------------------
  function connect() {
    if (!window.EventSource) return;
    const source = new EventSource("/api/events");
    webmail.events = source;
    // Events were missed: catch up from the server (the list only if that disturbs nobody).
    function catchUp() {
      refreshFolders();
      const noneChecked = !list.querySelector(".msg-select:checked");
      if (list.scrollTop === 0 && noneChecked) loadList(false);
    }
    source.addEventListener("ready", function () {
      // Back after a drop: events of the gap are gone.
      const missed = app.dataset.live === "off";
      app.dataset.live = "on";
      if (missed) catchUp();
    });
    // The server's own link to the event bus dropped and came back (a Redis restart).
    source.addEventListener("events.lost", catchUp);
    source.addEventListener("message.created", function (event) {
      const data = JSON.parse(event.data);
      if (belongsHere(data.folder)) refreshRow(data.id, true);
      if (data.folder === "INBOX") announce("New mail from " + (data.from || "someone") + ": " + (data.subject || "(no subject)"));
      refreshFolders();
    });
    source.addEventListener("message.updated", function (event) {
      const data = JSON.parse(event.data);
      const row = rowOf(data.id);
      if (row) refreshRow(data.id, false);
      else if (data.folder && belongsHere(data.folder)) refreshRow(data.id, true);
      refreshFolders();
    });
    source.addEventListener("message.removed", function (event) {
      const data = JSON.parse(event.data);
      const row = rowOf(data.id);
      if (row) row.remove();
      refreshFolders();
    });
    ["folder.created", "folder.renamed", "folder.removed"].forEach(function (name) {
      source.addEventListener(name, refreshFolders);
    });
    source.addEventListener("error", function () {
      app.dataset.live = "off";
      if (source.readyState === EventSource.CLOSED) {
        // The stream was refused (signed out?) or dropped for good: try again shortly.
        window.setTimeout(function () {
          fetch("/ui/mail/folders", { credentials: "same-origin" }).then(function (response) {
            if (response.status === 401) reloadForSignIn(); else connect();
          });
        }, 3000);
      }
    });
  }

  watchMore();
  markOpen();
  updateTitle();
  connect();
  // A link straight to a message (?m=) opened it on the server: mark it read as a click would.
  const opened = document.getElementById("reader-message");
  if (opened && opened.dataset.unread === "true") {
    api("POST", "/api/messages/" + opened.dataset.id + "/read", { read: true })
      .then(function () { refreshRow(Number(opened.dataset.id), false); refreshFolders(); })
      .catch(function () {});
  }
})();
