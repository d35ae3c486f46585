// signalpost web inbox: live updates over server-sent events (/inbox/api/events), "write as a
// handset" and "redeliver". Every HTML fragment comes from the server, rendered with autoescaping.
(function () {
  "use strict";

  var body = document.body;
  var live = document.getElementById("live");

  function setLive(ok, text) {
    if (!live) return;
    live.textContent = text;
    live.className = "live " + (ok ? "on" : "off");
  }

  function loginAgain() {
    window.location.href = "/inbox/login?next=" + encodeURIComponent(window.location.pathname + window.location.search);
  }

  function fetchJSON(url, options) {
    var opts = options || {};
    opts.credentials = "same-origin";
    opts.headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
    return fetch(url, opts).then(function (r) {
      if (r.status === 401) {
        loginAgain();
        throw new Error("logged out");
      }
      return r.json().then(function (json) {
        if (!r.ok) {
          var e = (json.errors && json.errors[0]) || {};
          throw new Error((e.detail || e.title || "HTTP " + r.status) + (e.code ? " (" + e.code + ")" : ""));
        }
        return json;
      });
    });
  }

  function fromHTML(html) {
    var t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }

  // --- lists of messages (the inbox rows, a conversation's bubbles) --------------------------------

  function isNewer(a, b) {
    // by (received_at, id)
    var ra = a.getAttribute("data-received"), rb = b.getAttribute("data-received");
    if (ra !== rb) return ra > rb;
    return a.getAttribute("data-id") > b.getAttribute("data-id");
  }

  var seen = {}; // element id -> the HTML it was last rendered from

  // newestFirst: the inbox list; otherwise a conversation (oldest first).
  function upsert(list, html, newestFirst) {
    var el = fromHTML(html);
    if (seen[el.id] === html) return;
    seen[el.id] = html;
    var old = document.getElementById(el.id);
    if (old) {
      old.replaceWith(el);
    } else {
      if (list.hasAttribute("data-paged")) return; // an older page: new messages are not on it
      var before = null;
      for (var r = list.firstElementChild; r; r = r.nextElementSibling) {
        if (newestFirst ? isNewer(el, r) : isNewer(r, el)) { before = r; break; }
      }
      list.insertBefore(el, before);
      if (!newestFirst) el.scrollIntoView({ block: "nearest" });
    }
    el.classList.add("changed");
    var empty = document.getElementById("empty");
    if (empty) empty.hidden = true;
  }

  // --- one message ---------------------------------------------------------------------------------

  var outcomes = {}; // delivery id -> [text, class] of its last redelivery, kept across updates

  function replaceDetail(box, html) {
    // keep the sections the reader opened or closed
    var state = {};
    box.querySelectorAll("details[id]").forEach(function (d) { state[d.id] = d.open; });
    box.innerHTML = html;
    box.querySelectorAll("details[id]").forEach(function (d) {
      if (Object.prototype.hasOwnProperty.call(state, d.id)) d.open = state[d.id];
    });
    Object.keys(outcomes).forEach(function (id) { showOutcome(box, id); });
  }

  function showOutcome(box, id) {
    var button = box.querySelector('button.redeliver[data-delivery="' + id + '"]');
    if (!button) return;
    var slot = button.parentElement.querySelector(".redeliver-result");
    slot.textContent = outcomes[id][0];
    slot.className = "redeliver-result " + outcomes[id][1];
  }

  // --- the live stream -----------------------------------------------------------------------------

  function openStream(url) {
    var list = document.getElementById("messages");
    var chat = document.getElementById("chat");
    var box = document.getElementById("detail");
    var source = new EventSource(url, { withCredentials: true });
    source.addEventListener("open", function () { setLive(true, "live"); });
    source.addEventListener("ready", function () { setLive(true, "live"); });
    source.addEventListener("error", function () {
      setLive(false, "reconnecting…");
      // A 401 closes the stream for good: the login expired.
      if (source.readyState === EventSource.CLOSED) {
        fetchJSON("/inbox/api/messages?after=" + encodeURIComponent(new Date().toISOString()))
          .then(function () { window.setTimeout(function () { openStream(url); }, 2000); })
          .catch(function () {});
      }
    });
    var index = document.getElementById("conversations");
    source.addEventListener("messages", function (ev) {
      if (index) { refreshIndex(index); return; }
      var data = JSON.parse(ev.data);
      data.items.forEach(function (item) {
        if (list) upsert(list, item.html, true);
        if (chat) upsert(chat, item.html, false);
      });
    });
    source.addEventListener("message", function (ev) {
      if (box) replaceDetail(box, JSON.parse(ev.data).html);
    });
    window.__inboxStream = source;
  }

  // The conversations page: its list is read again (a message can move a conversation to the top).
  var refreshing = false;
  function refreshIndex(index) {
    if (refreshing) return;
    refreshing = true;
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(new Error("HTTP " + r.status)); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("conversations");
        if (fresh) index.innerHTML = fresh.innerHTML;
      })
      .catch(function () {})
      .then(function () { refreshing = false; });
  }

  // --- write as a handset --------------------------------------------------------------------------

  function wireReply(form) {
    var out = document.getElementById("reply-result");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var data = new FormData(form);
      var payload = { from: data.get("from"), to: data.get("to"), text: data.get("text") };
      var button = form.querySelector("button");
      button.disabled = true;
      fetchJSON("/inbox/api/reply", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(payload)
      })
        .then(function (json) {
          var warnings = json.warnings || [];
          out.className = warnings.length ? "flash warn" : "flash";
          out.textContent = warnings.length
            ? "Stored as message " + json.data.id + ". " + warnings.map(function (w) { return w.detail; }).join(" ")
            : "Delivered to " + payload.to + " as message " + json.data.id + ".";
          form.querySelector("input[name=text]").value = "";
        })
        .catch(function (err) {
          out.className = "flash error";
          out.textContent = err.message;
        })
        .then(function () {
          out.hidden = false;
          button.disabled = false;
        });
    });
  }

  // --- redeliver a webhook -------------------------------------------------------------------------

  function wireRedeliver(box) {
    box.addEventListener("click", function (ev) {
      var button = ev.target.closest("button.redeliver");
      if (!button) return;
      var id = button.getAttribute("data-delivery");
      var out = button.parentElement.querySelector(".redeliver-result");
      button.disabled = true;
      out.textContent = "sending…";
      fetchJSON("/inbox/api/webhooks/" + encodeURIComponent(id) + "/redeliver", { method: "POST" })
        .then(function (json) {
          var d = json.data;
          var text = d.ok ? "Redelivered: HTTP " + d.status_code
            : "Redelivery failed: " + (d.status_code !== null ? "HTTP " + d.status_code : d.error);
          outcomes[id] = [text, d.ok ? "ok" : "bad"];
          if (d.html) replaceDetail(box, d.html); else showOutcome(box, id);
          var opened = document.getElementById("ev-" + id);
          if (opened) opened.open = true;
        })
        .catch(function (err) {
          out.textContent = err.message;
          out.className = "redeliver-result bad";
        })
        .then(function () { button.disabled = false; });
    });
  }

  // --- filters: a changed choice applies at once ---------------------------------------------------

  function wireFilters(form) {
    form.querySelectorAll("select, input[type=date]").forEach(function (el) {
      el.addEventListener("change", function () { form.requestSubmit(); });
    });
    // empty fields stay out of the address
    form.addEventListener("submit", function () {
      form.querySelectorAll("input[name], select[name]").forEach(function (el) {
        if (!el.value) el.disabled = true;
      });
    });
  }

  var stream = body.getAttribute("data-stream");
  if (stream && live) openStream(stream);
  var form = document.getElementById("reply-form");
  if (form) wireReply(form);
  var box = document.getElementById("detail");
  if (box) wireRedeliver(box);
  var filters = document.getElementById("filters");
  if (filters) wireFilters(filters);
})();
