// The official Node Socket.IO server (socket.io 4.8), for volley-client's tests.
//
//   node scripts/client-server.mjs <port> <pingInterval ms> <pingTimeout ms> [msgpack]
//
// With "msgpack" the server uses socket.io-msgpack-parser instead of the default parser.
// <port> 0 picks a free port. Prints {"event":"listening","port":N} on stdout once it
// listens, then runs until killed (or until its stdin closes, so that it never outlives the
// test that started it).
//
// Behaviour, the same in every namespace of /, /admin and /secure (the Rust tests run the
// same behaviour on the Volley server):
//   "echo"      emits "echo" back with the same arguments (binary included)
//   "ack"       acknowledges with the same arguments
//   "ask"       emitWithAck("question", ...args) to the client (30 s timeout), then emits
//               "answer" with the client's reply arguments
//   "collect"   appends its first argument to a list shared by the whole server (acknowledged
//               with true when the client asked)
//   "collected" acknowledges with that list
//   "auths"     acknowledges with the auth objects of every connection to "/" so far
//   "kick"      disconnects the socket (the client sees "io server disconnect")
//   "handshake" acknowledges with {"query": query.q, "header": the x-volley-test header}
//   "flaky"     counts how often it saw its first argument; acknowledges with that count only
//               from the second time on (for the client's retries)
//   "broadcast" emits "tick" with the same arguments to the whole namespace, then acknowledges
//               with true
//   "poke"      emitWithAck("question", ...args) to the client (reply ignored), then
//               acknowledges with true
//   "state"     acknowledges with {"id", "recovered", "count": sockets in the namespace}
// RECOVERY=1 in the environment turns connection state recovery on (2-minute window).
// /secure refuses connections whose auth.token is not "ok": message "not authorized",
// data {"code":42}.

import { createServer } from "node:http";
import { Server } from "socket.io";
import msgpackParser from "socket.io-msgpack-parser";

const [port, pingInterval, pingTimeout] = process.argv.slice(2, 5).map(Number);
const msgpack = process.argv[5] === "msgpack";

const httpServer = createServer();
const io = new Server(httpServer, {
  pingInterval: pingInterval || 25000,
  pingTimeout: pingTimeout || 20000,
  maxHttpBufferSize: 1e7,
  ...(process.env.RECOVERY === "1"
    ? { connectionStateRecovery: { maxDisconnectionDuration: 120000, skipMiddlewares: true } }
    : {}),
  ...(msgpack && { parser: msgpackParser }),
});

const collected = [];
const seen = new Map();
const auths = [];

function behave(socket) {
  socket.on("echo", (...args) => socket.emit("echo", ...args));
  socket.on("ack", (...args) => {
    const cb = args.pop();
    if (typeof cb === "function") cb(...args);
  });
  socket.on("ask", async (...args) => {
    try {
      const reply = await socket.timeout(30000).emitWithAck("question", ...args);
      socket.emit("answer", reply);
    } catch (e) {
      socket.emit("answer", { error: String(e) });
    }
  });
  socket.on("collect", (...args) => {
    const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
    collected.push(args[0]);
    if (cb) cb(true);
  });
  socket.on("collected", (...args) => args.pop()(collected));
  socket.on("auths", (...args) => args.pop()(auths));
  socket.on("kick", () => socket.disconnect());
  socket.on("handshake", (...args) =>
    args.pop()({ query: socket.handshake.query.q, header: socket.handshake.headers["x-volley-test"] }),
  );
  socket.on("flaky", (key, cb) => {
    const n = (seen.get(key) || 0) + 1;
    seen.set(key, n);
    collected.push(key);
    if (n >= 2 && typeof cb === "function") cb(n);
  });
  socket.on("broadcast", (...args) => {
    const cb = args.pop();
    socket.nsp.emit("tick", ...args);
    cb(true);
  });
  socket.on("poke", (...args) => {
    const cb = args.pop();
    socket.timeout(30000).emitWithAck("question", ...args).catch(() => {});
    cb(true);
  });
  socket.on("state", (cb) =>
    cb({ id: socket.id, recovered: socket.recovered, count: socket.nsp.sockets.size }),
  );
}

io.on("connection", (socket) => {
  auths.push(socket.handshake.auth);
  behave(socket);
});
io.of("/admin").on("connection", behave);
io.of("/secure").use((socket, next) => {
  if (socket.handshake.auth && socket.handshake.auth.token === "ok") return next();
  const err = new Error("not authorized");
  err.data = { code: 42 };
  next(err);
});
io.of("/secure").on("connection", behave);

httpServer.listen(port, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ event: "listening", port: httpServer.address().port }) + "\n");
});

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
