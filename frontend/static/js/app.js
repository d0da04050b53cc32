// Residents' app enhancements: the service worker (offline shell and last known balance).
// Everything works without this file.
(function () {
  "use strict";
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/app/sw.js", { scope: "/app" }).catch(function () {});
  }
  var badge = document.querySelector(".offline-badge");
  function showOffline() { if (badge) { badge.hidden = navigator.onLine; } }
  window.addEventListener("online", showOffline);
  window.addEventListener("offline", showOffline);
  showOffline();
  // Pages that show a balance mark it with data-balance; remember it for offline use.
  var balance = document.querySelector("[data-balance]");
  var resident = document.body.getAttribute("data-resident");
  if (balance && resident) {
    try {
      if (navigator.onLine) {
        localStorage.setItem("tanhui.balance." + resident, balance.getAttribute("data-balance"));
      } else {
        var last = localStorage.getItem("tanhui.balance." + resident);
        if (last !== null) { balance.textContent = last; }
      }
    } catch (e) { /* storage may be disabled */ }
  }
})();
