// A Node cluster node for the mixed-cluster tests: official socket.io 4.8 with the official
// @socket.io/redis-adapter 8.3 (classic `createAdapter` or `createShardedAdapter`) or the
// official @socket.io/redis-streams-adapter 0.3.1 (`REDIS_ADAPTER=streams`), serving
// the cluster handlers of ../shared/conformance/CLUSTER.md (C0-C13) on "/" and "/chat",
// plus `cluster:emit-rooms` (several rooms with except) and `cluster:emit-volatile` — the
// same as conformance-server in cluster mode.
//
//   PORT=3101 REDIS_URL=redis://127.0.0.1:6390 REDIS_ADAPTER=classic|sharded|streams \
//   SUBSCRIPTION_MODE=dynamic SERVER_NAME=node-a [RECOVERY=1] node scripts/cluster-node.mjs
//
// With REDIS_CLUSTER=1, REDIS_URL is the comma-separated seed list of a Redis Cluster and the
// adapter runs on node-redis's cluster client (`createCluster`), as Node's docs show for
// `createShardedAdapter`. That client is node-redis 6.4 (the `redis6` alias in package.json):
// node-redis 4.7 never moves sharded subscriptions after a slot move or failover (it listens
// for `server-sunsubscribe` where its client emits `sharded-channel-moved`: redis/node-redis
// issue 3311, fixed in 6.0.1).
//
// Prints {"event":"listening","port":N} once the HTTP server listens (PORT=0: on a port the
// system picked) and the adapter's Redis clients are connected. Stops on SIGTERM/SIGINT.

import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";

const PORT = Number(process.env.PORT || 3101);
const SERVER_NAME = process.env.SERVER_NAME || `node-${PORT}`;
const MODE = process.env.REDIS_ADAPTER || "classic";
const report = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const httpServer = createServer((_, res) => {
  res.writeHead(404);
  res.end();
});
// RECOVERY=1: connection state recovery (2 min, middlewares skipped), as conformance-server.
const io = new Server(httpServer, {
  pingInterval: 1000,
  pingTimeout: 20000,
  serveClient: false,
  ...(process.env.RECOVERY === "1" && {
    connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000, skipMiddlewares: true },
  }),
});

const pub =
  process.env.REDIS_CLUSTER === "1"
    ? (await import("redis6")).createCluster({
        rootNodes: process.env.REDIS_URL.split(",").map((url) => ({ url })),
      })
    : createClient({ url: process.env.REDIS_URL });
const sub = pub.duplicate();
for (const c of [pub, sub]) c.on("error", (e) => process.env.VERBOSE && console.error("redis error:", e.message));
await Promise.all([pub.connect(), sub.connect()]);
const adapters = {
  classic: () => createAdapter(pub, sub, { requestsTimeout: 20000 }),
  sharded: () =>
    createShardedAdapter(pub, sub, { subscriptionMode: process.env.SUBSCRIPTION_MODE || "dynamic" }),
  // The streams adapter duplicates `pub` for its reader and its subscriber.
  streams: () => createStreamsAdapter(pub),
};
if (!adapters[MODE]) throw new Error(`unknown REDIS_ADAPTER ${MODE}`);
io.adapter(adapters[MODE]());

const sorted = (a) => [...a].sort();
function handlers(nsp) {
  nsp.on("cluster:ping", (data, cb) => cb && cb(`${SERVER_NAME}:${data}`));
  nsp.on("connection", (socket) => {
    socket.on("cluster:name", (ack) => ack(SERVER_NAME));
    socket.on("cluster:join", (room, ack) => {
      socket.join(room);
      ack(SERVER_NAME);
    });
    socket.on("cluster:leave", (room, ack) => {
      socket.leave(room);
      ack(SERVER_NAME);
    });
    socket.on("cluster:set-data", (value, ack) => {
      socket.data.value = value;
      ack();
    });
    socket.on("cluster:emit-all", (data) => nsp.emit("cluster:all", data, SERVER_NAME));
    socket.on("cluster:emit-room", (room, data) => nsp.to(room).emit("cluster:room", room, data));
    socket.on("cluster:emit-except", (room, data) =>
      nsp.except(room).emit("cluster:except", room, data),
    );
    socket.on("cluster:emit-rooms", (rooms, except, data) =>
      nsp.to(rooms).except(except).emit("cluster:rooms", data, SERVER_NAME),
    );
    socket.on("cluster:emit-volatile", (data) => nsp.volatile.emit("cluster:volatile", data));
    socket.on("cluster:broadcast", (data) => socket.broadcast.emit("cluster:broadcast", data));
    socket.on("cluster:fetch", async (room, ack) => {
      try {
        const list = await (room ? nsp.in(room) : nsp).fetchSockets();
        ack(
          list
            .map((s) => ({ id: s.id, rooms: sorted(s.rooms), data: s.data }))
            .sort((a, b) => (a.id < b.id ? -1 : 1)),
        );
      } catch (e) {
        ack({ error: e.message });
      }
    });
    socket.on("cluster:sse", (data, ack) =>
      nsp.serverSideEmit("cluster:ping", data, (err, replies) =>
        ack(err ? { error: err.message } : sorted(replies)),
      ),
    );
    socket.on("cluster:ask-all", async (data, ack) => {
      try {
        ack(sorted(await nsp.timeout(20000).emitWithAck("cluster:ask", data)));
      } catch (e) {
        ack({ error: e.message });
      }
    });
    socket.on("cluster:sockets-join", (room, target, ack) => {
      nsp.in(room).socketsJoin(target);
      ack();
    });
    socket.on("cluster:sockets-leave", (room, target, ack) => {
      nsp.in(room).socketsLeave(target);
      ack();
    });
    socket.on("cluster:disconnect-room", (room, ack) => {
      nsp.in(room).disconnectSockets();
      ack();
    });
    socket.on("cluster:all-rooms", async (ack) => {
      try {
        ack(sorted(await nsp.adapter.allRooms()));
      } catch (e) {
        ack({ error: e.message });
      }
    });
    socket.on("cluster:server-count", async (ack) => {
      try {
        ack(await nsp.adapter.serverCount());
      } catch (e) {
        ack({ error: e.message });
      }
    });
  });
}
handlers(io.of("/"));
handlers(io.of("/chat"));

// PORT=0: the system picks a free port, reported here (no race with other processes).
httpServer.listen(PORT, "127.0.0.1", () =>
  report({ event: "listening", port: httpServer.address().port, mode: MODE }),
);

function shutdown() {
  io.close();
  httpServer.closeAllConnections?.();
  setTimeout(() => process.exit(0), 100).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
