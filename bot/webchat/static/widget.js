/* Council Responder web chat widget (docs/webchat-widget.md, protocol: docs/webchat.md).
 *
 * Embed: <script src="https://<edge>/webchat/widget.js" data-council="<id>" defer></script>
 * Optional: data-lang="cy" (else the page's <html lang>). Self-contained: no framework, no
 * third-party requests, no innerHTML and no style attributes (the council's CSP allows the
 * edge's origin for script-src, style-src and connect-src). Wording: STRINGS below.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || !script.src || window.__councilResponderWidget) return;
  window.__councilResponderWidget = true;

  /* Every word the widget shows. A translation adds a table; missing keys fall back to en. */
  var STRINGS = {
    en: {
      launcher: "Chat with us",
      launcherUnread: "Chat with us ({n} new)",
      title: "Chat with {name}",
      close: "Close chat",
      end: "End chat",
      messages: "Messages",
      inputLabel: "Your message",
      send: "Send",
      you: "You",
      agentName: "{agent}",
      connecting: "Connecting…",
      withBot: "You're chatting with {name}'s automated assistant.",
      waiting: "Waiting for a member of the team to reply.",
      withAgent: "You're now talking to {agent}.",
      withAdviser: "You're now talking to an adviser.",
      ended: "This chat has ended.",
      typing: "{agent} is typing…",
      adviserTyping: "An adviser is typing…",
      adviser: "Adviser",
      offline: "You're offline. The chat will reconnect when you're back online.",
      lost: "The connection was lost.",
      retry: "Try again",
      error: "Sorry, something went wrong.",
      notSent: "Not sent.",
      sending: "Sending…",
      tooLong: "Your message is too long: at most {n} characters.",
      tooMany: "You're sending messages too quickly. Please wait {n} seconds and try again.",
      closedAt: "Our team is away now. A person will reply from {when}. The assistant can still help.",
      closed: "Our team is away now. The assistant can still help.",
      continueOffer: "Get the reply on your phone",
      continueIntro:
        "We'll text you a code to check the number is yours. Replies in this chat will also go to that number.",
      channelLegend: "Send replies by",
      sms: "Text message (SMS)",
      whatsapp: "WhatsApp",
      phoneLabel: "Mobile number",
      phoneHint: "For example, 07700 900123",
      sendCode: "Send code",
      codeLabel: "6-digit code",
      codeHint: "We sent it to {phone}.",
      confirm: "Confirm",
      cancel: "Cancel",
      continued: "Replies will also be sent to your phone.",
      badPhone: "Enter a UK mobile number, like 07700 900123.",
      badCode: "That code is not right. Check it and try again.",
      codeExpired: "That code can't be used any more. Ask for a new code.",
      photoLabel: "Add a photo",
      photoHint: "{types}, up to {size}.",
      sendPhoto: "Send photo",
      badType: "That file can't be sent. Choose a photo ({types}).",
      tooBig: "That photo is too big. Choose one under {size}.",
      photo: "[photo]",
      shareLocation: "Share my location",
      locating: "Finding your location…",
      locationShared: "Location shared: {lat}, {lon}",
      locationDenied:
        "Your browser didn't let the chat use your location. Type the postcode or street instead, or allow location for this site in your browser's settings and try again.",
      locationUnavailable: "Your location couldn't be found. Type the postcode or street instead, or try again.",
      locationTimeout: "Finding your location took too long. Try again, or type the postcode or street instead.",
      transcriptTitle: "Your chat",
      transcriptHeader: "Chat with {name}, {date}",
      copy: "Copy transcript",
      copied: "Transcript copied.",
      download: "Download transcript",
      newChat: "Start a new chat",
    },
    /* Welsh: written for the demo, NOT yet checked by a native speaker (docs/welsh.md). */
    cy: {
      launcher: "Sgwrsiwch â ni",
      launcherUnread: "Sgwrsiwch â ni ({n} newydd)",
      title: "Sgwrs gyda {name}",
      close: "Cau'r sgwrs",
      end: "Gorffen y sgwrs",
      messages: "Negeseuon",
      inputLabel: "Eich neges",
      send: "Anfon",
      you: "Chi",
      connecting: "Yn cysylltu…",
      withBot: "Rydych chi'n sgwrsio â chynorthwyydd awtomatig {name}.",
      waiting: "Yn aros i aelod o'r tîm ateb.",
      withAgent: "Rydych chi nawr yn siarad â {agent}.",
      withAdviser: "Rydych chi nawr yn siarad ag ymgynghorydd.",
      ended: "Mae'r sgwrs hon wedi dod i ben.",
      typing: "Mae {agent} yn teipio…",
      adviserTyping: "Mae ymgynghorydd yn teipio…",
      adviser: "Ymgynghorydd",
      offline: "Rydych chi all-lein. Bydd y sgwrs yn ailgysylltu pan fyddwch chi ar-lein eto.",
      lost: "Collwyd y cysylltiad.",
      retry: "Rhoi cynnig arall arni",
      error: "Mae'n ddrwg gennym, aeth rhywbeth o'i le.",
      notSent: "Heb ei hanfon.",
      sending: "Yn anfon…",
      tooLong: "Mae eich neges yn rhy hir: {n} nod ar y mwyaf.",
      tooMany: "Rydych chi'n anfon negeseuon yn rhy gyflym. Arhoswch {n} eiliad a rhowch gynnig arall arni.",
      closedAt: "Nid yw ein tîm ar gael nawr. Bydd person yn ateb o {when} ymlaen. Gall y cynorthwyydd helpu o hyd.",
      closed: "Nid yw ein tîm ar gael nawr. Gall y cynorthwyydd helpu o hyd.",
      continueOffer: "Cael yr ateb ar eich ffôn",
      continueIntro:
        "Byddwn yn anfon cod atoch mewn neges destun i wirio mai chi piau'r rhif. Bydd atebion yn y sgwrs hon hefyd yn mynd i'r rhif hwnnw.",
      channelLegend: "Anfon atebion drwy",
      sms: "Neges destun (SMS)",
      phoneLabel: "Rhif ffôn symudol",
      phoneHint: "Er enghraifft, 07700 900123",
      sendCode: "Anfon cod",
      codeLabel: "Cod 6 digid",
      codeHint: "Fe'i hanfonwyd at {phone}.",
      confirm: "Cadarnhau",
      cancel: "Canslo",
      continued: "Bydd atebion hefyd yn cael eu hanfon i'ch ffôn.",
      badPhone: "Rhowch rif ffôn symudol yn y DU, fel 07700 900123.",
      badCode: "Nid yw'r cod yna'n gywir. Gwiriwch ef a rhowch gynnig arall arni.",
      codeExpired: "Does dim modd defnyddio'r cod yna bellach. Gofynnwch am god newydd.",
      photoLabel: "Ychwanegu llun",
      photoHint: "{types}, hyd at {size}.",
      sendPhoto: "Anfon llun",
      badType: "Does dim modd anfon y ffeil yna. Dewiswch lun ({types}).",
      tooBig: "Mae'r llun yna'n rhy fawr. Dewiswch un llai na {size}.",
      photo: "[llun]",
      shareLocation: "Rhannu fy lleoliad",
      locating: "Yn dod o hyd i'ch lleoliad…",
      locationShared: "Rhannwyd y lleoliad: {lat}, {lon}",
      locationDenied:
        "Wnaeth eich porwr ddim gadael i'r sgwrs ddefnyddio eich lleoliad. Teipiwch y cod post neu'r stryd yn lle hynny, neu caniatewch leoliad i'r wefan hon yng ngosodiadau eich porwr a rhowch gynnig arall arni.",
      locationUnavailable: "Doedd dim modd dod o hyd i'ch lleoliad. Teipiwch y cod post neu'r stryd yn lle hynny, neu rhowch gynnig arall arni.",
      locationTimeout: "Cymerodd hi'n rhy hir i ddod o hyd i'ch lleoliad. Rhowch gynnig arall arni, neu teipiwch y cod post neu'r stryd yn lle hynny.",
      transcriptTitle: "Eich sgwrs",
      transcriptHeader: "Sgwrs gyda {name}, {date}",
      copy: "Copïo'r trawsgrifiad",
      copied: "Copïwyd y trawsgrifiad.",
      download: "Lawrlwytho'r trawsgrifiad",
      newChat: "Dechrau sgwrs newydd",
    },
  };

  var edge = new URL(script.src).origin;
  var council = script.getAttribute("data-council") || "";
  var pageLang = (script.getAttribute("data-lang") || document.documentElement.lang || "en")
    .slice(0, 2)
    .toLowerCase();
  var lang = STRINGS[pageLang] ? pageLang : "en";
  var storeKey = "council-responder:" + council;

  function t(key, values) {
    var text = STRINGS[lang][key] || STRINGS.en[key] || key;
    return text.replace(/\{(\w+)\}/g, function (whole, name) {
      return values && values[name] !== undefined ? String(values[name]) : whole;
    });
  }

  /* ---- small DOM helpers (no innerHTML anywhere: every text goes in as text) ---- */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    var name;
    for (name in attrs || {}) {
      if (attrs[name] === true) node.setAttribute(name, "");
      else if (attrs[name] !== false && attrs[name] !== null && attrs[name] !== undefined)
        node.setAttribute(name, attrs[name]);
    }
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }
  function button(text, cls, onClick) {
    var node = el("button", { type: "button", class: cls }, [text]);
    node.addEventListener("click", onClick);
    return node;
  }
  function show(node, visible) {
    node.hidden = !visible;
  }
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }
  function uid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) {
      return (x + 256).toString(16).slice(1);
    });
    return [h.slice(0, 4), h.slice(4, 6), h.slice(6, 8), h.slice(8, 10), h.slice(10)]
      .map(function (p) {
        return p.join("");
      })
      .join("-");
  }

  /* ---- storage: the conversation token in sessionStorage only (no cookies) ---- */
  var memory = {};
  function load() {
    try {
      return JSON.parse(sessionStorage.getItem(storeKey) || "{}") || {};
    } catch (e) {
      return memory;
    }
  }
  function save(values) {
    var current = load();
    Object.keys(values).forEach(function (k) {
      current[k] = values[k];
    });
    memory = current;
    try {
      sessionStorage.setItem(storeKey, JSON.stringify(current));
    } catch (e) {
      /* storage refused: the conversation lasts as long as this page */
    }
  }
  function forget() {
    memory = {};
    try {
      sessionStorage.removeItem(storeKey);
    } catch (e) {
      /* nothing stored */
    }
  }

  /* Event ids are Redis stream ids ("1700000000000-0") or integers: compare part by part. */
  function idAfter(a, b) {
    var x = String(a).split("-").map(Number);
    var y = String(b).split("-").map(Number);
    for (var i = 0; i < Math.max(x.length, y.length); i++) {
      if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) > (y[i] || 0);
    }
    return false;
  }

  /* ---- colours: only #rrggbb pairs with enough contrast (WCAG 1.4.3) are used ---- */
  function luminance(hex) {
    var c = [1, 3, 5].map(function (i) {
      var v = parseInt(hex.slice(i, i + 2), 16) / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }
  function contrast(a, b) {
    var la = luminance(a);
    var lb = luminance(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }
  function applyColours(colours) {
    var hex = /^#[0-9a-f]{6}$/i;
    if (!colours || !hex.test(colours.primary || "") || !hex.test(colours.on_primary || "")) return;
    if (contrast(colours.primary, colours.on_primary) < 4.5 || contrast(colours.primary, "#ffffff") < 3) {
      if (window.console) console.warn("Council Responder: colours.primary lacks contrast; using the defaults");
      return;
    }
    /* CSSOM custom properties: allowed by a CSP without 'unsafe-inline' (no style attribute) */
    root.style.setProperty("--crw-primary", colours.primary);
    root.style.setProperty("--crw-on-primary", colours.on_primary);
  }

  function pageAllowed(pages) {
    if (!pages || !pages.length) return true;
    return pages.some(function (glob) {
      var pattern = String(glob)
        .split("*")
        .map(function (part) {
          return part.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
        })
        .join(".*");
      return new RegExp("^" + pattern + "$").test(location.pathname);
    });
  }

  function sizeText(bytes) {
    return bytes >= 1048576 ? Math.round(bytes / 104857.6) / 10 + " MB" : Math.round(bytes / 1024) + " KB";
  }
  function typeText(types) {
    return types
      .map(function (type) {
        return type.split("/")[1].toUpperCase();
      })
      .join(", ");
  }
  function timeText(iso, withDay) {
    var date = iso ? new Date(iso) : new Date();
    if (isNaN(date.getTime())) date = new Date();
    var options = withDay
      ? { weekday: "long", day: "numeric", month: "long", hour: "numeric", minute: "2-digit" }
      : { hour: "2-digit", minute: "2-digit" };
    return date.toLocaleString(lang === "cy" ? "cy-GB" : "en-GB", options);
  }

  /* Text with https:, tel: and mailto: links made into links; everything else stays text. */
  function linked(text) {
    var out = document.createDocumentFragment();
    var pattern = /(https:\/\/[^\s<>"]+[^\s<>".,;:!?)]|tel:[+\d][\d ]*\d|mailto:[^\s<>"]+[^\s<>".,;:!?)])/g;
    var last = 0;
    var match;
    while ((match = pattern.exec(text))) {
      out.appendChild(document.createTextNode(text.slice(last, match.index)));
      out.appendChild(el("a", { href: match[0].replace(/ /g, "") }, [match[0]]));
      last = match.index + match[0].length;
    }
    out.appendChild(document.createTextNode(text.slice(last)));
    return out;
  }

  /* ---- state ---- */
  var config = null;
  var state = "bot";
  var agentName = "";
  var openNow = true;
  var nextOpen = null;
  var transcript = [];
  var unread = 0;
  var lastEventId = null;
  var announceAfter = null;
  var stream = null;
  var retryTimer = null;
  var retryDelay = 1000;
  var typingTimer = null;
  var pending = {};

  /* ---- the DOM ---- */
  var root = el("div", { class: "crw", lang: lang });
  var launcherText = el("span", {}, [t("launcher")]);
  var launcher = el("button", {
    type: "button",
    class: "crw-launcher",
    "aria-expanded": "false",
    "aria-controls": "crw-panel",
  }, [launcherText]);
  var title = el("h2", { id: "crw-title", class: "crw-title" });
  var status = el("p", { class: "crw-status", role: "status" });
  var closeButton = button(t("close"), "crw-close", function () {
    closePanel(true);
  });
  var endButton = button(t("end"), "crw-end crw-secondary", endChat);
  var notice = el("div", { class: "crw-notice" });
  var noticeBody = el("div", { class: "crw-notice-body" });
  var list = el("ol", { class: "crw-messages" });
  var scroller = el("div", { class: "crw-scroll", role: "region", "aria-label": t("messages"), tabindex: "0" }, [list]);
  var typing = el("p", { class: "crw-typing" });
  var problem = el("div", { class: "crw-problem", role: "alert" });
  var upload = el("div", { class: "crw-upload" });
  var locate = el("div", { class: "crw-upload crw-locate" });
  var input = el("input", { id: "crw-input", type: "text", autocomplete: "off", class: "crw-input" });
  var sendButton = el("button", { type: "submit", class: "crw-send" }, [t("send")]);
  var form = el("form", { class: "crw-form", novalidate: true }, [
    el("label", { for: "crw-input", class: "crw-label" }, [t("inputLabel")]),
    el("div", { class: "crw-row" }, [input, sendButton]),
  ]);
  var chat = el("div", { class: "crw-chat" }, [notice, scroller, typing, problem, upload, locate, form]);
  var ended = el("div", { class: "crw-ended" });
  var panel = el("div", {
    id: "crw-panel",
    class: "crw-panel",
    role: "dialog",
    "aria-labelledby": "crw-title",
    hidden: true,
  }, [
    el("div", { class: "crw-head" }, [
      title,
      el("div", { class: "crw-actions" }, [endButton, closeButton]),
      status,
    ]),
    chat,
    ended,
  ]);
  /* The one polite live region: it receives only the newest message (one announcement each). */
  var announcer = el("div", { class: "crw-sr", "aria-live": "polite", "aria-atomic": "true" });
  root.appendChild(launcher);
  root.appendChild(panel);
  root.appendChild(announcer);

  /* ---- status line ---- */
  var shownStatus = "";
  function setStatus(text, withRetry) {
    root.setAttribute("data-state", withRetry ? "offline" : state);
    if (shownStatus === text + !!withRetry) return; /* unchanged: no second announcement */
    shownStatus = text + !!withRetry;
    clear(status);
    status.appendChild(document.createTextNode(text));
    if (withRetry) {
      status.appendChild(document.createTextNode(" "));
      status.appendChild(button(t("retry"), "crw-link", function () {
        connect(true);
      }));
    }
  }
  function stateText() {
    if (state === "agent") return agentName ? t("withAgent", { agent: agentName }) : t("withAdviser");
    if (state === "waiting") return t("waiting");
    if (state === "ended") return t("ended");
    return t("withBot", { name: config.name });
  }
  function showProblem(text, retry) {
    clear(problem);
    if (!text) return show(problem, false);
    problem.appendChild(el("p", {}, [text]));
    if (retry) problem.appendChild(button(t("retry"), "crw-secondary", retry));
    show(problem, true);
  }

  var noticeShown = "";
  function renderNotice(force) {
    var shown = [openNow, nextOpen, state === "ended", !!load().continued].join();
    if (shown === noticeShown && force !== true) return; /* keep a form being filled in */
    noticeShown = shown;
    clear(notice);
    show(notice, !openNow && state !== "ended");
    if (openNow) return;
    notice.appendChild(el("p", {}, [nextOpen ? t("closedAt", { when: timeText(nextOpen, true) }) : t("closed")]));
    notice.appendChild(noticeBody);
    clear(noticeBody);
    var channels = (config.continue_channels || []).filter(function (c) {
      return c === "sms" || c === "whatsapp";
    });
    if (!channels.length) return;
    if (load().continued) {
      noticeBody.appendChild(el("p", {}, [t("continued")]));
      return;
    }
    var offer = el("button", { type: "button", class: "crw-secondary", "aria-expanded": "false" }, [t("continueOffer")]);
    noticeBody.appendChild(offer);
    offer.addEventListener("click", function () {
      offer.setAttribute("aria-expanded", "true");
      offer.hidden = true;
      continueForm(channels);
    });
  }

  /* ---- continue on SMS/WhatsApp: number, then the code sent to it ---- */
  function field(id, label, hint, attrs) {
    attrs.id = id;
    attrs.class = "crw-input";
    if (hint) attrs["aria-describedby"] = id + "-hint";
    var input = el("input", attrs);
    return {
      input: input,
      node: el("div", { class: "crw-field" }, [
        el("label", { for: id, class: "crw-label" }, [label]),
        hint ? el("p", { id: id + "-hint", class: "crw-hint" }, [hint]) : document.createTextNode(""),
        input,
      ]),
    };
  }
  function cancelContinue() {
    renderNotice(true);
    var offer = noticeBody.querySelector("button");
    if (offer) offer.focus();
  }
  function continueForm(channels, message) {
    var error = el("p", { class: "crw-field-error", id: "crw-continue-error", hidden: true });
    var choices = el("fieldset", { class: "crw-choices" }, [el("legend", {}, [t("channelLegend")])]);
    channels.forEach(function (channel, n) {
      choices.appendChild(el("label", { class: "crw-choice" }, [
        el("input", { type: "radio", name: "crw-channel", value: channel, checked: n === 0 }),
        " " + t(channel),
      ]));
    });
    var phone = field("crw-phone", t("phoneLabel"), t("phoneHint"), {
      type: "tel",
      autocomplete: "tel",
      inputmode: "tel",
    });
    var go = el("button", { type: "submit" }, [t("sendCode")]);
    var cancel = button(t("cancel"), "crw-secondary", cancelContinue);
    var stepOne = el("form", { class: "crw-continue", novalidate: true }, [
      el("p", {}, [t("continueIntro")]),
      choices,
      phone.node,
      error,
      el("div", { class: "crw-row" }, [go, cancel]),
    ]);
    function fail(node, input, text) {
      node.textContent = text;
      node.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", (input.getAttribute("aria-describedby") || "") + " " + node.id);
      input.focus();
    }
    stepOne.addEventListener("submit", function (event) {
      event.preventDefault();
      var number = phone.input.value.replace(/[\s()-]/g, "");
      if (!/^(\+44|0)7\d{9}$/.test(number)) return fail(error, phone.input, t("badPhone"));
      var channel = stepOne.querySelector("input[name=crw-channel]:checked").value;
      call("POST", "/webchat/continue", { channel: channel, phone: number }).then(function (response) {
        if (response.status === 400) return fail(error, phone.input, t("badPhone"));
        if (!response.ok) return fail(error, phone.input, problemText(response));
        codeStep(phone.input.value);
      }, function () {
        fail(error, phone.input, t("error"));
      });
    });
    clear(noticeBody);
    noticeBody.appendChild(stepOne);
    if (message) fail(error, phone.input, message);
    phone.input.focus();

    function codeStep(number) {
      var codeError = el("p", { class: "crw-field-error", id: "crw-code-error", hidden: true });
      var code = field("crw-code", t("codeLabel"), t("codeHint", { phone: number }), {
        type: "text",
        inputmode: "numeric",
        autocomplete: "one-time-code",
        maxlength: "6",
      });
      var stepTwo = el("form", { class: "crw-continue", novalidate: true }, [
        code.node,
        codeError,
        el("div", { class: "crw-row" }, [el("button", { type: "submit" }, [t("confirm")]), button(t("cancel"), "crw-secondary", cancelContinue)]),
      ]);
      stepTwo.addEventListener("submit", function (event) {
        event.preventDefault();
        var value = code.input.value.replace(/\s/g, "");
        if (!/^\d{6}$/.test(value)) return fail(codeError, code.input, t("badCode"));
        call("POST", "/webchat/continue/confirm", { code: value }).then(function (response) {
          if (response.status === 429) return continueForm(channels, t("codeExpired"));
          if (!response.ok) return fail(codeError, code.input, response.status === 400 ? t("badCode") : problemText(response));
          save({ continued: true });
          renderNotice(true);
          noticeBody.setAttribute("tabindex", "-1");
          noticeBody.focus();
        }, function () {
          fail(codeError, code.input, t("error"));
        });
      });
      clear(noticeBody);
      noticeBody.appendChild(stepTwo);
      code.input.focus();
    }
  }

  /* ---- HTTP ---- */
  function call(method, path, body, type) {
    var headers = {};
    var token = load().token;
    if (token) headers.Authorization = "Bearer " + token;
    if (body !== undefined && !type) headers["Content-Type"] = "application/json";
    if (type) headers["Content-Type"] = type;
    return fetch(edge + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : type ? body : JSON.stringify(body),
      credentials: "omit",
      mode: "cors",
    }).then(function (response) {
      if (response.status === 401 && token) lostConversation();
      return response;
    });
  }
  function problemText(response) {
    if (response.status === 429) return t("tooMany", { n: response.headers.get("Retry-After") || 30 });
    if (response.status === 413) return t("tooLong", { n: config.limits.max_text_chars });
    return t("error");
  }
  function ensureSession() {
    if (load().token) return Promise.resolve(true);
    return call("POST", "/webchat/sessions", { council: council })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (data) {
        save({ token: data.token, last: null });
        announceAfter = null;
        connect(false);
        return true;
      });
  }

  /* ---- the event stream: fetch streaming (EventSource can't send Authorization) ---- */
  function connect(now) {
    clearTimeout(retryTimer);
    if (stream) stream.abort();
    if (!load().token) return;
    if (now) retryDelay = 1000;
    var controller = new AbortController();
    stream = controller;
    var headers = { Authorization: "Bearer " + load().token };
    if (lastEventId) headers["Last-Event-ID"] = lastEventId;
    var watchdog;
    function alive() {
      clearTimeout(watchdog);
      watchdog = setTimeout(function () {
        controller.abort();
      }, 45000);
    }
    alive();
    fetch(edge + "/webchat/events", { headers: headers, credentials: "omit", mode: "cors", signal: controller.signal })
      .then(function (response) {
        if (response.status === 401) return lostConversation();
        if (!response.ok || !response.body) throw new Error(String(response.status));
        retryDelay = 1000;
        setStatus(stateText());
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) throw new Error("closed");
            alive();
            buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
            var parts = buffer.split("\n\n");
            buffer = parts.pop();
            parts.forEach(dispatch);
            return pump();
          });
        }
        return pump();
      })
      .catch(function () {
        clearTimeout(watchdog);
        if (stream !== controller) return; /* replaced or stopped on purpose */
        stream = null;
        if (!load().token) return;
        setStatus(navigator.onLine === false ? t("offline") : t("lost"), true);
        retryTimer = setTimeout(function () {
          connect(false);
        }, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      });
  }
  function dispatch(block) {
    var id = null;
    var type = "message";
    var data = [];
    block.split("\n").forEach(function (line) {
      if (!line || line.charAt(0) === ":") return;
      var colon = line.indexOf(":");
      var name = colon < 0 ? line : line.slice(0, colon);
      var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (name === "id") id = value;
      else if (name === "event") type = value;
      else if (name === "data") data.push(value);
    });
    if (!data.length) return;
    var payload;
    try {
      payload = JSON.parse(data.join("\n"));
    } catch (e) {
      return;
    }
    if (id) {
      if (lastEventId && !idAfter(id, lastEventId)) return; /* already shown */
      lastEventId = id;
    }
    if (type === "message") onMessage(payload, id);
    else if (type === "typing") onTyping(payload);
    else if (type === "status") onStatus(payload);
    if (id && type !== "typing") save({ last: id });
  }

  function onStatus(data) {
    state = data.state || state;
    agentName = data.agent_name || ""; /* none: "an adviser", never a stale name */
    if (typeof data.open_now === "boolean") openNow = data.open_now;
    if (data.next_open !== undefined) nextOpen = data.next_open;
    if (state === "ended") {
      showTranscript();
      return;
    }
    setStatus(stateText());
    renderNotice();
  }
  function onTyping(data) {
    var who = data.name || agentName;
    typing.textContent = who ? t("typing", { agent: who }) : t("adviserTyping");
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () {
      typing.textContent = "";
    }, 6000);
  }

  function senderName(data) {
    if (data.from === "resident") return t("you");
    if (data.from === "agent") return t("agentName", { agent: data.agent_name || agentName || t("adviser") });
    return config.name;
  }
  function onMessage(data, id) {
    var text = data.text || (data.location ? placeText(data.location) : data.upload_id || data.attachment ? t("photo") : "");
    var item = null;
    if (data.from === "resident") {
      Object.keys(pending).some(function (key) {
        var waiting = pending[key];
        if (key === data.client_id || waiting.serverId === data.id || waiting.text === text) {
          item = waiting.item;
          delete pending[key];
          return true;
        }
        return false;
      });
    }
    if (data.from === "agent") typing.textContent = "";
    var fresh = !item;
    item = item || el("li");
    clear(item);
    item.className = "crw-msg crw-from-" + (data.from || "bot");
    item.appendChild(el("span", { class: "crw-who" }, [senderName(data)]));
    item.appendChild(el("span", { class: "crw-sr" }, [": "]));
    item.appendChild(el("span", { class: "crw-text" }, [linked(text)]));
    if (fresh) list.appendChild(item);
    transcript.push({ who: senderName(data), text: text, at: data.at });

    var buttons = data.buttons || [];
    if (data.from !== "resident") {
      removeChoices();
      if (buttons.length) {
        var group = el("div", { class: "crw-buttons", role: "group", "aria-label": text.slice(0, 80) });
        buttons.forEach(function (choice) {
          group.appendChild(button(choice.title, "crw-choice-button", function () {
            send({ payload: choice.payload, title: choice.title }, choice.title);
          }));
        });
        item.appendChild(group);
      }
      renderUpload(data.upload);
      renderLocate(data.ask_location);
    }
    scroller.scrollTop = scroller.scrollHeight;

    var replayed = announceAfter && id && !idAfter(id, announceAfter);
    if (data.from !== "resident" && !replayed) {
      announce(senderName(data) + ": " + text);
      if (panel.hidden) {
        unread += 1;
        launcherText.textContent = t("launcherUnread", { n: unread });
      }
    }
  }
  function removeChoices() {
    Array.prototype.forEach.call(list.querySelectorAll(".crw-buttons"), function (group) {
      if (group.contains(document.activeElement)) input.focus();
      group.parentNode.removeChild(group);
    });
  }
  function announce(text) {
    announcer.textContent = "";
    setTimeout(function () {
      announcer.textContent = text;
    }, 50);
  }

  /* ---- sending ---- */
  function send(body, shown) {
    body.client_id = body.client_id || uid();
    var item = el("li", { class: "crw-msg crw-from-resident crw-pending" }, [
      el("span", { class: "crw-who" }, [t("you")]),
      el("span", { class: "crw-sr" }, [": "]),
      el("span", { class: "crw-text" }, [shown]),
      el("span", { class: "crw-note" }, [" " + t("sending")]),
    ]);
    list.appendChild(item);
    scroller.scrollTop = scroller.scrollHeight;
    pending[body.client_id] = { item: item, text: shown };
    removeChoices();
    showProblem("");
    deliver(body, item);
  }
  function deliver(body, item) {
    ensureSession()
      .then(function () {
        return call("POST", "/webchat/messages", body);
      })
      .then(function (response) {
        if (!response.ok) {
          failed(body, item, problemText(response));
          return;
        }
        return response.json().then(function (data) {
          if (pending[body.client_id]) pending[body.client_id].serverId = data.id;
          var note = item.querySelector(".crw-note");
          if (note) note.parentNode.removeChild(note);
          item.classList.remove("crw-pending");
        });
      })
      .catch(function () {
        failed(body, item, navigator.onLine === false ? t("offline") : t("error"));
      });
  }
  function failed(body, item, text) {
    var note = item.querySelector(".crw-note");
    if (note) note.textContent = " " + t("notSent");
    root.setAttribute("data-state", "error");
    showProblem(text, function () {
      showProblem("");
      if (note) note.textContent = " " + t("sending");
      deliver(body, item);
    });
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return input.focus();
    var max = config.limits && config.limits.max_text_chars;
    if (max && text.length > max) {
      showProblem(t("tooLong", { n: max }));
      return input.focus();
    }
    input.value = "";
    send({ text: text }, text);
    input.focus();
  });

  /* ---- photo upload, when a message asks for one ---- */
  function renderUpload(request) {
    clear(upload);
    show(upload, !!request);
    if (!request) return;
    var limits = config.limits || {};
    var types = request.accept || limits.upload_types || ["image/jpeg", "image/png"];
    var max = request.max_bytes || limits.max_upload_bytes || 10485760;
    var picker = field("crw-photo", t("photoLabel"), t("photoHint", { types: typeText(types), size: sizeText(max) }), {
      type: "file",
      accept: types.join(","),
    });
    var error = el("p", { class: "crw-field-error", id: "crw-photo-error", hidden: true });
    var go = el("button", { type: "submit" }, [t("sendPhoto")]);
    var photoForm = el("form", { class: "crw-photo", novalidate: true }, [picker.node, error, go]);
    function fail(text) {
      error.textContent = text;
      error.hidden = false;
      picker.input.setAttribute("aria-invalid", "true");
      picker.input.setAttribute("aria-describedby", "crw-photo-hint crw-photo-error");
      picker.input.focus();
    }
    photoForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var file = picker.input.files && picker.input.files[0];
      if (!file || types.indexOf(file.type) < 0) return fail(t("badType", { types: typeText(types) }));
      if (file.size > max) return fail(t("tooBig", { size: sizeText(max) }));
      go.disabled = true;
      ensureSession()
        .then(function () {
          return call("POST", "/webchat/uploads", file, file.type);
        })
        .then(function (response) {
          go.disabled = false;
          if (response.status === 415) return fail(t("badType", { types: typeText(types) }));
          if (response.status === 413) return fail(t("tooBig", { size: sizeText(max) }));
          if (!response.ok) return fail(problemText(response));
          return response.json().then(function (data) {
            clear(upload);
            show(upload, false);
            send({ upload_id: data.upload_id }, t("photo"));
            input.focus();
          });
        })
        .catch(function () {
          go.disabled = false;
          fail(t("error"));
        });
    });
    upload.appendChild(photoForm);
  }

  /* ---- the resident's location, when a message asks where: only on a press of the button ---- */
  function placeText(where) {
    return t("locationShared", { lat: +(+where.latitude).toFixed(5), lon: +(+where.longitude).toFixed(5) });
  }
  function renderLocate(ask) {
    clear(locate);
    show(locate, !!ask);
    if (!ask) return;
    /* never disabled while it works: a disabled button would drop the keyboard focus */
    var share = el("button", { type: "button", "aria-describedby": "crw-locating" }, [t("shareLocation")]);
    var note = el("p", { class: "crw-hint", id: "crw-locating" });
    function done() {
      share.removeAttribute("aria-disabled");
      note.textContent = "";
    }
    function failed(error) {
      if (!locate.contains(share)) return;
      done();
      var text = error.code === 1 ? t("locationDenied") : error.code === 3 ? t("locationTimeout") : t("locationUnavailable");
      list.appendChild(el("li", { class: "crw-msg crw-from-widget" }, [el("span", { class: "crw-text" }, [text])]));
      scroller.scrollTop = scroller.scrollHeight;
      announce(text);
    }
    share.addEventListener("click", function () {
      if (share.getAttribute("aria-disabled")) return;
      if (!navigator.geolocation) return failed({ code: 2 });
      share.setAttribute("aria-disabled", "true");
      note.textContent = t("locating");
      navigator.geolocation.getCurrentPosition(
        function (position) {
          var where = { latitude: position.coords.latitude, longitude: position.coords.longitude };
          if (!locate.contains(share)) return; /* the chat moved on (a place was typed): not sent */
          done();
          renderLocate(false);
          send({ location: { latitude: +where.latitude.toFixed(5), longitude: +where.longitude.toFixed(5) } }, placeText(where));
          input.focus();
        },
        failed,
        { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 }
      );
    });
    locate.appendChild(share);
    locate.appendChild(note);
  }

  /* ---- ending the chat and the transcript ---- */
  function transcriptText() {
    var lines = [t("transcriptHeader", { name: config.name, date: timeText(null, true) }), ""];
    transcript.forEach(function (line) {
      lines.push("[" + timeText(line.at) + "] " + line.who + ": " + line.text);
    });
    return lines.join("\n") + "\n";
  }
  function endChat() {
    if (!load().token) return showTranscript();
    call("POST", "/webchat/end").then(function (response) {
      if (response.ok || response.status === 401) showTranscript();
      else showProblem(problemText(response), endChat);
    }, function () {
      showProblem(t("error"), endChat);
    });
  }
  function lostConversation() {
    if (stream) stream.abort();
    stream = null;
    showTranscript();
  }
  function showTranscript() {
    var text = transcriptText();
    if (stream) stream.abort();
    stream = null;
    clearTimeout(retryTimer);
    forget();
    state = "ended";
    pending = {};
    setStatus(t("ended"));
    show(chat, false);
    show(endButton, false);
    clear(ended);
    var done = el("p", { class: "crw-sr", role: "status" });
    var area = el("textarea", { id: "crw-transcript", class: "crw-transcript", readonly: true, rows: "8" });
    area.value = text;
    var copy = button(t("copy"), "", function () {
      function copied() {
        done.textContent = t("copied");
        done.className = "crw-done";
      }
      if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).then(copied, fallback);
      else fallback();
      function fallback() {
        area.select();
        if (document.execCommand("copy")) copied();
      }
    });
    var download = button(t("download"), "", function () {
      var link = el("a", {
        href: URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" })),
        download: "chat-" + council + "-" + new Date().toISOString().slice(0, 10) + ".txt",
      });
      document.body.appendChild(link);
      link.click();
      document.body.removeChild(link);
      setTimeout(function () {
        URL.revokeObjectURL(link.href);
      }, 1000);
    });
    var again = button(t("newChat"), "crw-secondary", startAgain);
    ended.appendChild(el("h3", { class: "crw-subtitle" }, [el("label", { for: "crw-transcript" }, [t("transcriptTitle")])]));
    [area, el("div", { class: "crw-row crw-wrap" }, [copy, download]), done, again].forEach(function (node) {
      ended.appendChild(node);
    });
    show(ended, true);
    if (panel.contains(document.activeElement) || !panel.hidden) copy.focus();
  }
  function startAgain() {
    clear(list);
    clear(ended);
    show(ended, false);
    show(chat, true);
    show(endButton, true);
    transcript = [];
    lastEventId = null;
    announceAfter = null;
    state = "bot";
    greet();
    setStatus(stateText());
    renderNotice();
    input.focus();
  }
  function greet() {
    if (!config.greeting) return;
    list.appendChild(el("li", { class: "crw-msg crw-from-bot" }, [
      el("span", { class: "crw-who" }, [config.name]),
      el("span", { class: "crw-sr" }, [": "]),
      el("span", { class: "crw-text" }, [linked(config.greeting)]),
    ]));
  }

  /* ---- open and close: a non-modal dialog; Escape closes and focus returns ---- */
  function openPanel(focus) {
    show(panel, true);
    launcher.setAttribute("aria-expanded", "true");
    root.classList.add("crw-open");
    unread = 0;
    launcherText.textContent = t("launcher");
    save({ open: true });
    scroller.scrollTop = scroller.scrollHeight;
    if (focus) (chat.hidden ? ended.querySelector("button") : input).focus();
  }
  function closePanel(focus) {
    show(panel, false);
    launcher.setAttribute("aria-expanded", "false");
    root.classList.remove("crw-open");
    save({ open: false });
    if (focus) launcher.focus();
  }
  launcher.addEventListener("click", function () {
    if (panel.hidden) openPanel(true);
    else closePanel(true);
  });
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape" || event.key === "Esc") {
      event.preventDefault();
      closePanel(true);
    }
  });
  /* Full screen (phones, high zoom) the panel would hide whatever the page focuses next
     (WCAG 2.4.11): when focus leaves for the page, the panel makes way (the chat goes on). */
  document.addEventListener("focusin", function (event) {
    if (panel.hidden || root.contains(event.target)) return;
    var box = panel.getBoundingClientRect();
    if (box.width >= window.innerWidth && box.height >= window.innerHeight) closePanel(false);
  });
  window.addEventListener("online", function () {
    if (load().token) connect(true); /* a stream that outlived the outage may be stale */
  });
  window.addEventListener("offline", function () {
    if (load().token) setStatus(t("offline"), true);
  });

  /* ---- start: stylesheet, config, then the launcher (and any conversation) ---- */
  function start(data) {
    config = data;
    if (!config.name) return;
    var stored = load();
    if (!pageAllowed(config.pages) && !stored.token) return;
    openNow = config.open_now !== false;
    nextOpen = config.next_open || null;
    applyColours(config.colours);
    title.textContent = t("title", { name: config.name });
    greet();
    setStatus(stored.token ? t("connecting") : stateText());
    renderNotice();
    show(problem, false);
    show(upload, false);
    show(locate, false);
    show(ended, false);
    document.body.appendChild(root);
    if (stored.token) {
      announceAfter = stored.last || null; /* the replay of what was already shown is not announced */
      connect(true);
    }
    if (stored.open) openPanel(false);
  }
  var stylesheet = el("link", { rel: "stylesheet", href: edge + "/webchat/widget.css" });
  var styled = new Promise(function (resolve) {
    stylesheet.addEventListener("load", resolve);
    stylesheet.addEventListener("error", resolve);
  });
  document.head.appendChild(stylesheet);
  fetch(edge + "/webchat/config?council=" + encodeURIComponent(council), { credentials: "omit", mode: "cors" })
    .then(function (response) {
      if (!response.ok) throw new Error(String(response.status));
      return response.json();
    })
    .then(function (data) {
      return styled.then(function () {
        if (document.body) start(data);
        else document.addEventListener("DOMContentLoaded", function () {
          start(data);
        });
      });
    })
    .catch(function (error) {
      if (window.console) console.warn("Council Responder: chat unavailable", error);
    });
})();
