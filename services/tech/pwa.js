// jobstream for technicians: a thin client over the command API.
//
// Every change is a command in an outbox kept on the phone (localStorage) with its
// idempotency key, sent in order as soon as there is a connection; a retried command is
// applied once by the server. A command the server refuses (the office rescheduled or put
// the job on hold meanwhile) is shown plainly with what was typed, to send again or discard.
"use strict";

const ACTIVE = ["new", "scheduled", "in_progress", "on_hold"];
const store = {
  get(key, fallback) { try { const v = localStorage.getItem(key); return v === null ? fallback : JSON.parse(v); } catch { return fallback; } },
  set(key, value) { localStorage.setItem(key, JSON.stringify(value)); },
};
let token = store.get("token", "");
let me = store.get("me", null);
let outbox = store.get("outbox", []);
let conflicts = store.get("conflicts", []);
let running = store.get("running", null); // {jobId, since}: the stopwatch on this phone
let flushing = false;
let online = navigator.onLine;
let freshAt = 0; // a stream position the next read must reflect (an alert's event)

const $ = (selector, root = document) => root.querySelector(selector);
const esc = (text) => String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const uuid = () => (crypto.randomUUID ? crypto.randomUUID() : "10000000-1000-4000-8000-100000000000".replace(/[018]/g,
  (c) => (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16)));
