// A Node server with the official @socket.io/admin-ui 0.5.1 instrumented, the reference the
// admin tests compare Volley (volley-admin) with, and the Node node of the mixed admin
// cluster test. Official socket.io 4.8, namespace "/" serving:
//   "echo" (value, ack)  -> emits "echo-back" with the value, acks it
//   "join" (room, ack)   -> joins the room, acks
// CORS lets any origin in with credentials (the UI is served from another port), as
// ref-node's ADMIN=1.
//
//   PORT=0 [ADMIN_MODE=production] [ADMIN_READONLY=1] [ADMIN_USER=u ADMIN_HASH=<bcrypt>]
//   [SERVER_ID=node-1] [REDIS_URL=redis://127.0.0.1:6379] node scripts/admin-node-server.mjs
//
// Prints {"event":"listening","port":N} once it listens (and, with REDIS_URL, once the
// @socket.io/redis-adapter clients are connected). Stops on SIGTERM/SIGINT or when stdin ends.

import { createServer } from "node:http";
import { Server } from "socket.io";
import { instrument } from "@socket.io/admin-ui";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const report = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const httpServer = createServer((_, res) => {
  res.writeHead(404);
  res.end();
});
const io = new Server(httpServer, {
  pingInterval: 5000,
  pingTimeout: 20000,
  serveClient: false,
  cors: { origin: true, credentials: true },
});

if (process.env.REDIS_URL) {
  const pub = createClient({ url: process.env.REDIS_URL });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on("error", (e) => console.error("redis error:", e.message));
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub, { requestsTimeout: 20000 }));
}

instrument(io, {
  auth: process.env.ADMIN_USER
    ? { type: "basic", username: process.env.ADMIN_USER, password: process.env.ADMIN_HASH }
    : false,
  mode: process.env.ADMIN_MODE || "development",
  readonly: process.env.ADMIN_READONLY === "1",
  ...(process.env.SERVER_ID && { serverId: process.env.SERVER_ID }),
});

io.of("/").on("connection", (socket) => {
  socket.on("echo", (value, ack) => {
    socket.emit("echo-back", value);
    if (typeof ack === "function") ack(value);
  });
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack();
  });
});

httpServer.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  report({ event: "listening", port: httpServer.address().port });
});
const stop = () => {
  io.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
