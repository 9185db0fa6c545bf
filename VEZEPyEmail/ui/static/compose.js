// Composer: new, reply, reply-all, forward and drafts, over the JSON API (drafts, uploads,
// send, contacts). Drafts autosave; attachments upload with a progress bar and are checked
// against the server's limits first; Send waits a few seconds so it can be undone.
(function () {
  "use strict";
  const webmail = window.VezeWebmail;
  const panel = document.getElementById("composer");
  if (!webmail || !panel) return;
  const form = document.getElementById("composer-form");
  const title = document.getElementById("composer-title");
  const statusLine = document.getElementById("composer-status");
  const errorBox = document.getElementById("composer-error");
  const attachmentList = document.getElementById("composer-attachments");
  const fileInput = document.getElementById("compose-file");
  const signatureBox = document.getElementById("compose-signature");
  const textBox = document.getElementById("compose-text");
  const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  const address = document.getElementById("mail-app").dataset.address;
  const SIGNATURE_KEY = "veze-webmail-signature:" + address;
  const UNDO_SECONDS = 5;
  const AUTOSAVE_MS = 1500;

  let draft = null; // { id, in_reply_to, forward_of }
  let uploads = []; // { id, filename, size, content_type } of finished uploads
  let pendingUploads = 0;
  let saveTimer = null;
  let saving = Promise.resolve();
  let dirty = false;
  let limits = null;

  webmail.api("GET", "/api/compose/limits").then(function (value) {
    limits = value;
    document.getElementById("compose-limits").textContent = "Up to " + humanSize(value.upload_max_bytes) + " per file";
  }).catch(function () {});

  function humanSize(size) {
    if (size < 1024) return size + " B";
    if (size < 1024 * 1024) return Math.round(size / 1024) + " KB";
    return (size / (1024 * 1024)).toFixed(1) + " MB";
  }
  function splitAddresses(value) {
    return value.split(",").map(function (part) { return part.trim(); }).filter(Boolean);
  }
  const SIMPLE_ADDRESS = /^[^@\s<>,]+@[^@\s<>,]+\.[^@\s<>,]+$/;
  function bareAddress(value) {
    const match = value.match(/<([^<>]*)>\s*$/);
    return match ? match[1] : value;
  }
  function complete(list) {
    // Autosave keeps the addresses typed so far that are whole; the half-typed one waits.
    return list.filter(function (value) { return SIMPLE_ADDRESS.test(bareAddress(value)); });
  }
  function fields(forAutosave) {
    const pick = forAutosave ? complete : function (list) { return list; };
    return {
      to: pick(splitAddresses(form.elements.to.value)),
      cc: pick(splitAddresses(form.elements.cc.value)),
      bcc: pick(splitAddresses(form.elements.bcc.value)),
      subject: form.elements.subject.value,
      text: textBox.value,
      attachments: uploads.map(function (item) { return item.id; }),
      in_reply_to: draft ? draft.in_reply_to : null,
      forward_of: draft ? draft.forward_of : null,
    };
  }

  // ---- errors, marked on the field they are about --------------------------------------------------
  function clearErrors() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    form.querySelectorAll("[aria-invalid]").forEach(function (input) { input.removeAttribute("aria-invalid"); });
  }
  function showError(message, field) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    const name = field ? field.replace(/\[.*$/, "") : null;
    const input = name && form.elements[name];
    if (input && input.setAttribute) {
      input.setAttribute("aria-invalid", "true");
      const row = input.closest("[data-row]");
      if (row) row.hidden = false;
      input.focus();
    }
  }
  async function call(method, url, body, extraHeaders) {
    const headers = Object.assign({ "X-CSRF-Token": csrf, "Content-Type": "application/json" }, extraHeaders || {});
    const response = await fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    let payload = null;
    try { payload = await response.json(); } catch (_) { payload = null; }
    if (!response.ok) {
      const error = new Error(describe(response.status, payload));
      error.field = payload && payload.field;
      throw error;
    }
    return payload;
  }
  function describe(status, payload) {
    const detail = payload && payload.detail;
    const text = typeof detail === "string" ? detail : Array.isArray(detail) && detail[0] && detail[0].msg;
    if (status === 413) return "Too big: " + (text || "the message is over the size limit.");
    if (status === 429) return "Too many messages sent just now; try again in a minute.";
    if (status === 401) return "You have been signed out; reload the page to sign in again.";
    return text || "The server refused the message (" + status + ").";
  }

  // ---- open and close -----------------------------------------------------------------------------------
  function open(heading, values, meta) {
    clearErrors();
    draft = meta;
    uploads = (values.attachments || []).slice();
    form.elements.to.value = (values.to || []).join(", ");
    form.elements.cc.value = (values.cc || []).join(", ");
    form.elements.bcc.value = (values.bcc || []).join(", ");
    form.querySelectorAll("[data-row=cc], [data-row=bcc]").forEach(function (row) {
      row.hidden = !form.elements[row.dataset.row].value;
    });
    form.elements.subject.value = values.subject || "";
    textBox.value = values.text || "";
    renderAttachments();
    title.textContent = heading;
    statusLine.textContent = "";
    dirty = false;
    panel.hidden = false;
    document.getElementById("mail-app").classList.add("composing");
    const first = !form.elements.to.value ? form.elements.to : textBox;
    first.focus();
    if (first === textBox) textBox.setSelectionRange(0, 0);
  }
  function close() {
    window.clearTimeout(saveTimer);
    panel.hidden = true;
    document.getElementById("mail-app").classList.remove("composing");
  }
  function withSignature(text, above) {
    const signature = window.localStorage.getItem(SIGNATURE_KEY) || "";
    if (!signature.trim()) return text;
    const block = "\n\n-- \n" + signature;
    return above ? block + "\n\n" + text : text + block;
  }

  async function compose(kind, id) {
    if (!panel.hidden && dirty) await saveNow();
    try {
      if (kind === "compose") {
        open("New message", { text: withSignature("", false) }, { id: null, in_reply_to: null, forward_of: null });
      } else if (kind === "reply" || kind === "reply-all") {
        const values = await call("GET", "/api/messages/" + id + "/reply" + (kind === "reply-all" ? "?all=true" : ""));
        values.text = withSignature(values.text, true);
        open(kind === "reply" ? "Reply" : "Reply all", values, { id: null, in_reply_to: id, forward_of: null });
      } else if (kind === "forward") {
        const values = await call("GET", "/api/messages/" + id + "/forward");
        values.text = withSignature(values.text, true);
        open("Forward", values, { id: null, in_reply_to: null, forward_of: id });
      } else if (kind === "edit-draft") {
        const values = await call("GET", "/api/drafts/" + id);
        open("Draft", values, { id: values.id, in_reply_to: values.in_reply_to, forward_of: values.forward_of });
      }
    } catch (error) {
      webmail.toast(error.message, { error: true });
    }
  }
  webmail.compose = compose;

  // ---- autosave -------------------------------------------------------------------------------------------
  function scheduleSave() {
    dirty = true;
    statusLine.textContent = "";
    window.clearTimeout(saveTimer);
    saveTimer = window.setTimeout(saveNow, AUTOSAVE_MS);
  }
  function saveNow(strict) {
    window.clearTimeout(saveTimer);
    saving = saving.then(async function () {
      if (!dirty || panel.hidden && !draft) return;
      const body = fields(!strict);
      dirty = false;
      try {
        const saved = draft && draft.id
          ? await call("PUT", "/api/drafts/" + draft.id, body)
          : await call("POST", "/api/drafts", body);
        draft = { id: saved.id, in_reply_to: saved.in_reply_to, forward_of: saved.forward_of };
        // The stored draft embeds the attachments; its fresh upload ids replace ours.
        uploads = saved.attachments.slice();
        renderAttachments();
        statusLine.textContent = "Draft saved " + new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
        clearErrors();
      } catch (error) {
        dirty = true;
        statusLine.textContent = "Not saved: " + error.message;
        if (strict) showError(error.message, error.field);
      }
    });
    return saving;
  }
  form.addEventListener("input", function (event) {
    if (event.target === signatureBox) return;
    scheduleSave();
  });
  signatureBox.value = window.localStorage.getItem(SIGNATURE_KEY) || "";
  signatureBox.addEventListener("input", function () {
    window.localStorage.setItem(SIGNATURE_KEY, signatureBox.value);
  });

  // ---- attachments ----------------------------------------------------------------------------------------
  function renderAttachments() {
    attachmentList.replaceChildren();
    uploads.forEach(function (item, index) {
      const li = document.createElement("li");
      li.className = "attachment-chip";
      li.textContent = item.filename + " · " + humanSize(item.size) + " ";
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "icon-button";
      remove.setAttribute("aria-label", "Remove attachment " + item.filename);
      remove.textContent = "✕";
      remove.addEventListener("click", function () {
        uploads.splice(index, 1);
        renderAttachments();
        scheduleSave();
      });
      li.appendChild(remove);
      attachmentList.appendChild(li);
    });
  }
  function upload(file) {
    if (limits && file.size > limits.upload_max_bytes) {
      showError("Too big: " + file.name + " is " + humanSize(file.size) + "; the limit is " + humanSize(limits.upload_max_bytes) + " per file.", "attachments");
      return;
    }
    const total = uploads.reduce(function (sum, item) { return sum + item.size; }, 0) + file.size;
    if (limits && total * 4 / 3 > limits.max_message_bytes) {
      showError("Too big: with " + file.name + " the message would be over " + humanSize(limits.max_message_bytes) + ".", "attachments");
      return;
    }
    const li = document.createElement("li");
    li.className = "attachment-chip uploading";
    const label = document.createElement("span");
    label.textContent = file.name + " ";
    const bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", "Uploading " + file.name);
    li.append(label, bar);
    attachmentList.appendChild(li);
    pendingUploads += 1;
    const request = new XMLHttpRequest();
    request.open("POST", "/api/uploads");
    request.setRequestHeader("X-CSRF-Token", csrf);
    request.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) bar.value = Math.round(event.loaded / event.total * 100);
    });
    request.addEventListener("loadend", function () {
      pendingUploads -= 1;
      li.remove();
      let payload = null;
      try { payload = JSON.parse(request.responseText); } catch (_) { payload = null; }
      if (request.status === 201) {
        uploads.push(payload);
        renderAttachments();
        scheduleSave();
      } else {
        showError(describe(request.status || 0, payload), "attachments");
      }
    });
    const data = new FormData();
    data.append("file", file);
    request.send(data);
  }
  fileInput.addEventListener("change", function () {
    Array.prototype.forEach.call(fileInput.files, upload);
    fileInput.value = "";
  });

  // ---- address autocompletion (ARIA combobox) --------------------------------------------------------------
  let suggestTimer = null;
  function listOf(input) { return document.getElementById(input.getAttribute("aria-controls")); }
  function hideSuggestions(input) {
    const list = listOf(input);
    list.hidden = true;
    list.replaceChildren();
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }
  function lastToken(value) { return value.slice(value.lastIndexOf(",") + 1).trim(); }
  function accept(input, option) {
    const value = input.value;
    const head = value.slice(0, value.lastIndexOf(",") + 1);
    input.value = (head ? head + " " : "") + option.dataset.value + ", ";
    hideSuggestions(input);
    input.focus();
    scheduleSave();
  }
  async function suggest(input) {
    const token = lastToken(input.value);
    if (token.length < 1) { hideSuggestions(input); return; }
    let result;
    try {
      result = await webmail.api("GET", "/api/contacts?q=" + encodeURIComponent(token) + "&limit=8");
    } catch (_) { return; }
    if (lastToken(input.value) !== token) return;
    const list = listOf(input);
    list.replaceChildren();
    result.contacts.forEach(function (contact, index) {
      const option = document.createElement("li");
      option.id = input.id + "-option-" + index;
      option.setAttribute("role", "option");
      option.dataset.value = contact.name ? contact.name.replace(/[",<>]/g, "") + " <" + contact.address + ">" : contact.address;
      option.textContent = contact.name ? contact.name + " <" + contact.address + ">" : contact.address;
      option.addEventListener("mousedown", function (event) { event.preventDefault(); accept(input, option); });
      list.appendChild(option);
    });
    list.hidden = !result.contacts.length;
    input.setAttribute("aria-expanded", String(Boolean(result.contacts.length)));
  }
  form.querySelectorAll("[data-addresses]").forEach(function (input) {
    input.addEventListener("input", function () {
      window.clearTimeout(suggestTimer);
      suggestTimer = window.setTimeout(function () { suggest(input); }, 120);
    });
    input.addEventListener("blur", function () { window.setTimeout(function () { hideSuggestions(input); }, 100); });
    input.addEventListener("keydown", function (event) {
      const list = listOf(input);
      if (list.hidden) return;
      const options = Array.prototype.slice.call(list.children);
      const active = list.querySelector("[aria-selected=true]");
      let index = options.indexOf(active);
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        index = event.key === "ArrowDown" ? Math.min(options.length - 1, index + 1) : Math.max(0, index - 1);
        options.forEach(function (option, i) { option.setAttribute("aria-selected", String(i === index)); });
        input.setAttribute("aria-activedescendant", options[index].id);
      } else if ((event.key === "Enter" || event.key === "Tab") && (active || options.length === 1)) {
        event.preventDefault();
        accept(input, active || options[0]);
      } else if (event.key === "Escape") {
        event.stopPropagation();
        hideSuggestions(input);
      }
    });
  });

  // ---- send, with a few seconds to undo ---------------------------------------------------------------------
  function validate(body) {
    const all = body.to.concat(body.cc, body.bcc);
    if (!all.length) return ["Add at least one recipient.", "to"];
    for (const name of ["to", "cc", "bcc"]) {
      for (const value of body[name]) {
        if (!SIMPLE_ADDRESS.test(bareAddress(value))) return ["\u201c" + value + "\u201d is not an email address.", name];
      }
    }
    if (limits && all.length > limits.max_recipients) return ["At most " + limits.max_recipients + " recipients.", "to"];
    return null;
  }
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    clearErrors();
    if (pendingUploads) { showError("Wait for the attachments to finish uploading.", "attachments"); return; }
    const body = fields();
    const problem = validate(body);
    if (problem) { showError(problem[0], problem[1]); return; }
    // Keep the message as a draft first: closing the tab during the undo window loses nothing.
    dirty = true;
    await saveNow(true);
    if (!errorBox.hidden || !draft || !draft.id) return;
    const draftId = draft.id;
    close();
    let cancelled = false;
    const timer = window.setTimeout(function () {
      if (!cancelled) send(draftId, body);
    }, UNDO_SECONDS * 1000);
    webmail.toast("Sending in " + UNDO_SECONDS + " seconds…", {
      timeout: UNDO_SECONDS * 1000,
      action: { label: "Undo", run: function () {
        cancelled = true;
        window.clearTimeout(timer);
        panel.hidden = false;
        document.getElementById("mail-app").classList.add("composing");
        statusLine.textContent = "Sending undone; the draft is kept.";
        textBox.focus();
      } },
    });
  });
  // One key per message being sent, kept until it is sent: a second click after an error whose
  // request did reach the server gets the first result back instead of a second send.
  let sendKey = null;
  function newSendKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);  // randomUUID needs a secure context; this does not
    return Array.from(bytes, function (byte) { return byte.toString(16).padStart(2, "0"); }).join("");
  }
  async function send(draftId, body) {
    sendKey = sendKey || newSendKey();
    try {
      const result = await call("POST", "/api/drafts/" + draftId + "/send", undefined, { "Idempotency-Key": sendKey });
      sendKey = null;
      const queued = result.recipients.filter(function (item) { return item.status === "queued"; }).length;
      webmail.toast(queued ? "Sent; " + queued + " remote recipient" + (queued === 1 ? " is" : "s are") + " queued." : "Sent.");
      draft = null;
      webmail.refreshFolders();
    } catch (error) {
      panel.hidden = false;
      document.getElementById("mail-app").classList.add("composing");
      showError("Not sent: " + error.message, error.field);
      webmail.toast("Not sent: " + error.message, { error: true });
    }
    return body;
  }

  // ---- buttons ------------------------------------------------------------------------------------------------
  panel.addEventListener("click", async function (event) {
    const button = event.target.closest("[data-compose]");
    if (!button) return;
    const action = button.dataset.compose;
    if (action === "close") {
      if (dirty) await saveNow();
      close();
      if (draft && draft.id) webmail.toast("Draft saved in Drafts.");
    } else if (action === "show-cc") {
      form.querySelectorAll("[data-row=cc], [data-row=bcc]").forEach(function (row) { row.hidden = false; });
      form.elements.cc.focus();
    } else if (action === "discard") {
      window.clearTimeout(saveTimer);
      await saving;
      if (draft && draft.id) {
        try { await call("DELETE", "/api/drafts/" + draft.id); } catch (_) { /* already gone */ }
      }
      draft = null;
      dirty = false;
      close();
      webmail.toast("Draft discarded.");
    }
  });
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !event.target.closest("[data-addresses]")) {
      event.preventDefault();
      panel.querySelector("[data-compose=close]").click();
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
})();