const save = () => { store.set("outbox", outbox); store.set("conflicts", conflicts); store.set("running", running); };
const when = (iso) => iso ? new Date(iso).toLocaleString([], { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }) : "";

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${token}`, ...(options.headers || {}) };
  return fetch(path, { ...options, headers });
}

async function getJSON(path, cacheKey) {
  try {
    const response = await api(path);
    if (response.status === 401) { signOut("Your token is no longer valid: sign in again."); throw new Error("signed out"); }
    if (!response.ok) throw new Error((await response.json().catch(() => ({}))).detail || response.statusText);
    const data = await response.json();
    if (cacheKey) store.set(cacheKey, data);
    return data;
  } catch (error) {
    const cached = cacheKey ? store.get(cacheKey, null) : null;
    if (cached) return { ...cached, fromCache: true };
    throw error;
  }
}

function toast(text) {
  const node = document.createElement("div");
  node.className = "toast";
  node.textContent = text;
  $("#toasts").append(node);
  setTimeout(() => node.remove(), 6000);
}

// --- the outbox -------------------------------------------------------------------------

function done(form) {
  // what was submitted is in the outbox now: the form is empty again
  if (form) form.reset();
  signatureDrawn = false;
}

function queue(label, path, body, jobId, extra = {}) {
  outbox.push({ id: uuid(), key: uuid(), label, path, body, jobId, queuedAt: new Date().toISOString(), ...extra });
  save();
  renderStatus();
  route(true);
  flush();
}

async function send(command) {
  if (command.photo) {
    const blob = await (await fetch(command.photo)).blob();
    return api(command.path, { method: "POST", body: blob, headers: {
      "Content-Type": blob.type, "Idempotency-Key": command.key, "X-Caption": encodeURIComponent(command.caption || "") } });
  }
  return api(command.path, { method: "POST", body: JSON.stringify(command.body || {}), headers: {
    "Content-Type": "application/json", "Idempotency-Key": command.key } });
}

function explain(detail) {
  if (Array.isArray(detail)) return detail.map((d) => `${d.field}: ${d.reason}`).join("; ");
  return String(detail || "");
}

async function flush() {
  if (flushing || !token) return;
  if (!navigator.onLine) { online = false; renderStatus(); return; } // the "online" event sends it
  flushing = true;
  let sent = 0;
  try {
    while (outbox.length) {
      const command = outbox[0];
      let response;
      try { response = await send(command); } catch { online = false; break; } // no connection: later
      online = true;
      if (response.ok) {
        const result = await response.json().catch(() => ({}));
        freshAt = Math.max(freshAt, result.position || 0); // the next read shows what was just sent
        outbox.shift(); sent += 1; save(); renderStatus(); continue;
      }
      if (response.status === 401 || response.status >= 500) break; // not the command's fault: later
      const detail = explain((await response.json().catch(() => ({}))).detail) || response.statusText;
      outbox.shift();
      conflicts.push({ ...command, status: response.status, detail });
      if (command.label.startsWith("Start") && running && running.jobId === command.jobId) running = null;
      save();
    }
  } finally {
    flushing = false;
    renderStatus();
    if (sent || conflicts.length) route(true);
  }
}

function renderStatus() {
  const node = $("#status");
  const waiting = outbox.length;
  node.className = "status";
  if (!online) {
    node.classList.add("offline");
    node.textContent = `Offline: ${waiting} change${waiting === 1 ? "" : "s"} waiting, sent when you are back online.`;
  } else if (waiting) {
    node.classList.add("pending");
    node.textContent = `Sending ${waiting} change${waiting === 1 ? "" : "s"}…`;
  } else {
    node.textContent = "All changes sent.";
  }
  node.dataset.waiting = String(waiting);
}

window.addEventListener("online", () => { online = true; renderStatus(); flush(); });
window.addEventListener("offline", () => { online = false; renderStatus(); });
setInterval(() => { if (outbox.length) flush(); }, 4000);

function conflictsHtml(jobId) {
  const shown = conflicts.filter((c) => !jobId || c.jobId === jobId);
  return shown.map((c) => `
    <div class="conflict" data-conflict="${c.id}">
      <strong>Not accepted: ${esc(c.label)}</strong>
      <p>${esc(c.detail)}</p>
      ${c.body && Object.keys(c.body).length ? `<pre>${esc(JSON.stringify(c.body, null, 1))}</pre>` : ""}
      <div class="row"><button data-retry="${c.id}">Send again</button><button class="secondary" data-discard="${c.id}">Discard</button></div>
    </div>`).join("");
}

document.addEventListener("click", (event) => {
  const retry = event.target.closest("[data-retry]");
  const discard = event.target.closest("[data-discard]");
  if (!retry && !discard) return;
  const id = (retry || discard).dataset.retry || (retry || discard).dataset.discard;
  const found = conflicts.find((c) => c.id === id);
  conflicts = conflicts.filter((c) => c.id !== id);
  if (retry && found) { const { status, detail, ...command } = found; outbox.push({ ...command, key: uuid() }); }
  save();
  route(true);
  flush();
});

// --- alerts: live while the client is open, Web Push when it is not ----------------------

async function listen() {
  while (token) {
    try {
      const response = await api("/me/alerts");
      if (!response.ok) throw new Error(response.statusText);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split("\n").find((line) => line.startsWith("data: "));
          if (data) {
            const alert = JSON.parse(data.slice(6));
            toast(`${alert.title}${alert.body ? " — " + alert.body : ""}`);
            freshAt = Math.max(freshAt, alert.position || 0);
            route(true);
          }
        }
      }
    } catch { /* offline or the server restarted */ }
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
}

async function enablePush() {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) { toast("This browser cannot receive push alerts."); return; }
  const permission = await Notification.requestPermission();
  if (permission !== "granted") { toast("Notifications are blocked for this site."); return; }
  const registration = await navigator.serviceWorker.ready;
  const { public_key: key } = await getJSON("/push/public-key");
  const raw = Uint8Array.from(atob(key.replace(/-/g, "+").replace(/_/g, "/") + "==".slice(0, (4 - key.length % 4) % 4)), (c) => c.charCodeAt(0));
  const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: raw });
  queue("Register this phone for alerts", "/me/push-subscriptions", subscription.toJSON(), null);
  toast("Push alerts are on for this phone.");
}

// --- views ----------------------------------------------------------------------------

function signInView(message = "") {
  $("#who").textContent = "";
  $("#view").innerHTML = `
    <h1>Sign in</h1>
    ${message ? `<p class="conflict">${esc(message)}</p>` : ""}
    <form id="signin"><label for="token">Your access token (from the office)</label>
      <input id="token" name="token" autocomplete="off" required placeholder="js_…">
      <p><button>Sign in</button></p></form>`;
  $("#signin").addEventListener("submit", async (event) => {
    event.preventDefault();
    token = $("#token").value.trim();
    const response = await api("/me").catch(() => null);
    if (!response || !response.ok) { token = ""; signInView(response ? "That token is unknown or revoked." : "No connection: try again."); return; }
    me = await response.json();
    store.set("token", token);
    store.set("me", me);
    location.hash = "#/";
    listen();
    route();
  });
}

function signOut(message) {
  token = ""; me = null;
  localStorage.removeItem("token"); localStorage.removeItem("me");
  signInView(message);
}

function fresh() {
  // ask the read side to answer no older than the last alert's event (it waits a little)
  return freshAt ? `&position=${freshAt}&wait=30` : "";
}

function card(item) {
  return `<a class="card" href="#/jobs/${item.id}" data-job="${item.id}">
    <strong>${esc(item.description || item.job_type)}</strong>
    ${item.priority === "urgent" ? '<span class="badge urgent">urgent</span>' : ""}
    <span class="badge">${esc(item.status.replace("_", " "))}</span>
    <div class="meta">${esc(item.customer)} · ${esc(item.site)}</div>
    <div class="meta">${item.scheduled_start ? esc(when(item.scheduled_start)) : "not scheduled"}</div></a>`;
}

async function listView(refresh, turn) {
  const query = ACTIVE.map((s) => `status=${s}`).join("&");
  let page;
  try { page = await getJSON(`/tech/api/board?${query}&sort=scheduled&order=asc&limit=200${fresh()}`, "board"); }
  catch (error) { $("#view").innerHTML = `<p class="conflict">Could not load your jobs: ${esc(error.message)}</p>`; return; }
  if (turn !== renders || (refresh && typing())) return;
  const mine = page.items.filter((i) => i.technician_ids.includes(me.technician_id));
  const pool = page.items.filter((i) => !i.technician_ids.length && i.status === "new");
  const today = new Date().toDateString();
  const isToday = (i) => i.scheduled_start && new Date(i.scheduled_start).toDateString() === today;
  const todays = mine.filter((i) => isToday(i) || i.status === "in_progress");
  const upcoming = mine.filter((i) => !todays.includes(i));
  $("#view").innerHTML = `
    ${conflictsHtml(null)}
    ${page.fromCache ? '<p class="muted">Shown as last loaded (no connection).</p>' : ""}
    <h2>Today</h2><div id="today">${todays.map(card).join("") || '<p class="muted">Nothing for today.</p>'}</div>
    <h2>Upcoming</h2><div id="upcoming">${upcoming.map(card).join("") || '<p class="muted">Nothing planned.</p>'}</div>
    <h2>Open pool</h2><div id="pool">${pool.map(card).join("") || '<p class="muted">No open requests.</p>'}</div>
    <p><button class="secondary" id="push">Alerts on this phone</button></p>`;
  $("#push").addEventListener("click", enablePush);
}

function elapsed(since) {
  const seconds = Math.max(0, Math.floor((Date.now() - new Date(since)) / 1000));
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(Math.floor(seconds / 3600))}:${pad(Math.floor(seconds / 60) % 60)}:${pad(seconds % 60)}`;
}

