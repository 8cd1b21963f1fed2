// Captures what the official @socket.io/redis-streams-adapter 0.3.1 writes to Redis, as the
// golden file of volley-redis (crates/redis/tests/data/streams-node-capture.json):
// stream entries (broadcasts to all, to a room, with except, binary, socketsJoin/Leave,
// disconnectSockets) and a session kept for connection state recovery.
//
//   REDIS_URL=redis://127.0.0.1:6390 node scripts/capture-streams.mjs > capture.json
//
// Redis must be empty. Prints one JSON document: {entries:[{id, fields}], session:{key,
// value, pttl}, client:{id, pid, offset, rooms}}.

import { createServer } from "node:http";
import { Server } from "socket.io";
import { io as connect } from "socket.io-client";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";

const redis = createClient({ url: process.env.REDIS_URL });
await redis.connect();
const httpServer = createServer();
const io = new Server(httpServer, {
  connectionStateRecovery: { maxDisconnectionDuration: 60000 },
  adapter: createAdapter(redis),
});
await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
const port = httpServer.address().port;
// Let the adapter's reader and subscriber connect.
await new Promise((r) => setTimeout(r, 300));

const joined = new Promise((resolve) =>
  io.on("connection", (socket) => {
    socket.join(["room1", "room2"]);
    socket.data.user = { name: "ana", n: 7 };
    resolve(socket);
  }),
);
const client = connect(`http://127.0.0.1:${port}`, { transports: ["websocket"] });
const socket = await joined;
await new Promise((r) => client.on("connect", r));
const last = (event) => new Promise((r) => client.once(event, (...args) => r(args)));

let got = last("e1");
io.emit("e1", "hello", 1);
await got;
io.to("room1").emit("e2", { a: [1, 2.5, null, true] });
io.except("room2").emit("e3", "never");
io.to("nowhere").emit("e4", "never");
got = last("e5");
io.emit("e5", Buffer.from([1, 2, 3]), "bin");
await got;
io.in("room1").socketsJoin("joined");
io.in("room1").socketsLeave("room2");
io.of("/").in("nowhere").disconnectSockets(true);
got = last("e6");
io.to("joined").emit("e6", "after-join");
await got;
const offset = client._lastOffset;
const rooms = [...socket.rooms].sort();
const pid = client._pid;
const id = socket.id;

// A recoverable disconnection: the server persists the session.
const gone = new Promise((r) => socket.on("disconnect", r));
client.io.engine.close();
await gone;
const sessionKey = `sio:session:${pid}`;
let value = null;
for (let i = 0; i < 100 && value === null; i++) {
  value = await redis.get(sessionKey);
  if (value === null) await new Promise((r) => setTimeout(r, 20));
}
const pttl = await redis.pTTL(sessionKey);
// Broadcasts it missed.
io.to("room1").emit("missed1", "x");
io.except("room1").emit("missed2", "y");
io.emit("missed3", Buffer.from([4]));
await new Promise((r) => setTimeout(r, 200));
const entries = (await redis.xRange("socket.io", "-", "+")).map((e) => ({
  id: e.id,
  fields: Object.entries(e.message),
}));
process.stdout.write(
  JSON.stringify({ entries, session: { key: sessionKey, value, pttl }, client: { id, pid, offset, rooms } }, null, 1) + "\n",
);
client.close();
io.close();
await redis.quit();
process.exit(0);
