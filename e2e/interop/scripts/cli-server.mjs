// The official Node Socket.IO server (socket.io 4.8), for the `volley` command-line client's
// tests (crates/cli/tests). The Rust tests run the same behaviour on a Volley server.
//
//   node scripts/cli-server.mjs <port> [msgpack]
//
// With "msgpack" the server uses socket.io-msgpack-parser instead of the default parser.
// <port> 0 picks a free port. Prints {"event":"listening","port":N} on stdout once it
// listens, then runs until killed (or until its stdin closes, so that it never outlives the
// test that started it).
//
// Behaviour, the same in the namespaces "/", "/chat" and "/secure":
//   "echo"      emits "echo" back to the sender with the same arguments (binary included)
//   "ack"       acknowledges with the same arguments
//   "shout"     emits the event named by its first argument, with the other arguments, to
//               the whole namespace; then acknowledges with true when asked
//   "handshake" acknowledges with {"query": query.q, "auth": the auth object, "header": the
//               x-volley-test header}
//   "never"     never acknowledges
//   "kickall"   acknowledges with true when asked, then disconnects every socket of the
//               namespace (they see "io server disconnect")
// "/secure" refuses connections whose auth.token is not "ok": message "not authorized",
// data {"code":42}.

import { createServer } from "node:http";
import { Server } from "socket.io";
import msgpackParser from "socket.io-msgpack-parser";

const port = Number(process.argv[2]) || 0;
const msgpack = process.argv[3] === "msgpack";

const httpServer = createServer();
const io = new Server(httpServer, {
  // Generous heartbeats: a busy test machine must never end a healthy connection.
  pingInterval: 25000,
  pingTimeout: 20000,
  ...(msgpack && { parser: msgpackParser }),
});

// Splits an optional acknowledgement callback off the arguments.
function split(args) {
  const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
  return [args, cb];
}

function behave(socket) {
  socket.on("echo", (...args) => socket.emit("echo", ...split(args)[0]));
  socket.on("ack", (...all) => {
    const [args, cb] = split(all);
    if (cb) cb(...args);
  });
  socket.on("shout", (...all) => {
    const [[event, ...args], cb] = split(all);
    socket.nsp.emit(String(event), ...args);
    if (cb) cb(true);
  });
  socket.on("handshake", (...all) => {
    const [, cb] = split(all);
    if (cb)
      cb({
        query: socket.handshake.query.q ?? null,
        auth: socket.handshake.auth,
        header: socket.handshake.headers["x-volley-test"] ?? null,
      });
  });
  socket.on("never", () => {});
  socket.on("kickall", (...all) => {
    const [, cb] = split(all);
    if (cb) cb(true);
    socket.nsp.disconnectSockets();
  });
}

io.on("connection", behave);
io.of("/chat").on("connection", behave);
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