let ticker = null;

async function jobView(id, refresh, turn) {
  let data, state = null, customer = null;
  try { data = await getJSON(`/tech/api/jobs/${id}?${fresh().slice(1)}`, `job:${id}`); }
  catch (error) { $("#view").innerHTML = `<p class="conflict">Could not load the job: ${esc(error.message)}</p>`; return; }
  try { state = await getJSON(`/jobs/${id}`, `state:${id}`); } catch { /* offline and never loaded */ }
  try { customer = await getJSON(`/jobs/${id}/customer`, `customer:${id}`); } catch { /* shown without */ }
  if (turn !== renders || (refresh && typing())) return; // a newer render is on its way; or typed meanwhile
  const job = data.job;
  if (state && !outbox.some((c) => c.jobId === id)) { // the server's stopwatch, when nothing of ours is on the way
    const mine = state.running && state.running[me.technician_id];
    if (mine) running = { jobId: id, since: mine[1] };
    else if (running && running.jobId === id) running = null;
    save();
  }
  const address = job.site_address ? `${job.site_address.street}, ${job.site_address.postal_code} ${job.site_address.city}` : job.site;
  const inPool = !job.technician_ids.length && job.status === "new";
  const ticking = running && running.jobId === id;
  const status = (state && state.status) || job.status; // the command API's is the newer
  // Only what the job's status allows (services/domain/job.py). Commands still waiting in the
  // outbox may move the status on, so a job open when last loaded keeps every form.
  const open = ["scheduled", "in_progress"].includes(status);
  const can = {
    clock: open || ticking,
    complete: open,
    material: open || status === "completed",
    photo: open || ["completed", "on_hold"].includes(status),
    time: open || ["completed", "on_hold"].includes(status),
    signoff: (open || ["completed", "invoiced"].includes(status)) && !(state && state.signed_off_by),
  };
  const closed = { completed: "Completed", invoiced: "Completed and invoiced", cancelled: "Cancelled",
                   on_hold: "On hold" }[status];
  const waiting = outbox.filter((c) => c.jobId === id);
  const photos = data.history.filter((h) => h.event_type === "PhotoAttached").length;
  $("#view").innerHTML = `
    <p><a href="#/">← My jobs</a></p>
    <h1>${esc(job.description || job.job_type)}</h1>
    <p><span class="badge" id="job-status">${esc(job.status.replace("_", " "))}</span>
       ${job.priority === "urgent" ? '<span class="badge urgent">urgent</span>' : ""}
       ${data.fromCache ? '<span class="muted">as last loaded</span>' : ""}</p>
    ${conflictsHtml(id)}
    <div class="card"><div><strong>${esc(customer ? customer.name : data.board.customer)}</strong></div>
      <div><a href="https://www.openstreetmap.org/search?query=${encodeURIComponent(address)}" target="_blank" rel="noopener" id="map">${esc(address)} (map)</a></div>
      ${customer && customer.phone ? `<div><a href="tel:${esc(customer.phone)}">${esc(customer.phone)}</a></div>` : ""}
      ${customer && customer.email ? `<div><a href="mailto:${esc(customer.email)}">${esc(customer.email)}</a></div>` : ""}
      <div class="meta">${job.scheduled_start ? esc(when(job.scheduled_start)) : ""} ${job.scope ? "· " + esc(job.scope) : ""}</div></div>
    ${inPool ? '<p><button id="take">Take this job</button></p>' : `
    ${closed ? `<p class="muted" id="closed">${closed}${state && state.signed_off_by ? `, signed off by ${esc(state.signed_off_by)}` : ""}: only what may still be added is shown.</p>` : ""}
    ${can.clock ? `<div class="card">
      <div class="stopwatch" id="clock">${ticking ? elapsed(running.since) : "00:00:00"}</div>
      <div class="row">
        <button id="start" ${ticking ? "disabled" : ""}>${ticking ? "Running" : "Start"}</button>
        <button class="secondary" id="pause" ${ticking ? "" : "disabled"}>Pause</button>
        <button class="secondary" id="stop" ${ticking ? "" : "disabled"}>Stop</button>
      </div>
      <label><input type="checkbox" id="billable" checked> billable</label>
    </div>` : ""}
    <form id="note"><label for="note-text">Note</label><textarea id="note-text" rows="3" required></textarea><p><button>Add note</button></p></form>
    ${can.photo ? `<form id="photo"><label for="photo-file">Photo</label><input id="photo-file" type="file" accept="image/*" capture="environment" required>
      <label for="photo-caption">Caption</label><input id="photo-caption" maxlength="200"><p><button>Add photo</button></p></form>` : ""}
    ${can.material ? `<form id="material"><label for="material-code">Material used</label>
      <input id="material-code" list="catalogue" required placeholder="code from the catalogue">
      <datalist id="catalogue"></datalist>
      <label for="material-quantity">Quantity</label><input id="material-quantity" inputmode="decimal" value="1" required>
      <p><button>Record material</button></p></form>` : ""}
    ${can.time ? `<form id="time"><label for="time-start">Add time by hand: started</label><input id="time-start" type="datetime-local" required>
      <label for="time-minutes">Minutes</label><input id="time-minutes" type="number" min="1" max="1440" required>
      <label><input type="checkbox" id="time-billable" checked> billable</label><p><button>Add time</button></p></form>` : ""}
    ${can.complete ? `<form id="complete"><label for="summary">Completion summary</label><textarea id="summary" rows="3" required></textarea><p><button>Complete the job</button></p></form>` : ""}
    ${can.signoff ? `<form id="signoff"><label for="signed-by">Customer's name</label><input id="signed-by" required>
      <label>Signature</label><canvas class="signature" id="signature"></canvas>
      <div class="row"><button type="button" class="secondary" id="clear-signature">Clear</button><button>Sign off</button></div></form>` : ""}`}
    ${waiting.length ? `<h2>Waiting to be sent</h2><ul class="queued">${waiting.map((c) => `<li>${esc(c.label)}</li>`).join("")}</ul>` : ""}
    <h2>History</h2><p class="muted">${photos} photo${photos === 1 ? "" : "s"}</p>
    <ul class="history">${data.history.slice().reverse().map((h) => `<li><strong>${esc(h.event_type)}</strong> <span class="muted">${esc(when(h.occurred_at))} · ${esc(h.actor_id)}</span><br>${esc(h.summary)}</li>`).join("")}</ul>`;
  if (inPool) {
    $("#take").addEventListener("click", () => queue("Take the job", `/jobs/${id}/take`, {}, id));
    return;
  }
  const now = () => new Date().toISOString();
  const on = (selector, type, handler) => { const node = $(selector); if (node) node.addEventListener(type, handler); };
  clearInterval(ticker);
  if (ticking) ticker = setInterval(() => { const c = $("#clock"); if (c && running) c.textContent = elapsed(running.since); }, 1000);
  on("#start", "click", () => {
    const at = now();
    running = { jobId: id, since: at }; // starting here stops any other job's stopwatch (the server does too)
    queue("Start work", `/jobs/${id}/start`, { at }, id);
  });
  const stop = (label) => () => {
    const body = { at: now(), billable: $("#billable") ? $("#billable").checked : true };
    running = null;
    queue(label, `/jobs/${id}/stop`, body, id);
  };
  on("#pause", "click", stop("Pause work"));
  on("#stop", "click", stop("Stop work"));
  on("#note", "submit", (event) => {
    event.preventDefault();
    const text = $("#note-text", event.target).value;
    done(event.target);
    queue("Note", `/jobs/${id}/notes`, { text }, id);
  });
  on("#photo", "submit", async (event) => {
    event.preventDefault();
    const form = event.target, file = $("#photo-file", form).files[0], caption = $("#photo-caption", form).value;
    if (!file) return;
    let photo;
    try { photo = await shrink(file); } catch (error) { toast(`That photo could not be read: ${error.message}`); return; }
    done(form);
    queue("Photo", `/jobs/${id}/photos`, null, id, { photo, caption });
  });
  getJSON("/catalogue", "catalogue").then((items) => {
    const list = Array.isArray(items) ? items : [];
    if ($("#catalogue")) $("#catalogue").innerHTML = list.map((i) => `<option value="${esc(i.code)}">${esc(i.name)}</option>`).join("");
    store.set("catalogue", list);
  }).catch(() => {});
  on("#material", "submit", (event) => {
    event.preventDefault();
    const code = $("#material-code", event.target).value.trim();
    const item = (store.get("catalogue", []) || []).find((i) => i.code === code);
    const quantity = $("#material-quantity", event.target).value.replace(",", ".");
    done(event.target);
    queue("Material", `/jobs/${id}/materials`, { code, description: item ? item.name : code, quantity }, id);
  });
  on("#time", "submit", (event) => {
    event.preventDefault();
    const body = { started_at: new Date($("#time-start", event.target).value).toISOString(),
      minutes: Number($("#time-minutes", event.target).value), billable: $("#time-billable", event.target).checked };
    done(event.target);
    queue("Time added by hand", `/jobs/${id}/time-entries`, body, id);
  });
  on("#complete", "submit", (event) => {
    event.preventDefault();
    const summary = $("#summary", event.target).value;
    done(event.target);
    if (running && running.jobId === id) stop("Stop work")();
    queue("Complete the job", `/jobs/${id}/complete`, { summary }, id);
  });
  if (!$("#signoff")) return;
  const pad = signaturePad($("#signature"));
  on("#clear-signature", "click", pad.clear);
  on("#signoff", "submit", (event) => {
    event.preventDefault();
    const body = { signed_by: $("#signed-by", event.target).value, signature: pad.empty() ? "" : pad.dataUrl() };
    done(event.target);
    queue("Customer's sign-off", `/jobs/${id}/sign-off`, body, id);
  });
}

