// Today: the live feed (Server-Sent Events).
// Everything a customer wrote is inserted as text (textContent), never as HTML.
(function () {
  "use strict";

  function line(l) {
    var li = document.createElement("li");
    li.className = "line " + l.kind;
    li.dataset.event = l.id;
    var parts = [["time", l.time], ["strong", l.what], ["span", l.who], ["span", l.detail]];
    var classes = ["", "what", "who", "detail"];
    parts.forEach(function (p, i) {
      var e = document.createElement(p[0]);
      if (classes[i]) e.className = classes[i];
      e.textContent = p[1];
      li.appendChild(e);
      li.appendChild(document.createTextNode(" "));
    });
    return li;
  }

  function feed() {
    var list = document.getElementById("feed");
    var state = document.getElementById("feed-state");
    if (!list || typeof EventSource === "undefined") return;
    var source = new EventSource("/today/feed?after=" + encodeURIComponent(list.dataset.after));
    source.onopen = function () { state.textContent = "live"; };
    source.onerror = function () { state.textContent = "reconnecting…"; };
    source.addEventListener("line", function (e) {
      var l = JSON.parse(e.data);
      if (list.querySelector('[data-event="' + l.id + '"]')) return;
      var empty = document.getElementById("feed-empty");
      if (empty) empty.remove();
      list.insertBefore(line(l), list.firstChild);
      while (list.children.length > 100) list.removeChild(list.lastChild);
    });
  }

  feed();
})();
