// A conversation's page: messages in and out join the transcript as they happen (the same
// Server-Sent Events feed as Today, kept to this conversation). Text is inserted as text.
(function () {
  "use strict";
  var list = document.getElementById("transcript");
  if (!list || typeof EventSource === "undefined") return;
  var id = list.dataset.conversation;
  var source = new EventSource("/today/feed?after=" + encodeURIComponent(list.dataset.after));
  source.addEventListener("line", function (e) {
    var l = JSON.parse(e.data);
    if (l.conversation !== id) return;
    var direction = l.kind === "message_received" ? "inbound" : l.kind === "message_sent" ? "outbound" : "";
    if (!direction) return;
    var li = document.createElement("li");
    li.className = "bubble " + direction;
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = l.detail;
    var meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = l.time + (direction === "outbound" ? " · sent" : "");
    li.appendChild(text);
    li.appendChild(meta);
    list.appendChild(li);
  });
})();