function signaturePad(canvas) {
  const scale = window.devicePixelRatio || 1;
  canvas.width = canvas.clientWidth * scale;
  canvas.height = canvas.clientHeight * scale;
  const context = canvas.getContext("2d");
  context.scale(scale, scale);
  context.lineWidth = 2.2; context.lineCap = "round"; context.strokeStyle = "#111";
  let drawing = false;
  const point = (e) => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  signatureDrawn = false;
  canvas.addEventListener("pointerdown", (e) => { drawing = true; signatureDrawn = true; context.beginPath(); context.moveTo(...point(e)); canvas.setPointerCapture(e.pointerId); });
  canvas.addEventListener("pointermove", (e) => { if (drawing) { context.lineTo(...point(e)); context.stroke(); } });
  canvas.addEventListener("pointerup", () => { drawing = false; });
  return {
    clear: () => { context.clearRect(0, 0, canvas.width, canvas.height); signatureDrawn = false; },
    empty: () => !signatureDrawn,
    dataUrl: () => canvas.toDataURL("image/png"),
  };
}

async function shrink(file, longest = 1280) {
  // A phone's photo is several MB: scaled to 1280 px as JPEG it is about 200 kB, kept and sent.
  const bitmap = await createImageBitmap(file);
  const ratio = Math.min(1, longest / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * ratio);
  canvas.height = Math.round(bitmap.height * ratio);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL("image/jpeg", 0.82);
}

let signatureDrawn = false;
let renders = 0;

function typing() {
  // something typed or drawn and not yet submitted: a refresh must not wipe it
  if (signatureDrawn) return true;
  return [...document.querySelectorAll("#view input, #view textarea")].some((field) =>
    field.type === "checkbox" ? field.checked !== field.defaultChecked : field.type === "file" ? field.files.length : field.value !== field.defaultValue);
}

function route(refresh = false) {
  if (!token || !me) { signInView(); return; }
  $("#who").textContent = me.user;
  const hash = location.hash || "#/";
  const match = hash.match(/^#\/jobs\/([0-9a-f-]{36})$/);
  if (refresh && typing()) return; // never under the fingers
  renders += 1; // views load asynchronously: only the latest one may draw
  const turn = renders;
  $("#view").setAttribute("aria-busy", "true"); // being brought up to date (for screen readers, and tests)
  (match ? jobView(match[1], refresh, turn) : listView(refresh, turn))
    .finally(() => { if (turn === renders) $("#view").removeAttribute("aria-busy"); });
}

window.addEventListener("hashchange", () => route());
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/tech/sw.js", { scope: "/tech/" }).catch(() => {});
renderStatus();
route();
if (token) { listen(); flush(); }
