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
 * Sites hook in through DOM events on document: "pigeonhole:message" (detail: the message),
 * "pigeonhole:count" (detail: {unread}), "pigeonhole:change" (detail: {event, ids}) and
 * "pigeonhole:reset" (detail: {reason}; refetch what the page shows).
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var config = {
    streamUrl: script && script.dataset.streamUrl,
    countUrl: script && script.dataset.countUrl,
    readUrl: script && script.dataset.readUrl,
  };
  var CHANNEL = "pigeonhole";
  var BACKOFF_MIN = 1000;
  var BACKOFF_MAX = 60000;
  var STATE_EVENTS = ["read", "unread", "archived", "unarchived", "deleted"];

  var channel = "BroadcastChannel" in window ? new BroadcastChannel(CHANNEL) : null;
  var lastEventId = null;
  var backoff = BACKOFF_MIN;
  var liveRegion = null;

  // ---------------------------------------------------------------- the page

  function emit(name, detail) {
    document.dispatchEvent(new CustomEvent("pigeonhole:" + name, { detail: detail }));
  }

  function setCount(unread) {
    document.querySelectorAll("[data-pigeonhole-unread]").forEach(function (badge) {
      badge.textContent = String(unread);
      badge.hidden = unread === 0;
    });
    emit("count", { unread: unread });
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
    item.className = "pigeonhole-message " + (message.tags || "");
    item.dataset.pigeonholeId = String(message.id);
    if (message.subject) {
      var subject = document.createElement("strong");
      subject.textContent = message.subject; // text, never HTML
      item.appendChild(subject);
      item.appendChild(document.createTextNode(" "));
    }
    var body = document.createElement(message.url ? "a" : "span");
    if (message.url && /^(https?:\/\/|\/)/i.test(message.url)) {
      body.href = message.url; // only http(s) and site paths: never javascript:
    }
    body.textContent = message.message;
    item.appendChild(body);
    return item;
  }

  function showMessage(message) {
    document.querySelectorAll("[data-pigeonhole-messages]").forEach(function (list) {
      if (!list.querySelector('[data-pigeonhole-id="' + message.id + '"]')) {
        list.insertBefore(renderMessage(message), list.firstChild);
      }
    });
    announce((message.subject ? message.subject + ": " : "") + message.message);
    emit("message", message);
  }

  function applyChange(event, ids) {
    ids.forEach(function (id) {
      document.querySelectorAll('[data-pigeonhole-id="' + id + '"]').forEach(function (node) {
        if (event === "deleted" || event === "archived") {
          node.remove();
        } else {
          node.classList.toggle("pigeonhole-read", event === "read");
        }
      });
    });
    emit("change", { event: event, ids: ids });
  }

  function handle(event, data) {
    if (event === "message") showMessage(data);
    else if (event === "count") setCount(data.unread);
    else if (event === "reset") emit("reset", data);
    else if (STATE_EVENTS.indexOf(event) !== -1) applyChange(event, data.ids);
  }

  // Events from the leader tab's stream, relayed to this one.
  if (channel) {
    channel.onmessage = function (e) {
      handle(e.data.event, e.data.data);
    };
  }

  function dispatch(event, data) {
    handle(event, data);
    if (channel) channel.postMessage({ event: event, data: data });
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
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    }).then(function (response) {
      if (!response.ok) throw new Error("mark read failed: " + response.status);
      return response.json();
    }).then(function (body) {
      setCount(body.unread);
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

  // ---------------------------------------------------------------- stream and polling

  function retryLater(start) {
    var delay = backoff * (0.5 + Math.random() / 2); // jitter: spread reconnecting clients
    backoff = Math.min(backoff * 2, BACKOFF_MAX);
    setTimeout(start, delay);
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
              dispatch("count", { unread: body.unread });
              return interval;
            });
          }
          if (response.status === 304) return interval;
          throw new Error("poll failed: " + response.status);
        })
        .then(function (interval) {
          backoff = BACKOFF_MIN;
          setTimeout(once, interval * 1000);
        })
        .catch(function () {
          retryLater(once);
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
    ["message", "count", "reset"].concat(STATE_EVENTS).forEach(function (name) {
      source.addEventListener(name, function (e) {
        opened = true;
        backoff = BACKOFF_MIN;
        if (e.lastEventId) lastEventId = e.lastEventId;
        dispatch(name, JSON.parse(e.data));
      });
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream: 204 under WSGI, or 401/429. The browser will not
        // retry by itself; reopen later ourselves, or poll if the stream never worked.
        source.close();
        if (!opened && config.countUrl) return poll();
        retryLater(stream);
      }
      // CONNECTING: the browser retries by itself, sending Last-Event-ID.
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

  window.pigeonhole = { markRead: markRead, config: config };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
