// Console session timeout (WCAG 2.2.1 Timing Adjustable): warn two minutes before the idle
// limit signs the user out, let them stay signed in with one button, and when the session has
// ended say so visibly (role="alert") with a link to sign in again. The status check does not
// count as activity on the server; only "Stay signed in" (or typing, see below) extends it.
// Other scripts call window.CouncilSession.signedOut() when a request answers 401, and
// window.CouncilSession.check() before a form is sent. No inline scripts (CSP).
(function () {
  "use strict";
  var WARN_SECONDS = 120;
  var RETRY_MS = 30000;
  var MAX_TIMEOUT_MS = 2147483647;

  var dialog, banner, left, extendButton, dismissButton;
  var deadline = 0;
  var timer = null;
  var countdown = null;
  var ended = false;
  var lastTyped = 0;

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // Asking how long is left is not activity (X-Council-Background); "Stay signed in" is.
  function call(url, method) {
    var headers = { Accept: "application/json", "X-CSRF-Token": csrfToken() };
    if (method === "GET") { headers["X-Council-Background"] = "1"; }
    return fetch(url, { method: method, credentials: "same-origin", headers: headers });
  }

  function spoken(seconds) {
    if (seconds >= 60) {
      var minutes = Math.ceil(seconds / 60);
      return minutes + (minutes === 1 ? " minute" : " minutes");
    }
    return seconds + (seconds === 1 ? " second" : " seconds");
  }

  function stopTimers() {
    window.clearTimeout(timer);
    window.clearInterval(countdown);
    timer = null;
    countdown = null;
  }

  function later(callback, ms) {
    window.clearTimeout(timer);
    timer = window.setTimeout(callback, Math.min(Math.max(ms, 0), MAX_TIMEOUT_MS));
  }

  function signedOut() {
    if (ended || !banner) { return; }
    ended = true;
    stopTimers();
    if (dialog.open) { dialog.close(); }
    var next = window.location.pathname + window.location.search;
    var link = document.createElement("a");
    link.href = banner.dataset.login + "?next=" + encodeURIComponent(next);
    link.textContent = "sign in again";
    var message = document.createElement("strong");
    message.textContent = "You have been signed out";
    // Filled in now, not shown from hidden markup, so screen readers announce the alert.
    banner.replaceChildren(
      message, " — ", link, ". The page has stopped updating. Anything you typed is kept on this device."
    );
    banner.classList.add("shown");
    document.dispatchEvent(new CustomEvent("council:signed-out"));
  }

  function tick() {
    var seconds = Math.round((deadline - Date.now()) / 1000);
    if (seconds <= 0) {
      window.clearInterval(countdown);
      countdown = null;
      check();
      return;
    }
    left.textContent = spoken(seconds);
  }

  function warn() {
    if (!dialog.open) {
      dialog.showModal();
      // At the absolute limit there is nothing to extend: focus the only button left.
      (dialog.classList.contains("final") ? dismissButton : extendButton).focus();
    }
    tick();
    if (countdown === null) { countdown = window.setInterval(tick, 1000); }
  }

  function update(status) {
    deadline = Date.now() + status.expires_in * 1000;
    if (status.expires_in > WARN_SECONDS) {
      window.clearInterval(countdown);
      countdown = null;
      if (dialog.open) { dialog.close(); }
      later(check, (status.expires_in - WARN_SECONDS) * 1000);
      return;
    }
    if (status.extendable && Date.now() - lastTyped < WARN_SECONDS * 1000) {
      extend(); // the user is typing: they are here, so do not interrupt them
      return;
    }
    dialog.classList.toggle("final", !status.extendable);
    warn();
    later(check, status.expires_in * 1000 + 1000);
  }

  function answered(response) {
    if (response.status === 401 || response.status === 403) {
      signedOut();
      return null;
    }
    if (!response.ok) { return Promise.reject(response.status); }
    return response.json();
  }

  function check() {
    if (ended) { return Promise.resolve(false); }
    return call(dialog.dataset.status, "GET")
      .then(answered)
      .then(function (status) {
        if (status) { update(status); }
        return !ended;
      })
      .catch(function () {
        later(check, RETRY_MS); // the console is unreachable: say nothing yet, try again
        return true;
      });
  }

  function extend() {
    return call(dialog.dataset.extend, "POST")
      .then(answered)
      .then(function (status) { if (status) { update(status); } })
      .catch(function () { later(check, RETRY_MS); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    dialog = document.getElementById("session-warning");
    banner = document.getElementById("signed-out");
    if (!dialog || !banner) { return; }
    left = document.getElementById("session-warning-left");
    extendButton = document.getElementById("session-extend");
    extendButton.addEventListener("click", extend);
    dismissButton = document.getElementById("session-dismiss");
    dismissButton.addEventListener("click", function () { dialog.close(); });
    dialog.addEventListener("close", function () {
      window.clearInterval(countdown);
      countdown = null;
    });
    document.addEventListener("input", function () { lastTyped = Date.now(); });
    // Signing out on purpose (a shared desk): typed drafts go too, the next person must not see them.
    document.querySelectorAll("form.signout").forEach(function (form) {
      form.addEventListener("submit", function () {
        Object.keys(window.sessionStorage)
          .filter(function (key) { return key.indexOf("council:draft:") === 0; })
          .forEach(function (key) { window.sessionStorage.removeItem(key); });
      });
    });
    window.CouncilSession = { signedOut: signedOut, check: check };
    check();
  });
})();
