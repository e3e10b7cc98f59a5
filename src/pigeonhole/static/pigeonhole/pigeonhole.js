/*
 * django-pigeonhole live client: plain JavaScript, no dependencies, no build step.
 *
 * Include it on pages for logged-in users:
 *
 *   <script src="{% static 'pigeonhole/pigeonhole.js' %}" defer
 *           data-stream-url="{% url 'pigeonhole:stream' %}"
 *           data-count-url="{% url 'pigeonhole:count' %}"
 *           data-read-url="{% url 'pigeonhole:read' 0 %}"></script>
 *
 * It opens the event stream (or polls the count endpoint when the server cannot stream),
 * reconnects with backoff, updates every [data-pigeonhole-unread] badge, inserts new messages
 * into [data-pigeonhole-messages] as text (never as HTML), announces them in an aria-live
 * region, and marks messages read from [data-pigeonhole-read="<id>"] buttons with the CSRF
 * token. Tabs of one browser share one stream: the tab holding a Web Lock is the leader and
 * relays events to the others over a BroadcastChannel.
 *
 * The bundled templates ({% pigeonhole_scripts %} writes the tag and a JSON config beside it)
 * add: forms marked [data-pigeonhole-action] are sent with fetch and the page is changed in place
 * (rows of [data-pigeonhole-entry] marked read, removed, focus moved to a neighbour); a list with
 * [data-pigeonhole-template="<id>"] clones that <template> for each new message and fills its
 * [data-pigeonhole-field] nodes as text; [data-pigeonhole-keyboard] lists answer j/k/e/Shift+I/
 * Shift+U; alerts with [data-pigeonhole-close-timeout] close themselves.
 *
 * Sites hook in through DOM events on document: "pigeonhole:message" (detail: the message),
 * "pigeonhole:count" (detail: {unread}, and {unseen} where badges count unseen messages), "pigeonhole:change" (detail: {event, ids}, or
 * {event, thread} for "muted" and "unmuted") and
 * "pigeonhole:reset" (detail: {reason}; refetch what the page shows).
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var config = {
    streamUrl: script && script.dataset.streamUrl,
    countUrl: script && script.dataset.countUrl,
    readUrl: script && script.dataset.readUrl,
    badge: "unread",
    strings: {},
    colors: {},
  };
  // Words and colours from the JSON beside the tag: data, not code, so CSP allows it.
  var configNode = document.getElementById("pigeonhole-config");
  if (configNode) {
    try {
      var extra = JSON.parse(configNode.textContent);
      config.strings = extra.strings || {};
      config.colors = extra.colors || {};
      config.badge = extra.badge === "unseen" ? "unseen" : "unread";
    } catch (e) {
      /* a broken config leaves the defaults: English-less but working */
    }
  }
  var CHANNEL = "pigeonhole";
  var BACKOFF_MIN = 1000;
  var BACKOFF_MAX = 60000;
  var RETRY_AFTER_MAX = 3600000; // a server asking for more than an hour is taken at an hour
  // A dropped stream is reopened at a random moment within this many milliseconds: when a
  // deploy drops every stream at once, the reconnections (and their replays) spread out.
  var RECONNECT_SPREAD = 3000;
  // Count events heard from the stream: an action's answer that comes back after one of
  // them carries an older count than the page shows.
  var liveCounts = 0;
  var STATE_EVENTS = ["read", "unread", "archived", "unarchived", "deleted", "seen", "saved", "unsaved"];
  var THREAD_EVENTS = ["muted", "unmuted"];

  var channel = "BroadcastChannel" in window ? new BroadcastChannel(CHANNEL) : null;
  var lastEventId = null;
  var backoff = BACKOFF_MIN;
  var liveRegion = null;

  // ---------------------------------------------------------------- the page

  function emit(name, detail) {
    document.dispatchEvent(new CustomEvent("pigeonhole:" + name, { detail: detail }));
  }

  // Badges show the unread count, or the unseen one where the site says so (BADGE); a badge
  // marked data-pigeonhole-unread="unread" (the inbox's Unread tab) always shows unread.
  function setCount(counts) {
    document.querySelectorAll("[data-pigeonhole-unread]").forEach(function (badge) {
      var kind = badge.getAttribute("data-pigeonhole-unread") === "unread" ? "unread" : config.badge;
      var value = counts[kind];
      if (typeof value !== "number") return; // an action's answer carries no unseen count
      badge.textContent = String(value);
      badge.hidden = value === 0;
    });
    emit("count", counts);
  }

  // The All and Archived tabs' counts, as the server gave them after an action.
  function setTabCounts(counts) {
    document.querySelectorAll("[data-pigeonhole-tab-count]").forEach(function (badge) {
      var value = counts[badge.getAttribute("data-pigeonhole-tab-count")];
      if (typeof value === "number") badge.textContent = String(value);
    });
  }

  // A message that arrived live is one more in the All tab, if it was sent after the page
  // counted (the stream also resends an entry moved back from the archive: counted already).
  function bumpTabCount(key, message) {
    document.querySelectorAll('[data-pigeonhole-tab-count="' + key + '"]').forEach(function (badge) {
      var counted = Date.parse(badge.getAttribute("data-pigeonhole-counted") || "");
      if (!(Date.parse(message.created) > counted)) return;
      badge.textContent = String((Number(badge.textContent) || 0) + 1);
    });
  }

  function announce(text) {
    if (!liveRegion) {
      liveRegion = document.createElement("div");
      liveRegion.setAttribute("aria-live", "polite");
      liveRegion.setAttribute("role", "status");
      liveRegion.className = "pigeonhole-live";
      // Visually hidden, still read by screen readers.
      liveRegion.style.cssText =
        "position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap";
      document.body.appendChild(liveRegion);
    }
    liveRegion.textContent = text;
  }

  function renderMessage(message) {
    var item = document.createElement("li");
    item.className = "list-group-item pigeonhole-message pigeonhole-" + message.level_tag + " " + (message.tags || "");
    item.dataset.pigeonholeId = String(message.id);
    item.dataset.pigeonholeThread = message.thread || "";
    if (message.subject) {
      var subject = document.createElement("strong");
      subject.textContent = message.subject; // text, never HTML
      item.appendChild(subject);
      item.appendChild(document.createTextNode(" "));
    }
    var body = document.createElement(safeUrl(message.url) ? "a" : "span");
    if (safeUrl(message.url)) body.href = safeUrl(message.url);
    body.textContent = message.message;
    item.appendChild(body);
    return item;
  }

  // A path on this site or an http(s) URL; anything else is null (never javascript:).
  // Browsers read "\" as "/" and drop spaces and control characters, so "/\host",
  // "\\host" and " //host" lead to another host like "//host" does: refused as well.
  function safeUrl(url) {
    if (typeof url !== "string" || /[\u0000-\u001f\s]/.test(url)) return null;
    return /^(https?:\/\/|\/(?![\/\\]))/i.test(url) ? url : null;
  }

  function fill(node, field, text) {
    var target = node.querySelector('[data-pigeonhole-field="' + field + '"]');
    if (target) target.textContent = text || ""; // text, never HTML
    return target;
  }

  function show(node, field, visible) {
    var target = node.querySelector('[data-pigeonhole-field="' + field + '"]');
    if (target) target.hidden = !visible;
    return target;
  }

  // A row like the server's: a clone of the page's <template>, its placeholder id 0 replaced.
  function cloneEntry(template, message) {
    var node = template.content.firstElementChild.cloneNode(true);
    var id = String(message.id);
    node.dataset.pigeonholeId = id;
    node.className = node.className.replace(/\bpigeonhole-(debug|info|success|warning|error)\b/, "pigeonhole-" + message.level_tag);
    node.classList.toggle("pigeonhole-read", Boolean(message.read_at));
    node.classList.toggle("pigeonhole-saved", Boolean(message.saved_at));
    node.classList.remove("pigeonhole-muted"); // a muted thread sends nothing
    node.dataset.pigeonholeThread = message.thread || "";
    node.dataset.pigeonholeSenders = (message.senders || []).join(",");
    [node].concat(Array.prototype.slice.call(node.querySelectorAll("[id], [for], [aria-labelledby]"))).forEach(function (el) {
      ["id", "for", "aria-labelledby"].forEach(function (name) {
        var value = el.getAttribute(name);
        if (value) el.setAttribute(name, value.split("pigeonhole-entry-0-").join("pigeonhole-entry-" + id + "-"));
      });
    });
    node.querySelectorAll("form[action]").forEach(function (form) {
      form.setAttribute("action", form.getAttribute("action").replace(/\/0\/(\w+)\/$/, "/" + encodeURIComponent(id) + "/$1/"));
    });
    node.querySelectorAll('input[name="ids"]').forEach(function (box) {
      box.value = id;
    });
    var level = fill(node, "level_tag", message.level_tag);
    if (level) level.className = level.className.replace(/\btext-bg-\w+/, "text-bg-" + (config.colors[message.level_tag] || "secondary"));
    show(node, "subject", Boolean(message.subject));
    fill(node, "subject", message.subject);
    fill(node, "message", message.message);
    show(node, "sender", Boolean(message.from_user));
    fill(node, "sender_name", message.from_user ? message.from_user.name || message.from_user.username : "");
    show(node, "reply", Boolean(message.from_user));
    show(node, "mute", Boolean(message.thread));
    show(node, "count", message.count > 1);
    fill(node, "count", String(message.count || 1));
    var time = fill(node, "created", config.strings.just_now || "just now");
    if (time) {
      time.setAttribute("datetime", message.created || "");
      time.removeAttribute("title");
    }
    var link = show(node, "url", Boolean(safeUrl(message.url)));
    if (link && link.querySelector("a")) link.querySelector("a").setAttribute("href", safeUrl(message.url) || "#");
    return node;
  }

  // The rows a thread's new message replaces: the one it names, and any other of its thread
  // (a page that missed a message in between shows an older row of the thread).
  function replacedRows(list, message) {
    return Array.prototype.slice.call(list.querySelectorAll("[data-pigeonhole-id]")).filter(function (node) {
      if (node.dataset.pigeonholeId === String(message.id)) return false;
      if (message.replaces != null && node.dataset.pigeonholeId === String(message.replaces)) return true;
      return Boolean(message.thread) && node.dataset.pigeonholeThread === message.thread;
    });
  }

  function showMessage(message) {
    // A thread's row moving to the top is no new row for the All tab.
    if (!document.querySelector('[data-pigeonhole-id="' + message.id + '"]') && message.replaces == null) bumpTabCount("all", message);
    document.querySelectorAll("[data-pigeonhole-messages]").forEach(function (list) {
      if (list.querySelector('[data-pigeonhole-id="' + message.id + '"]')) return;
      replacedRows(list, message).forEach(function (node) {
        node.remove();
      });
      var templateId = list.getAttribute("data-pigeonhole-template");
      var template = templateId && document.getElementById(templateId);
      var node = template ? cloneEntry(template, message) : renderMessage(message);
      list.insertBefore(node, list.firstChild);
      updateEmpty(list);
    });
    announce((message.subject ? message.subject + ": " : "") + message.message);
    emit("message", message);
  }

  function updateEmpty(list) {
    var section = list.closest("[data-pigeonhole-state]") || document;
    var empty = section.querySelector("[data-pigeonhole-empty]");
    if (empty) empty.hidden = list.children.length > 0;
    var bulk = section.querySelector("[data-pigeonhole-bulk]");
    if (bulk) bulk.hidden = list.children.length === 0;
  }

  function entries(list) {
    return Array.prototype.slice.call(list.querySelectorAll("[data-pigeonhole-entry]"));
  }

  // Remove a row; if focus was in it, give focus to its neighbour (or the page's heading).
  function removeEntry(node, neighbour) {
    if (!node.isConnected) return; // the stream's event got here first
    var list = node.parentNode;
    var hadFocus = node.contains(document.activeElement);
    if (!neighbour && list) {
      var rows = entries(list);
      var index = rows.indexOf(node);
      neighbour = rows[index + 1] || rows[index - 1] || null;
    }
    node.remove();
    if (list) updateEmpty(list);
    if (hadFocus || document.activeElement === document.body) {
      if (neighbour && neighbour.isConnected) neighbour.focus();
      else if (document.getElementById("pigeonhole-inbox-title")) document.getElementById("pigeonhole-inbox-title").focus();
    }
  }

  function applyChange(event, ids) {
    ids.forEach(function (id) {
      document.querySelectorAll('[data-pigeonhole-id="' + id + '"]').forEach(function (node) {
        var inArchive = Boolean(node.closest('[data-pigeonhole-state="archived"]'));
        if (event === "deleted" || (event === "archived" && !inArchive) || (event === "unarchived" && inArchive)) {
          removeEntry(node);
        } else if (event === "read" || event === "unread") {
          node.classList.toggle("pigeonhole-read", event === "read");
        } else if (event === "unsaved" && node.closest('[data-pigeonhole-state="saved"]')) {
          removeEntry(node);
        } else if (event === "saved" || event === "unsaved") {
          node.classList.toggle("pigeonhole-saved", event === "saved");
        } else if (event === "seen") {
          node.classList.add("pigeonhole-seen");
        }
      });
    });
    emit("change", { event: event, ids: ids });
  }

  // A thread muted or unmuted: every row of it shows the other button.
  function applyThread(event, thread) {
    if (!thread) return;
    document.querySelectorAll("[data-pigeonhole-thread]").forEach(function (node) {
      if (node.dataset.pigeonholeThread === thread) node.classList.toggle("pigeonhole-muted", event === "muted");
    });
    emit("change", { event: event, thread: thread });
  }

  function handle(event, data) {
    if (event === "message") showMessage(data);
    else if (event === "count") {
      liveCounts++;
      setCount(data);
    }
    else if (event === "reset") emit("reset", data);
    else if (STATE_EVENTS.indexOf(event) !== -1) applyChange(event, data.ids);
    else if (THREAD_EVENTS.indexOf(event) !== -1) applyThread(event, data.thread);
  }

  // Events from the leader tab's stream, relayed to this one with the stream's cursor: a tab
  // that takes the lead when the leader closes resumes from there, and replays what it missed.
  if (channel) {
    channel.onmessage = function (e) {
      if (e.data.cursor) lastEventId = e.data.cursor;
      handle(e.data.event, e.data.data);
    };
  }

  function dispatch(event, data) {
    handle(event, data);
    if (channel) channel.postMessage({ event: event, data: data, cursor: lastEventId });
  }

  // ---------------------------------------------------------------- marking read

  function csrfToken() {
    var field = document.querySelector("[name=csrfmiddlewaretoken]");
    if (field) return field.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function markRead(id) {
    if (!config.readUrl) return Promise.reject(new Error("data-read-url is not set"));
    var url = config.readUrl.replace(/\/0\/read\/$/, "/" + encodeURIComponent(id) + "/read/");
    var liveAtSend = liveCounts;
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    }).then(function (response) {
      if (!response.ok) throw new Error("mark read failed: " + response.status);
      return response.json();
    }).then(function (body) {
      if (liveCounts === liveAtSend) setCount({ unread: body.unread }); // else the stream's is newer
      return body;
    });
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-pigeonhole-read]");
    if (button) {
      e.preventDefault();
      markRead(button.getAttribute("data-pigeonhole-read"));
    }
  });

  // ---------------------------------------------------------------- forms without reloads

  function showError(text) {
    var box = document.querySelector("[data-pigeonhole-error]");
    if (box) {
      box.textContent = text;
      box.hidden = !text;
    }
    if (text) announce(text);
  }

  function closeAlert(node) {
    var next = node.nextElementSibling;
    node.remove();
    if (next && next.matches("[data-pigeonhole-alert]")) next.querySelector("button") && next.querySelector("button").focus();
  }

  // What a successful action does to the page: what the server did, without a reload.
  function afterAction(action, form, body, row) {
    if (action === "close") {
      closeAlert(form.closest("[data-pigeonhole-alert]"));
    } else if (action === "read" || action === "unread") {
      applyChange(action, [row.dataset.pigeonholeId]);
      row.focus(); // the button pressed is hidden now; stay on its row
    } else if (action === "archive" || action === "unarchive" || action === "delete") {
      removeEntry(row);
    } else if (action === "save" || action === "unsave") {
      applyChange(action + "d", [row.dataset.pigeonholeId]);
      if (row.isConnected) row.focus(); // the button pressed is hidden now
    } else if (action === "mute" || action === "unmute") {
      applyThread(action + "d", row.dataset.pigeonholeThread);
      row.focus();
    } else if (action === "read_all") {
      var before = Number(body.get("before"));
      document.querySelectorAll("[data-pigeonhole-entry]").forEach(function (node) {
        if (Number(node.dataset.pigeonholeId) <= before) node.classList.add("pigeonhole-read");
      });
    } else if (action === "bulk") {
      var chosen = body.get("action");
      var event = { read: "read", unread: "unread", archive: "archived", unarchive: "unarchived", delete: "deleted" }[chosen];
      var ids = body.getAll("ids");
      form.querySelectorAll("[data-pigeonhole-select-all]").forEach(function (box) {
        box.checked = false;
      });
      document.querySelectorAll('input[name="ids"]:checked').forEach(function (box) {
        box.checked = false;
      });
      applyChange(event, ids);
    } else if (action === "reply") {
      form.reset();
      var details = form.closest("details");
      if (details) {
        details.open = false;
        details.querySelector("summary").focus();
      }
    }
  }

  var actionsSent = 0;
  var countsShown = 0;

  function submitAction(form, submitter) {
    var action = form.getAttribute("data-pigeonhole-action");
    var body = new FormData(form);
    if (submitter && submitter.name) body.append(submitter.name, submitter.value);
    if (action === "bulk") {
      // Checkboxes belong to the form through form="pigeonhole-bulk", which FormData honours.
      if (!body.getAll("ids").length) {
        showError(config.strings.select_first || "Select at least one message.");
        return Promise.resolve(null);
      }
    }
    var row = form.closest("[data-pigeonhole-entry]");
    var sent = ++actionsSent;
    var liveAtSend = liveCounts;
    // getAttribute: a control named "action" (the bulk form's buttons) shadows form.action.
    return fetch(form.getAttribute("action"), {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: body,
    })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) throw new Error(data.error || config.strings.failed || "Failed");
          return data;
        });
      })
      .then(function (data) {
        showError("");
        // Answers to actions sent at once may come back in any order: counts from an
        // answer older than one already shown would undo it.
        if (sent > countsShown) {
          countsShown = sent;
          // A count the stream sent meanwhile is newer than this answer's: keep it.
          if (typeof data.unread === "number" && liveCounts === liveAtSend) {
            setCount({ unread: data.unread });
          }
          if (data.counts) setTabCounts(data.counts);
        }
        afterAction(action, form, body, row);
        var done = config.strings["done_" + (action === "bulk" ? body.get("action") : action)];
        if (done) announce(done);
        emit("action", { action: action, data: data });
        return data;
      })
      .catch(function (error) {
        showError(error.message || config.strings.failed || "Failed");
      });
  }

  document.addEventListener("submit", function (e) {
    var form = e.target.closest && e.target.closest("form[data-pigeonhole-action]");
    if (!form || !window.fetch) return; // without fetch the form posts and the page reloads
    e.preventDefault();
    submitAction(form, e.submitter);
  });

  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-pigeonhole-dismiss]");
    if (button) closeAlert(button.closest("[data-pigeonhole-alert]"));
  });

  document.addEventListener("change", function (e) {
    if (!e.target.matches("[data-pigeonhole-select-all]")) return;
    var form = e.target.form;
    document.querySelectorAll('input[name="ids"]').forEach(function (box) {
      if (box.form === form) box.checked = e.target.checked;
    });
  });

  function setUpPage() {
    document.querySelectorAll("[data-pigeonhole-dismiss]").forEach(function (button) {
      button.hidden = false; // only useful with a script: a flash message is gone on reload anyway
    });
    document.querySelectorAll("[data-pigeonhole-select-all]").forEach(function (box) {
      box.closest("label").hidden = false;
    });
    document.querySelectorAll("[data-pigeonhole-keys]").forEach(function (hint) {
      hint.hidden = false;
    });
    document.querySelectorAll("[data-pigeonhole-close-timeout]").forEach(function (alert) {
      var seconds = parseFloat(alert.getAttribute("data-pigeonhole-close-timeout"));
      if (!(seconds > 0)) return;
      setTimeout(function () {
        if (!alert.isConnected) return;
        var form = alert.querySelector("form[data-pigeonhole-action]");
        if (form) submitAction(form);
        else closeAlert(alert);
      }, seconds * 1000);
    });
  }

  // ---------------------------------------------------------------- keyboard

  var KEY_ACTIONS = { e: "archive", I: "read", U: "unread" };

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    var target = e.target;
    if (target.closest && target.closest("textarea, select, [contenteditable], input:not([type=checkbox])")) return;
    var list = document.querySelector("[data-pigeonhole-keyboard]");
    if (!list) return;
    var rows = entries(list);
    if (!rows.length) return;
    var current = document.activeElement && document.activeElement.closest && document.activeElement.closest("[data-pigeonhole-entry]");
    var index = rows.indexOf(current);
    if (e.key === "j" || e.key === "k") {
      e.preventDefault();
      var next = index === -1 ? 0 : index + (e.key === "j" ? 1 : -1);
      rows[Math.max(0, Math.min(rows.length - 1, next))].focus();
    } else if (current && KEY_ACTIONS[e.key]) {
      var form = current.querySelector('form[data-pigeonhole-action="' + KEY_ACTIONS[e.key] + '"]');
      if (form) {
        e.preventDefault();
        submitAction(form);
      }
    }
  });

  // ---------------------------------------------------------------- stream and polling

  function retryLater(start, atLeast) {
    var delay = backoff * (0.5 + Math.random() / 2); // jitter: spread reconnecting clients
    backoff = Math.min(backoff * 2, BACKOFF_MAX);
    // Never sooner than the server asked, and still spread out.
    if (atLeast) delay = Math.max(delay, atLeast * (1 + Math.random() / 4));
    setTimeout(start, delay);
  }

  // Retry-After in milliseconds: seconds or an HTTP date (a 503 or 429 sends it); 0 without.
  function retryAfter(response) {
    var value = response.headers.get("Retry-After");
    if (!value) return 0;
    var seconds = Number(value);
    var wait = isNaN(seconds) ? Date.parse(value) - Date.now() : seconds * 1000;
    return wait > 0 ? Math.min(wait, RETRY_AFTER_MAX) : 0;
  }

  function poll() {
    var etag = null;
    function once() {
      var headers = { Accept: "application/json" };
      if (etag) headers["If-None-Match"] = etag;
      fetch(config.countUrl, { credentials: "same-origin", headers: headers })
        .then(function (response) {
          var interval = parseFloat(response.headers.get("X-Poll-Interval")) || 30;
          if (response.status === 200) {
            etag = response.headers.get("ETag");
            return response.json().then(function (body) {
              if (lastEventId && body.cursor !== lastEventId) dispatch("reset", { reason: "poll" });
              lastEventId = body.cursor;
              dispatch("count", { unread: body.unread, unseen: body.unseen });
              return interval;
            });
          }
          if (response.status === 304) return interval;
          var failed = new Error("poll failed: " + response.status);
          failed.retryAfter = retryAfter(response);
          throw failed;
        })
        .then(function (interval) {
          backoff = BACKOFF_MIN;
          setTimeout(once, interval * 1000);
        })
        .catch(function (error) {
          retryLater(once, error && error.retryAfter);
        });
    }
    once();
  }

  function stream() {
    if (!("EventSource" in window)) return poll();
    var url = config.streamUrl;
    if (lastEventId) {
      url += (url.indexOf("?") === -1 ? "?" : "&") + "last_event_id=" + encodeURIComponent(lastEventId);
    }
    var source = new EventSource(url, { withCredentials: true });
    var opened = false;
    ["message", "count", "reset"].concat(STATE_EVENTS, THREAD_EVENTS).forEach(function (name) {
      source.addEventListener(name, function (e) {
        opened = true;
        backoff = BACKOFF_MIN;
        if (e.lastEventId) lastEventId = e.lastEventId;
        dispatch(name, JSON.parse(e.data));
      });
    });
    source.onerror = function () {
      var refused = source.readyState === EventSource.CLOSED;
      // Left to itself, every browser retries after the same fixed delay; reopen instead,
      // ourselves, with the cursor, so that the pages a deploy dropped come back spread out.
      source.close();
      if (refused && !opened && config.countUrl) return poll(); // 204 under WSGI, or 401/429
      if (opened) {
        backoff = BACKOFF_MIN;
        setTimeout(stream, RECONNECT_SPREAD * (0.1 + 0.9 * Math.random()));
      } else {
        retryLater(stream);
      }
    };
  }

  function start() {
    if (!config.streamUrl && !config.countUrl) return;
    var run = config.streamUrl ? stream : poll;
    // One stream per browser: the tab holding the lock leads; the others hear it relayed.
    if (navigator.locks && channel) {
      navigator.locks.request("pigeonhole-leader", function () {
        run();
        return new Promise(function () {}); // held until this tab closes
      });
    } else {
      run();
    }
  }

  window.pigeonhole = { markRead: markRead, submit: submitAction, config: config, safeUrl: safeUrl };
  function ready() {
    setUpPage();
    start();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
