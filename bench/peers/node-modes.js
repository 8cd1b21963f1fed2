// socket.io (Node) server for `sio-modes` (bench/src/bin/sio-modes.rs): the handlers of the
// shared harness's Node peer (shared/bench/peers/node/server.js) plus `serverack`.
//   'echo'      -> socket.emit('echo', data)
//   'ack'       -> ack(data)
//   'broadcast' -> io.emit('broadcast', data)
//   'serverack' {inflight, data} -> keeps `inflight` socket.emit('sack', data, cb) in flight,
//                  each followed by the next when its ack arrives, while the socket is connected
// Listens on 127.0.0.1:$PORT (default 3000), default socket.io options. socket.io comes from
// NODE_PATH (the shared harness installs it in /tmp/bench-cache/node/node_modules).
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 3000);
const httpServer = http.createServer();
const io = new Server(httpServer);

io.on("connection", (socket) => {
  socket.on("echo", (data) => {
    socket.emit("echo", data);
  });
  socket.on("ack", (data, cb) => {
    if (typeof cb === "function") cb(data);
  });
  socket.on("broadcast", (data) => {
    io.emit("broadcast", data);
  });
  socket.on("serverack", (opts) => {
    const inflight = (opts && opts.inflight) || 1;
    const data = opts ? opts.data : null;
    const next = () => {
      if (socket.connected) socket.emit("sack", data, next);
    };
    for (let i = 0; i < inflight; i++) next();
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  console.error(`socket.io ${require("socket.io/package.json").version} modes peer listening on 127.0.0.1:${port} (node ${process.version})`);
});
