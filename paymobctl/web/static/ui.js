// paymobctl's local pages: live rows (server-sent events or polling), copy buttons, JSON actions.
// Pages are complete without this file; it only makes them live. Hand-written, no dependencies.
"use strict";
(function () {
  var token = (document.querySelector("meta[name=paymobctl-token]") || {}).content || "";

  function fromHtml(html) {
    var t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content;
  }

  // Inspector: <body data-live="…/stream?…"> appends server-rendered rows as they arrive.
  var live = document.body.getAttribute("data-live");
  var rows = document.getElementById("rows");
  if (live && rows && window.EventSource) {
    var source = new EventSource(live);
    source.addEventListener("row", function (e) {
      var empty = rows.querySelector(".empty");
      if (empty) { empty.remove(); }
      var fragment = fromHtml(e.data);
      var row = fragment.firstElementChild;
      if (row && !document.getElementById(row.id)) {
        row.classList.add("new");
        rows.insertBefore(fragment, rows.firstChild);
      }
    });
    source.addEventListener("skipped", function (e) {
      var note = document.getElementById("skipped");
      if (note) {
        note.hidden = false;
        note.dataset.count = String(Number(note.dataset.count || 0) + Number(e.data));
        note.textContent = note.dataset.count + " more requests arrived during a burst; reload to list them all.";
      }
    });
  }

  // Sandbox dashboard: <section data-poll="URL"> is re-rendered by the server every second.
  document.querySelectorAll("[data-poll]").forEach(function (section) {
    var url = section.getAttribute("data-poll");
    setInterval(function () {
      if (section.contains(document.activeElement) && document.activeElement.tagName === "INPUT") { return; }
      fetch(url, { headers: { Accept: "text/html" } }).then(function (r) {
        return r.ok ? r.text() : null;
      }).then(function (html) {
        if (html !== null && html !== section.innerHTML) { section.innerHTML = html; }
      }).catch(function () {});
    }, 1000);
  });

  function show(form, text, ok) {
    var out = form.querySelector(".result") || form.parentNode.querySelector(".result");
    if (!out) { out = document.createElement("div"); form.appendChild(out); }
    out.className = "result " + (ok ? "ok" : "bad");
    out.textContent = text;
  }

  document.addEventListener("submit", function (e) {
    var form = e.target;
    // Copy buttons: POST (with the token) for the text, then put it on the clipboard.
    if (form.hasAttribute("data-copy")) {
      e.preventDefault();
      fetch(form.action, { method: "POST", body: new URLSearchParams(new FormData(form)) })
        .then(function (r) { return r.text().then(function (t) { return [r.ok, t]; }); })
        .then(function (res) {
          var pre = form.parentNode.querySelector("pre.copied");
          if (!pre) { pre = document.createElement("pre"); pre.className = "copied"; form.parentNode.appendChild(pre); }
          pre.textContent = res[1];
          if (res[0] && navigator.clipboard) { navigator.clipboard.writeText(res[1]).catch(function () {}); }
        });
      return;
    }
    // Dashboard actions: JSON bodies with the page's token, same origin only.
    if (form.hasAttribute("data-json")) {
      e.preventDefault();
      var body = {};
      new FormData(form).forEach(function (v, k) { body[k] = v; });
      body.token = token;
      fetch(form.getAttribute("data-json"), {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-Paymobctl-Token": token },
        body: JSON.stringify(body)
      }).then(function (r) {
        return r.json().then(function (j) { show(form, j.message || j.detail || JSON.stringify(j), r.ok); });
      }).catch(function (err) { show(form, String(err), false); });
    }
  });
})();
