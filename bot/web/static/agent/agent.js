// Agent console: keeps the queue table live and fills the reply box from canned responses.
// No inline scripts (CSP); data is written with textContent only.
(function () {
  "use strict";
  var POLL_MS = 3000;

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function renderQueue(table, data) {
    var body = table.tBodies[0];
    var rows = document.createDocumentFragment();
    data.cases.forEach(function (c) {
      var tr = document.createElement("tr");
      tr.dataset.case = c.case_id;
      if (c.breached) { tr.className = "breached"; }
      var badge = document.createElement("span");
      badge.className = "priority priority-" + c.priority.toLowerCase();
      badge.textContent = c.priority;
      cell(tr, "").appendChild(badge);
      var link = document.createElement("a");
      link.href = c.url;
      link.textContent = c.name;
      cell(tr, "").appendChild(link);
      [c.reason, c.team, c.channel, c.waiting, c.sla, c.holder || "—"].forEach(function (t) {
        cell(tr, t);
      });
      rows.appendChild(tr);
    });
    if (!data.cases.length) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      cell(empty, "No open cases.").colSpan = 8;
      rows.appendChild(empty);
    }
    // Keep keyboard focus on the same case's link across refreshes.
    var focused = document.activeElement && document.activeElement.closest("tr[data-case]");
    var focusedCase = focused ? focused.dataset.case : null;
    body.replaceChildren(rows);
    if (focusedCase) {
      var again = body.querySelector('tr[data-case="' + CSS.escape(focusedCase) + '"] a');
      if (again) { again.focus(); }
    }
    document.getElementById("queue-count").textContent = String(data.count);
  }

  function pollQueue(table) {
    var last = "";
    function tick() {
      fetch(table.dataset.source, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
        .then(function (text) {
          if (text !== last) { last = text; renderQueue(table, JSON.parse(text)); }
        })
        .catch(function () { /* keep the last list; the next tick tries again */ })
        .finally(function () { window.setTimeout(tick, POLL_MS); });
    }
    window.setTimeout(tick, POLL_MS);
  }

  function cannedPickers() {
    document.querySelectorAll("select.canned-picker").forEach(function (select) {
      select.addEventListener("change", function () {
        var box = document.getElementById(select.dataset.target);
        if (select.value && box) {
          box.value = box.value ? box.value + "\n" + select.value : select.value;
          box.focus();
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var table = document.getElementById("queue");
    if (table) { pollQueue(table); }
    cannedPickers();
  });
})();
