// Service worker for /app: keeps the app shell and the last pages seen, so the app opens and
// shows the last known balance without a network. Network first, cache as fallback.
//
// Two caches. The shell (stylesheet, script, manifest, icons) is nobody's and stays. The pages
// are one person's: they live in a cache named after the resident the server said they belong
// to (the Tanhui-Resident header, empty when signed out), and a page of anyone else replaces
// that whole cache. Signing out or in (a POST to /app/logout or /app/login) forgets every page
// before the request leaves, so a phone passed to the next person shows them nothing of the
// last one, online or offline.
//
// A sign-out without network cannot reach the server, so the session would live on there (the
// browser keeps its cookie). The worker then keeps the sign-out's form (its CSRF token, nothing
// personal) in a cache of its own, shows the signed-out page of the shell, and sends the
// sign-out again before any other request of the app once the network is back (and on a
// background sync where the browser has it).
"use strict";
var VERSION = "v3";
var SHELL_CACHE = "tanhui-shell-" + VERSION;
var PAGES_PREFIX = "tanhui-pages-" + VERSION + ":";
var PENDING_CACHE = "tanhui-pending-sign-out";
var PENDING_KEY = "/app/pending-sign-out";
var SIGNED_OUT = "/app/signed-out";
var SHELL = ["/static/css/app.css", "/static/js/app.js", "/app/manifest.webmanifest",
  "/static/icons/icon-192.png", "/static/icons/icon-512.png", SIGNED_OUT];
var FORGET_ON = ["/app/logout", "/app/login"];

function keepSignOut(body) {
  return caches.open(PENDING_CACHE)
    .then(function (cache) { return cache.put(PENDING_KEY, new Response(body)); })
    .then(function () {
      if (self.registration.sync) { return self.registration.sync.register("sign-out"); }
      return undefined;
    })
    .catch(function () { return undefined; });
}

// Send a sign-out kept while offline; resolves either way (the request it precedes goes on).
function sendKeptSignOut() {
  return caches.open(PENDING_CACHE).then(function (cache) {
    return cache.match(PENDING_KEY).then(function (kept) {
      if (!kept) { return undefined; }
      return kept.text().then(function (body) {
        return fetch("/app/logout", {
          method: "POST",
          body: body,
          credentials: "same-origin",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
        }).then(function () { return cache.delete(PENDING_KEY); });
      });
    });
  }).catch(function () { return undefined; });
}

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
      return key !== SHELL_CACHE && key !== PENDING_CACHE && key.indexOf(PAGES_PREFIX) !== 0;
    }).map(function (key) { return caches.delete(key); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("sync", function (event) {
  if (event.tag === "sign-out") { event.waitUntil(sendKeptSignOut()); }
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (request.method === "POST" && url.pathname === "/app/logout") {
    // Forget first, then let the request go; without network, keep it to send later.
    event.respondWith(request.clone().text().then(function (body) {
      return forgetPages(null).catch(function () { return undefined; }).then(function () {
        return fetch(request).catch(function () {
          return keepSignOut(body).then(function () { return caches.match(SIGNED_OUT); })
            .then(function (page) { return page || Response.error(); });
        });
      });
    }));
    return;
  }
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
  event.respondWith(sendKeptSignOut().then(function () {
    return fetch(request);
  }).then(function (response) {
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
      if (hit || request.mode !== "navigate") { return hit; }
      // A page never kept (or forgotten at sign-out): the app's start page, else the
      // signed-out page of the shell.
      return caches.match("/app").then(function (start) { return start || caches.match(SIGNED_OUT); });
    }).then(function (hit) { return hit || Response.error(); });
  }));
});
