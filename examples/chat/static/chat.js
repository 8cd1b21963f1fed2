// The chat page: one socket to the `/chat` namespace of the server that served this page.
// `io` is the global of /vendor/socket.io.min.js, the official socket.io-client from npm.
"use strict";

const $ = (id) => document.getElementById(id);
let socket = null;
let me = "";
let room = null; // the room we are in, or null

// --- rendering ---------------------------------------------------------------------------

function logLine(kind, text) {
  const li = document.createElement("li");
  li.className = kind;
  const span = document.createElement("span");
  span.className = "text";
  span.textContent = text;
  li.append(span);
  $("log").append(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

function setStatus(text) {
  $("status").textContent = text;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function setRoom(name) {
  room = name;
  $("current-room").textContent = name ?? "none";
  $("leave").disabled = !name;
  $("text").disabled = !name;
  $("text").placeholder = name ? `Message #${name}` : "Join a room to chat";
  document.querySelector("#send button").disabled = !name;
  if (!name) $("members").replaceChildren();
  typers.clear();
  renderTyping();
}

// Who is typing: the hints are volatile (the server may drop them), so each expires alone.
const typers = new Map(); // name -> timeout id

function renderTyping() {
  const names = [...typers.keys()];
  $("typing").textContent =
    names.length === 0 ? "" : `${names.join(" and ")} ${names.length === 1 ? "is" : "are"} typing…`;
}

function setTyping(name, typing) {
  clearTimeout(typers.get(name));
  typers.delete(name);
  if (typing) typers.set(name, setTimeout(() => setTyping(name, false), 3000));
  renderTyping();
}

// --- the socket --------------------------------------------------------------------------

function connect(name, token) {
  socket?.disconnect();
  me = name;
  setRoom(null);
  $("log").replaceChildren();
  setStatus("connecting…");
  socket = io("/chat", { auth: { name, token } });

  socket.on("connect", () => {
    showError("");
    $("room").hidden = false;
    const engine = socket.io.engine;
    // Back after a network blip with the same id and room, the missed messages replayed
    // before this event (connection state recovery); otherwise enter the room again.
    const back = socket.recovered ? " · back after a network blip, nothing missed" : "";
    setStatus(`connected as ${me} (${engine.transport.name})${back}`);
    engine.once("upgrade", (t) => setStatus(`connected as ${me} (${t.name})${back}`));
    if (room && !socket.recovered) join(room);
  });

  // The middleware refused us (err.data carries its details), or the server is unreachable.
  socket.on("connect_error", (err) => {
    const hint = err.data?.hint ? ` (${err.data.hint})` : "";
    showError(`Connection refused: ${err.message}${hint}`);
    setStatus(socket.active ? "reconnecting…" : "refused");
  });

  socket.on("disconnect", (reason) => setStatus(`disconnected: ${reason}`));
  socket.on("online", (n) => ($("online").textContent = `${n} online`));
  socket.on("user connected", (name) => ($("presence").textContent = `${name} connected`));
  socket.on("joined", (name) => logLine("notice", `${name} joined`));
  socket.on("left", (name) => {
    setTyping(name, false);
    logLine("notice", `${name} left`);
  });
  socket.on("members", (names) => {
    $("members").replaceChildren(
      ...names.sort().map((n) => Object.assign(document.createElement("li"), { textContent: n })),
    );
  });
  socket.on("message", ({ from, text }) => {
    setTyping(from, false);
    logLine("message", `${from}: ${text}`);
  });
  socket.on("typing", ({ name, typing }) => setTyping(name, typing));
}

function join(name) {
  socket.timeout(5000).emit("join", name, (err, res) => {
    if (err || res.error) return logLine("error", `Cannot join ${name}: ${err?.message ?? res.error}`);
    $("log").replaceChildren();
    setRoom(res.room);
    logLine("notice", `You joined ${res.room}`);
  });
}

function send(text) {
  stopTyping();
  const ack = document.createElement("span");
  ack.className = "ack";
  ack.textContent = "sending…";
  logLine("message mine", `${me}: ${text}`).append(ack);
  // The server acknowledges once the message went out to the room.
  socket.timeout(5000).emit("message", text, (err, res) => {
    ack.textContent = err ? "not delivered" : res;
    ack.classList.toggle("ok", !err && res === "delivered");
  });
}

// Typing hints: "true" at most once a second while keys are pressed, "false" after a pause.
let lastTyping = 0;
let stopTimer = null;

function typed() {
  if (Date.now() - lastTyping > 1000) {
    socket.emit("typing", true);
    lastTyping = Date.now();
  }
  clearTimeout(stopTimer);
  stopTimer = setTimeout(stopTyping, 2000);
}

function stopTyping() {
  clearTimeout(stopTimer);
  if (lastTyping) socket.emit("typing", false);
  lastTyping = 0;
}

// --- the forms ---------------------------------------------------------------------------

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  connect($("name").value.trim(), $("token").value);
});

$("room").addEventListener("submit", (e) => {
  e.preventDefault();
  join($("room-name").value.trim());
});

$("leave").addEventListener("click", () => {
  stopTyping();
  socket.emit("leave");
  logLine("notice", `You left ${room}`);
  setRoom(null);
});

$("send").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  $("text").value = "";
  send(text);
});

$("text").addEventListener("input", typed);

// The REST route next to Socket.IO on the same axum Router.
fetch("/api/hello")
  .then((r) => r.json())
  .then((j) => ($("api").textContent = `GET /api/hello: ${j.message}`))
  .catch((e) => ($("api").textContent = `GET /api/hello failed: ${e}`));
