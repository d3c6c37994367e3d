// Follows a background task (sharing, a job): redraws its progress bar and phases each second.
(function () {
  "use strict";
  function follow(box) {
    var bar = document.getElementById("bar"), phases = document.getElementById("phases");
    fetch(box.dataset.url, {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(function (t) {
        if (t.total) { bar.max = t.total; bar.value = t.done; }
        else if (t.finished) { bar.max = 1; bar.value = 1; }
        else { bar.removeAttribute("value"); }
        document.getElementById("seconds").textContent = t.seconds + " s";
        phases.textContent = "";
        t.phases.forEach(function (p) {
          var li = document.createElement("li"); li.textContent = p; phases.appendChild(li);
        });
        if (t.error) {
          var e = document.getElementById("task-error"); e.textContent = t.error; e.hidden = false;
        } else if (t.finished && t.link) {
          document.getElementById("task-link").href = t.link;
          document.getElementById("task-done").hidden = false;
          window.location.assign(t.link);
        }
        if (!t.finished) { window.setTimeout(function () { follow(box); }, 1000); }
      });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("task");
    if (box) { follow(box); }
  });
})();
