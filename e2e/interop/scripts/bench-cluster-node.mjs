// The Node peer of bench/scripts/cluster-95k.sh: one node of a socket.io cluster on one Redis,
// with the shared benchmark's handlers (shared/bench/peers/node/server.js):
//   'echo' -> socket.emit('echo', data); 'ack' -> ack(data);
//   'broadcast' -> io.emit('broadcast', data), to every client of every node.
// socket.io 4.8.4, default options, with @socket.io/redis-adapter 8.3's createShardedAdapter
// (subscriptionMode "dynamic", its default; REDIS_ADAPTER=classic for createAdapter) over
// redis 4.7.
//
//   PORT=3101 REDIS_URL=redis://127.0.0.1:6390 [REDIS_ADAPTER=sharded|classic] \
//     node e2e/interop/scripts/bench-cluster-node.mjs
//
// Listens on 127.0.0.1:$PORT once its Redis clients are connected, then prints
// {"event":"listening","port":N}. Whether the adapter's subscription is in place is read
// from Redis by the caller (PUBSUB SHARDNUMSUB / NUMSUB). SIGTERM ends it (Node's default).

import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const PORT = Number(process.env.PORT || 3000);
const MODE = process.env.REDIS_ADAPTER || "sharded";
if (!process.env.REDIS_URL) throw new Error("REDIS_URL is required");

const pub = createClient({ url: process.env.REDIS_URL });
const sub = pub.duplicate();
for (const c of [pub, sub]) c.on("error", (e) => console.error(`node ${PORT}: redis error: ${e.message}`));
await Promise.all([pub.connect(), sub.connect()]);

const httpServer = createServer();
const io = new Server(httpServer);
if (MODE === "sharded") io.adapter(createShardedAdapter(pub, sub));
else if (MODE === "classic") io.adapter(createAdapter(pub, sub));
else throw new Error(`unknown REDIS_ADAPTER ${MODE}`);

io.on("connection", (socket) => {
  socket.on("echo", (data) => socket.emit("echo", data));
  socket.on("ack", (data, cb) => typeof cb === "function" && cb(data));
  socket.on("broadcast", (data) => io.emit("broadcast", data));
});

httpServer.listen(PORT, "127.0.0.1", () =>
  process.stdout.write(JSON.stringify({ event: "listening", port: PORT }) + "\n"),
);
