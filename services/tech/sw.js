// The tech client (the PWA) offline: its shell from the cache, alerts as notifications.
const SHELL = "jobstream-tech-v2";
const FILES = ["/tech/", "/tech/pwa.js", "/tech/pwa.css", "/tech/manifest.webmanifest", "/tech/icon.svg"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys().then((names) => Promise.all(names.filter((n) => n !== SHELL).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || !FILES.includes(url.pathname)) return; // data and commands: the client's own
  // the network first (a new version shows at once), the cache when there is none
  event.respondWith(fetch(event.request).then((response) => {
    const copy = response.clone();
    caches.open(SHELL).then((cache) => cache.put(event.request, copy));
    return response;
  }).catch(() => caches.match(event.request)));
});

self.addEventListener("push", (event) => {
  let alert = { title: "jobstream", body: "" };
  try { alert = event.data.json(); } catch { /* a push without a payload */ }
  event.waitUntil(self.registration.showNotification(alert.title, {
    body: alert.body, tag: alert.tag, data: { url: alert.url }, icon: "/tech/icon.svg", badge: "/tech/icon.svg" }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "/tech/";
  event.waitUntil(self.clients.matchAll({ type: "window" }).then((windows) => {
    const open = windows.find((w) => w.url.startsWith(self.registration.scope));
    if (open) { open.navigate(url); return open.focus(); }
    return self.clients.openWindow(url);
  }));
});
