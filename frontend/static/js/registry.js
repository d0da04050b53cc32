// Registry faces: small enhancements. Every page works without this file.
(function () {
  "use strict";

  // Filters apply as soon as a choice changes (the Filter button stays for keyboards and no-JS).
  document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // "Select all" for long checkbox lists.
  document.querySelectorAll("[data-check-all]").forEach(function (box) {
    var list = document.getElementById(box.getAttribute("data-check-all"));
    if (!list) { return; }
    box.addEventListener("change", function () {
      list.querySelectorAll("input[type=checkbox]").forEach(function (item) { item.checked = box.checked; });
    });
  });

  // An MRV run in progress: poll its status and update the bar; reload when it ends.
  var job = document.querySelector("[data-job-status]");
  if (job) {
    var url = job.getAttribute("data-job-status");
    var bar = job.querySelector("progress");
    var text = job.querySelector("[data-job-text]");
    var poll = function () {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (status) {
          if (!status) { return; }
          if (status.state === "done" || status.state === "failed") { window.location.reload(); return; }
          if (bar && status.total) { bar.max = status.total; bar.value = status.done; }
          if (text) { text.textContent = status.text; }
          window.setTimeout(poll, 1000);
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    };
    // Without JavaScript the page refreshes itself (<noscript> meta refresh); with it, this polls.
    window.setTimeout(poll, 500);
  }
})();
