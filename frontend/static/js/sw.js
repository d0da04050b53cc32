// Service worker for /app: keeps the app shell and the last pages seen, so the app opens and
// shows the last known balance without a network. Network first, cache as fallback.
//
// Two caches. The shell (stylesheet, script, manifest, icons) is nobody's and stays. The pages
// are one person's: they live in a cache named after the resident the server said they belong
// to (the Tanhui-Resident header, empty when signed out), and a page of anyone else replaces
// that whole cache. Signing out or in (a POST to /app/logout or /app/login) forgets every page
// before the request leaves, so a phone passed to the next person shows them nothing of the
// last one, online or offline.
"use strict";
var VERSION = "v2";
var SHELL_CACHE = "tanhui-shell-" + VERSION;
var PAGES_PREFIX = "tanhui-pages-" + VERSION + ":";
var SHELL = ["/static/css/app.css", "/static/js/app.js", "/app/manifest.webmanifest",
  "/static/icons/icon-192.png", "/static/icons/icon-512.png"];
var FORGET_ON = ["/app/logout", "/app/login"];

function pageCaches() {
  return caches.keys().then(function (keys) {
    return keys.filter(function (key) { return key.indexOf(PAGES_PREFIX) === 0; });
  });
}

function forgetPages(except) {
  return pageCaches().then(function (keys) {
    return Promise.all(keys.filter(function (key) { return key !== except; })
      .map(function (key) { return caches.delete(key); }));
  });
}

// Keep a copy of a page, in the cache of the person it belongs to.
function rememberPage(request, response) {
  var resident = response.headers.get("Tanhui-Resident");
  if (resident === null) {
    // Not a page (a voucher's QR code, say): it belongs with the pages of whoever is signed in.
    return pageCaches().then(function (keys) {
      if (keys.length !== 1 || keys[0] === PAGES_PREFIX) { return undefined; }
      return caches.open(keys[0]).then(function (cache) { return cache.put(request, response); });
    });
  }
  var name = PAGES_PREFIX + resident;
  return forgetPages(name)
    .then(function () { return caches.open(name); })
    .then(function (cache) { return cache.put(request, response); });
}

function isShell(url) {
  return SHELL.indexOf(url.pathname) >= 0 || url.pathname.indexOf("/static/") === 0;
}

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(SHELL_CACHE)
    .then(function (cache) { return cache.addAll(SHELL); })
    .then(function () { return fetch("/app"); })
    .then(function (response) { return response.ok ? rememberPage("/app", response) : undefined; })
    .catch(function () { /* the shell is what matters; the page comes with the next visit */ }));
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  // Older versions kept pages next to the shell, whoever they belonged to: drop them all.
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (key) {
      return key !== SHELL_CACHE && key.indexOf(PAGES_PREFIX) !== 0;
    }).map(function (key) { return caches.delete(key); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (request.method === "POST" && FORGET_ON.indexOf(url.pathname) >= 0) {
    // Forget first, then let the request go: even if it never arrives, nothing stays behind.
    event.respondWith(forgetPages(null).catch(function () { return undefined; })
      .then(function () { return fetch(request); }));
    return;
  }
  if (request.method !== "GET") { return; }
  if (!(url.pathname === "/app" || url.pathname.indexOf("/app/") === 0 ||
        url.pathname.indexOf("/static/") === 0)) { return; }
  if (url.pathname === "/app/sw.js") { return; }
  event.respondWith(fetch(request).then(function (response) {
    if (response.ok && response.type === "basic") {
      var copy = response.clone();
      var stored = isShell(url)
        ? caches.open(SHELL_CACHE).then(function (cache) { return cache.put(request, copy); })
        : rememberPage(request, copy);
      event.waitUntil(stored.catch(function () { return undefined; }));
    }
    return response;
  }).catch(function () {
    return caches.match(request).then(function (hit) {
      if (hit) { return hit; }
      return request.mode === "navigate" ? caches.match("/app") : undefined;
    }).then(function (hit) { return hit || Response.error(); });
  }));
});
