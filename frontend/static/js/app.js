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
  // Pages that show a balance mark it with data-balance; remember it for offline use, for the
  // resident signed in only: balances remembered for anyone else (for everyone once signed out)
  // are forgotten.
  var PREFIX = "tanhui.balance.";
  var balance = document.querySelector("[data-balance]");
  var resident = document.body.getAttribute("data-resident");
  function forgetBalances(keep) {
    try {
      for (var i = localStorage.length - 1; i >= 0; i -= 1) {
        var key = localStorage.key(i);
        if (key && key.indexOf(PREFIX) === 0 && key !== keep) { localStorage.removeItem(key); }
      }
    } catch (e) { /* storage may be disabled */ }
  }
  forgetBalances(resident ? PREFIX + resident : null);
  var signOut = document.querySelector('form[action="/app/logout"]');
  if (signOut) { signOut.addEventListener("submit", function () { forgetBalances(null); }); }
  if (balance && resident) {
    try {
      if (navigator.onLine) {
        localStorage.setItem(PREFIX + resident, balance.getAttribute("data-balance"));
      } else {
        var last = localStorage.getItem(PREFIX + resident);
        if (last !== null) { balance.textContent = last; }
      }
    } catch (e) { /* storage may be disabled */ }
  }
})();
