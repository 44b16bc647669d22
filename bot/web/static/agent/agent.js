// Agent console: keeps the queue and the open case live, keeps typed replies and notes in
// sessionStorage (per case) until they are sent, and inserts canned responses only when asked.
// No inline scripts (CSP); data is written with textContent only. Relies on /static/session.js.
(function () {
  "use strict";
  var QUEUE_POLL_MS = 3000;
  var CASE_POLL_MS = 4000;
  var CHANNELS_POLL_MS = 15000;
  var DELIVERY_POLL_MS = 5000;
  var COLUMNS = ["Priority", "Resident", "Reason", "Team", "Channel", "Waiting", "Service level", "Agent"];

  function session() {
    return window.CouncilSession || { signedOut: function () {}, check: function () { return Promise.resolve(true); } };
  }

  // Polls url every ms and hands each changed JSON body to render; stops when signed out.
  function poll(url, ms, render) {
    var last = "";
    var stopped = false;
    document.addEventListener("council:signed-out", function () { stopped = true; });
    function tick() {
      if (stopped) { return; }
      // Polling is not the user doing anything: it must not keep the session alive.
      fetch(url(), {
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-Council-Background": "1" }
      })
        .then(function (response) {
          if (response.status === 401) {
            session().signedOut();
            return Promise.reject(response.status);
          }
          return response.ok ? response.text() : Promise.reject(response.status);
        })
        .then(function (text) {
          if (text !== last) { last = text; render(JSON.parse(text)); }
        })
        .catch(function () { /* keep what is shown; the next tick tries again */ })
        .finally(function () { if (!stopped) { window.setTimeout(tick, ms); } });
    }
    window.setTimeout(tick, ms);
  }

  function cell(row, label, text) {
    var td = document.createElement("td");
    td.dataset.label = label;
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  // A warning symbol (hidden from screen readers) and the words, e.g. "⚠ Reply not delivered".
  function flag(words) {
    var span = document.createElement("span");
    var symbol = document.createElement("span");
    span.className = "delivery-flag";
    symbol.setAttribute("aria-hidden", "true");
    symbol.textContent = "⚠";
    span.append(symbol, " " + words);
    return span;
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
      cell(tr, COLUMNS[0], "").appendChild(badge);
      var link = document.createElement("a");
      link.href = c.url;
      link.textContent = c.name;
      var resident = cell(tr, COLUMNS[1], "");
      resident.appendChild(link);
      if (c.language === "cy") {  // a Welsh conversation: answer in Welsh
        var welsh = document.createElement("span");
        var cymraeg = document.createElement("span");
        welsh.className = "language";
        cymraeg.lang = "cy";
        cymraeg.textContent = "Cymraeg";
        welsh.append("Welsh (", cymraeg, ")");
        resident.append(" ", welsh);
      }
      if (c.delivery_failed) {  // a reply on this case was not delivered
        resident.append(" ", flag("Reply not delivered"));
      }
      [c.reason, c.team, c.channel, c.waiting, c.sla, c.holder || "—"].forEach(function (t, i) {
        cell(tr, COLUMNS[i + 2], t);
      });
      tr.cells[6].className = "sla";
      tr.cells[7].className = "holder";
      rows.appendChild(tr);
    });
    if (!data.cases.length) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      cell(empty, "", "No open cases.").colSpan = COLUMNS.length;
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
    renderCount(data);
  }

  function renderCount(data) {
    var total = data.count;
    var first = data.first || (data.cases.length ? 1 : 0);
    document.getElementById("queue-count").textContent = String(total);
    document.getElementById("queue-noun").textContent = total === 1 ? "open case" : "open cases";
    document.getElementById("queue-shown").textContent = total > data.cases.length
      ? "; showing " + first + " to " + (first + data.cases.length - 1) + ", most urgent first"
      : "";
    var pages = data.pages || 1;
    var page = data.page || 1;
    document.getElementById("queue-pages").hidden = pages <= 1;
    document.getElementById("queue-page").textContent = "Page " + page + " of " + pages;
    document.getElementById("queue-previous").hidden = page <= 1;
    document.getElementById("queue-next").hidden = page >= pages;
  }

  function message(m) {
    var li = document.createElement("li");
    li.className = "message from-" + m.role;
    var who = document.createElement("span");
    who.className = "who";
    who.textContent = m.role;
    var at = document.createElement("span");
    at.className = "muted";
    at.textContent = (m.at || "").slice(11, 16);
    var text = document.createElement("p");
    text.textContent = m.text;
    li.append(who, " ", at, text);
    return li;
  }

  // New messages of the open case arrive without a reload; the count is where the next read starts.
  function followCase(transcript, afterNew) {
    var live = document.getElementById("case-live");
    poll(function () {
      return transcript.dataset.updates + "?after=" + encodeURIComponent(transcript.dataset.count);
    }, CASE_POLL_MS, function (data) {
      var atBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 8;
      var fromResident = 0;
      data.messages.forEach(function (m) {
        transcript.appendChild(message(m));
        if (m.role === "resident") { fromResident += 1; }
      });
      transcript.dataset.count = String(data.total);
      if (data.messages.length) { afterNew(); }
      if (atBottom) { transcript.scrollTop = transcript.scrollHeight; }
      if (fromResident) {
        live.textContent = fromResident === 1
          ? "New message from the resident."
          : fromResident + " new messages from the resident.";
      }
      var status = document.getElementById("case-status");
      if (status && data.status_text && status.textContent !== data.status_text) {
        status.textContent = data.status_text;
      }
    });
  }

  // Each reply's delivery state (queued, sent, delivered, read, not delivered) and the notice of
  // failed ones; applied again when new messages arrive, as the two polls are independent.
  function followDeliveries(transcript) {
    var notice = document.getElementById("delivery-failed");
    var latest = null;
    function state(d) {
      var p = document.createElement("p");
      var symbol = document.createElement("span");
      p.className = "delivery delivery-" + d.status;
      p.dataset.status = d.status;
      symbol.setAttribute("aria-hidden", "true");
      symbol.textContent = d.symbol;
      p.append(symbol, " Delivery: " + d.label + (d.error ? " (" + d.error + ")" : ""));
      return p;
    }
    function apply() {
      if (!latest) { return; }
      var items = transcript.children;
      latest.deliveries.forEach(function (d, i) {
        var li = items[i];
        if (!li) { return; }
        var shown = li.querySelector("p.delivery");
        if (!d) {
          if (shown) { shown.remove(); }
        } else if (!shown) {
          li.appendChild(state(d));
        } else if (shown.textContent !== state(d).textContent) {
          shown.replaceWith(state(d));
        }
      });
    }
    function renderNotice(failures) {
      if (!notice) { return; }
      if (!failures.length) { notice.replaceChildren(); return; }
      var lead = document.createElement("p");
      var strong = document.createElement("strong");
      var symbol = document.createElement("span");
      symbol.setAttribute("aria-hidden", "true");
      symbol.textContent = "⚠";
      strong.append(symbol, failures.length === 1
        ? " A reply was not delivered to the resident."
        : " Replies were not delivered to the resident.");
      lead.append(strong, " Try again, or reach them another way.");
      var list = document.createElement("ul");
      failures.forEach(function (f) {
        var li = document.createElement("li");
        var text = f.text.length > 120 ? f.text.slice(0, 117) + "..." : f.text;
        li.textContent = f.at + " UTC: “" + text + "”: " + f.error + (f.code ? " (code " + f.code + ")" : "");
        list.appendChild(li);
      });
      var next = document.createElement("div");
      next.append(lead, list);
      if (notice.textContent !== next.textContent) { notice.replaceChildren(lead, list); }
    }
    poll(function () { return transcript.dataset.deliveries; }, DELIVERY_POLL_MS, function (data) {
      latest = data;
      apply();
      renderNotice(data.failures);
    });
    return apply;
  }

  // A banner (a polite live region): replies to residents not flowing, or (with its words in
  // data-lead and data-advice) problem reports waiting for the back office.
  function followChannels(banner) {
    poll(function () { return banner.dataset.source; }, CHANNELS_POLL_MS, function (data) {
      if (!data.problems.length) { banner.replaceChildren(); return; }
      var lead = document.createElement("p");
      var strong = document.createElement("strong");
      strong.textContent = banner.dataset.lead || "Replies to residents are not flowing.";
      lead.append(strong, " " + (banner.dataset.advice ||
        "Residents may be waiting for answers: tell your system administrator."));
      var list = document.createElement("ul");
      data.problems.forEach(function (problem) {
        var li = document.createElement("li");
        li.textContent = problem.charAt(0).toUpperCase() + problem.slice(1) + ".";
        list.appendChild(li);
      });
      var next = document.createElement("div");
      next.append(lead, list);
      // the same words again are not announced again
      if (banner.textContent !== next.textContent) { banner.replaceChildren(lead, list); }
    });
  }

  // Typed text survives a reload or signing in again (same tab): kept until it shows up as sent.
  function keepDrafts() {
    document.querySelectorAll("textarea[data-draft]").forEach(function (box) {
      var key = "council:draft:" + box.dataset.draft;
      var saved = window.sessionStorage.getItem(key);
      if (saved) {
        var sent = Array.prototype.some.call(
          document.querySelectorAll(box.dataset.draftSent || "none"),
          function (element) { return element.textContent.trim() === saved.trim(); }
        );
        if (sent) {
          window.sessionStorage.removeItem(key);
        } else if (!box.value) {
          box.value = saved;
        }
      }
      box.addEventListener("input", function () {
        if (box.value.trim()) {
          window.sessionStorage.setItem(key, box.value);
        } else {
          window.sessionStorage.removeItem(key);
        }
      });
    });
  }

  // A form is sent only while the session lives; otherwise the text stays and the notice shows.
  function checkSessionBeforeSending() {
    document.querySelectorAll("form[data-check-session]").forEach(function (form) {
      var confirmed = false;
      form.addEventListener("submit", function (event) {
        if (confirmed) { return; }
        event.preventDefault();
        session().check().then(function (alive) {
          if (alive) {
            confirmed = true;
            form.requestSubmit(event.submitter || undefined);
          }
        });
      });
    });
  }

  // WCAG 3.2.2: moving through the list (arrow keys) changes nothing; Enter or the button inserts.
  function cannedPickers() {
    document.querySelectorAll("select.canned-picker").forEach(function (select) {
      var box = document.getElementById(select.dataset.target);
      function insert() {
        if (!select.value || !box) { return; }
        box.value = box.value ? box.value + "\n" + select.value : select.value;
        box.dispatchEvent(new Event("input", { bubbles: true }));
        box.focus();
      }
      select.addEventListener("keydown", function (event) {
        if (event.key === "Enter") {
          event.preventDefault();
          insert();
        }
      });
      document.querySelectorAll('[data-insert-from="' + select.id + '"]').forEach(function (button) {
        button.addEventListener("click", insert);
      });
    });
  }

  // While the agent types a reply, the resident sees "<agent> is typing" where their channel
  // shows it (the web chat): one background POST at most every TYPING_EVERY_MS.
  var TYPING_EVERY_MS = 3000;
  function tellTyping(box, transcript) {
    var url = transcript.dataset.updates.replace(/\/updates$/, "/typing");
    var meta = document.querySelector('meta[name="csrf-token"]');
    var last = 0;
    box.addEventListener("input", function () {
      var now = Date.now();
      if (!box.value.trim() || now - last < TYPING_EVERY_MS) { return; }
      last = now;
      fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "X-CSRF-Token": meta ? meta.content : "",
          "X-Council-Background": "1"
        }
      }).catch(function () { /* typing is a courtesy: never in the agent's way */ });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var table = document.getElementById("queue");
    if (table) {
      poll(function () { return table.dataset.source; }, QUEUE_POLL_MS, function (data) {
        renderQueue(table, data);
      });
    }
    var transcript = document.getElementById("transcript");
    if (transcript && transcript.dataset.updates) {
      followCase(transcript, transcript.dataset.deliveries ? followDeliveries(transcript) : function () {});
    }
    document.querySelectorAll(".channel-banner[data-source]").forEach(followChannels);
    var reply = document.getElementById("reply-text");
    if (reply && transcript && transcript.dataset.updates) { tellTyping(reply, transcript); }
    keepDrafts();
    checkSessionBeforeSending();
    cannedPickers();
  });
})();
