// signalpost web inbox: live updates by short polling of /inbox/api/..., and "reply as handset".
// Every HTML fragment comes from the server, rendered with autoescaping.
(function () {
  "use strict";

  var body = document.body;
  var pollMs = parseInt(body.getAttribute("data-poll-ms"), 10) || 1500;
  var live = document.getElementById("live");

  function setLive(ok, text) {
    if (!live) return;
    live.textContent = text;
    live.className = "live " + (ok ? "on" : "off");
  }

  function loginAgain() {
    window.location.href = "/inbox/login?next=" + encodeURIComponent(window.location.pathname);
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

  // --- the message list ---------------------------------------------------------------------------

  function isNewer(a, b) {
    // rows are ordered newest first by (received_at, id)
    var ra = a.getAttribute("data-received"), rb = b.getAttribute("data-received");
    if (ra !== rb) return ra > rb;
    return a.getAttribute("data-id") > b.getAttribute("data-id");
  }

  var seen = {}; // row id -> the HTML it was last rendered from

  function upsertRow(tbody, html) {
    var row = fromHTML(html);
    if (seen[row.id] === html) return;
    seen[row.id] = html;
    var old = document.getElementById(row.id);
    if (old) {
      old.replaceWith(row);
    } else {
      var before = null;
      for (var r = tbody.firstElementChild; r; r = r.nextElementSibling) {
        if (isNewer(row, r)) { before = r; break; }
      }
      tbody.insertBefore(row, before);
    }
    row.classList.add("changed");
  }

  function pollList(tbody) {
    var cursor = tbody.getAttribute("data-cursor");
    var empty = document.getElementById("empty");
    function tick() {
      fetchJSON("/inbox/api/messages?after=" + encodeURIComponent(cursor))
        .then(function (json) {
          json.data.forEach(function (item) { upsertRow(tbody, item.html); });
          if (empty && tbody.children.length) empty.hidden = true;
          cursor = json.meta.cursor;
          setLive(true, "live");
        })
        .catch(function () { setLive(false, "reconnecting…"); })
        .then(function () { window.setTimeout(tick, pollMs); });
    }
    tick();
  }

  // --- one message ---------------------------------------------------------------------------------

  function pollDetail(box) {
    var id = box.getAttribute("data-id");
    var last = null;
    function tick() {
      fetchJSON("/inbox/api/messages/" + encodeURIComponent(id))
        .then(function (json) {
          var html = json.data.html;
          if (html !== last) {
            // keep the sections the reader opened or closed
            var state = {};
            box.querySelectorAll("details[id]").forEach(function (d) { state[d.id] = d.open; });
            box.innerHTML = html;
            box.querySelectorAll("details[id]").forEach(function (d) {
              if (Object.prototype.hasOwnProperty.call(state, d.id)) d.open = state[d.id];
            });
          }
          last = html;
          setLive(true, "live");
        })
        .catch(function () { setLive(false, "reconnecting…"); })
        .then(function () { window.setTimeout(tick, pollMs); });
    }
    tick();
  }

  // --- reply as handset ---------------------------------------------------------------------------

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
          out.className = "flash";
          out.textContent = "Delivered to " + payload.to + " as message " + json.data.id + ".";
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

  var tbody = document.getElementById("messages");
  if (tbody) pollList(tbody);
  var box = document.getElementById("detail");
  if (box) pollDetail(box);
  var form = document.getElementById("reply-form");
  if (form) wireReply(form);
})();
