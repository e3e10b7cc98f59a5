/*
 * django-messages-extends' close-alerts.js, for pigeonhole's close views.
 *
 * A click on a close link (a.close[close-href], as the bundled
 * messages_extends/includes/alerts_bootstrap.html renders them) marks its
 * message read, or closes a sticky one, with a POST carrying Django's CSRF
 * token, then removes the alert. The token comes from the link's data-csrf-token, a
 * csrfmiddlewaretoken field on the page, or the csrftoken cookie. Only URLs of
 * this site are posted to, so the token never leaves it. Needs no jQuery.
 */
(function () {
  "use strict";

  function cookie(name) {
    var prefix = name + "=";
    var found = document.cookie.split("; ").filter(function (part) {
      return part.indexOf(prefix) === 0;
    })[0];
    return found ? decodeURIComponent(found.slice(prefix.length)) : "";
  }

  function csrfToken(link) {
    var field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return link.getAttribute("data-csrf-token") || (field && field.value) || cookie("csrftoken");
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a.close[close-href]") : null;
    if (!link) return;
    event.preventDefault();
    var url = new URL(link.getAttribute("close-href"), window.location.href);
    if (url.origin !== window.location.origin) return;
    fetch(url.href, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Accept": "application/json",
        "X-CSRFToken": csrfToken(link),
        "X-Requested-With": "XMLHttpRequest"
      }
    }).then(function (response) {
      var alert = link.closest(".alert");
      if (response.ok && alert && alert.parentNode) alert.parentNode.removeChild(alert);
    });
  });
})();
