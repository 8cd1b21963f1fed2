// Plays the admin UI's part with the official socket.io-client against a server with the
// admin-ui server side on /admin (no auth, development mode), and prints every event the
// admin namespace sent, so a test can compare Node's @socket.io/admin-ui with Volley's.
//
//   node scripts/admin-observe.mjs http://127.0.0.1:3000
//
// The server's "/" serves "echo" (value, ack -> "echo-back") and "join" (room, ack), as
// admin-node-server.mjs. Steps, each waiting for what the admin namespace must send:
//  1. the UI connects: config, all_sockets, server_stats;
//  2. user A (WebSocket) connects, echoes, joins "garden";
//  3. the UI makes A join and leave "vip", and emits "news" (1, "two") to A;
//  4. user B connects over polling and upgrades (socket_updated with the transport);
//  5. the UI disconnects A (_disconnect); B leaves; a server_stats with the disconnection.
// Output, one JSON object per line: {"event":"admin","name":...,"args":[...]} for each admin
// event, {"event":"user",...} for what the users saw, {"event":"done"} at the end.

import { io } from "socket.io-client";

const [url] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const fail = (msg) => {
  out({ event: "error", message: msg });
  process.exit(1);
};
setTimeout(() => fail("timed out"), 120000).unref();

const seen = [];
const waiters = [];
function waitFor(name, pred = () => true) {
  return new Promise((resolve) => {
    const hit = seen.find((e) => e.name === name && pred(e.args));
    if (hit) return resolve(hit.args);
    waiters.push({ name, pred, resolve });
  });
}

const admin = io(`${url}/admin`, { transports: ["websocket"], forceNew: true, reconnection: false });
admin.onAny((name, ...args) => {
  out({ event: "admin", name, args });
  const e = { name, args };
  seen.push(e);
  for (let i = waiters.length - 1; i >= 0; i--) {
    if (waiters[i].name === name && waiters[i].pred(args)) {
      waiters[i].resolve(args);
      waiters.splice(i, 1);
    }
  }
});
admin.on("connect_error", (e) => fail(`admin connect_error: ${e.message}`));
await waitFor("config");
await waitFor("all_sockets");
await waitFor("server_stats");

const connect = (transports) =>
  new Promise((resolve) => {
    const s = io(url, { transports, forceNew: true, reconnection: false });
    s.on("connect", () => resolve(s));
    s.on("connect_error", (e) => fail(`user connect_error: ${e.message}`));
  });

const a = await connect(["websocket"]);
const aId = a.id; // socket.id is undefined once disconnected
await waitFor("socket_connected", (x) => x[0].id === a.id);
await a.emitWithAck("echo", "hi");
await waitFor("event_sent", (x) => x[1] === a.id && x[2][0] === "echo-back");
await a.emitWithAck("join", "garden");
await waitFor("room_joined", (x) => x[1] === "garden" && x[2] === a.id);

admin.emit("join", "/", "vip", a.id);
await waitFor("room_joined", (x) => x[1] === "vip");
admin.emit("leave", "/", "vip", a.id);
await waitFor("room_left", (x) => x[1] === "vip");
const news = new Promise((resolve) => a.once("news", (...args) => resolve(args)));
admin.emit("emit", "/", a.id, "news", 1, "two");
out({ event: "user", name: "news", args: await news });

const b = await connect(["polling", "websocket"]);
const upgraded = new Promise((resolve) => {
  if (b.io.engine.transport.name === "websocket") resolve();
  else b.io.engine.once("upgrade", resolve);
});
await waitFor("socket_updated", (x) => x[0].id === b.id && x[0].transport === "websocket");
await upgraded;

const gone = new Promise((resolve) => a.once("disconnect", resolve));
admin.emit("_disconnect", "/", false, a.id);
out({ event: "user", name: "disconnect", reason: await gone });
await waitFor("socket_disconnected", (x) => x[1] === aId);
const bId = b.id;
b.disconnect();
await waitFor("socket_disconnected", (x) => x[1] === bId);
await waitFor("server_stats", (x) => x[0].aggregatedEvents.some((e) => e.type === "rawDisconnection"));
out({ event: "done" });
admin.disconnect();
a.disconnect();
process.exit(0);
