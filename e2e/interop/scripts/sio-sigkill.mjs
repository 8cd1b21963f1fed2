// The official socket.io-client 4.8, with recovery, through an address whose server gets
// killed (SIGKILL) while the client is connected; driven by the Rust test
// (e2e/server/tests/sigkill_recovery.rs) through its output, one step at a time.
//
//   node scripts/sio-sigkill.mjs <url> <polling|websocket>
//
// The server serves the cluster handlers of ../shared/conformance/CLUSTER.md on "/". The
// client connects, joins room "r", asks for "cluster:all" "m0" and reports
// {"event":"ready", id, pid} once it got it (the pid is private: printed for the test only,
// which waits for its session snapshot in Redis). When the connection drops it reports
// "disconnected" {reason}; it reconnects by itself (every 100 ms) and reports
// "reconnected" {id, recovered, sameId}, asks for "cluster:all" "end", and reports
// "got" {list: [[event, value, offset], ...]} (every "cluster:all" / "cluster:room" it got,
// in order, with the offset each carried), then "done", and stays connected until its stdin
// is closed. Deadline: 60 s.

import { io } from "socket.io-client";

const [url, mode] = process.argv.slice(2);
const TRANSPORTS = { polling: ["polling"], websocket: ["websocket"] };
const report = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const exit = (code) => process.stdout.write("", () => process.exit(code));

if (!url || !(mode in TRANSPORTS)) {
  console.error("usage: sio-sigkill.mjs <url> <polling|websocket>");
  process.exit(2);
}

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, resolve));

async function main() {
  const socket = io(url, {
    transports: TRANSPORTS[mode],
    upgrade: false,
    reconnection: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 100,
    randomizationFactor: 0,
  });
  const got = [];
  const waiters = [];
  const record = (event) => (...args) => {
    // "cluster:all" (data, server, offset), "cluster:room" (room, data, offset).
    const value = event === "all" ? args[0] : args[1];
    const offset = args.length === 3 && typeof args[2] === "string" ? args[2] : null;
    got.push([event, value, offset]);
    for (const w of waiters.splice(0)) w();
  };
  socket.on("cluster:all", record("all"));
  socket.on("cluster:room", record("room"));
  const until = async (pred) => {
    while (!pred()) await new Promise((r) => waiters.push(r));
  };

  await once(socket, "connect");
  const firstId = socket.id;
  await socket.emitWithAck("cluster:join", "r");
  socket.emit("cluster:emit-all", "m0");
  await until(() => got.some(([, v]) => v === "m0"));
  const back = once(socket, "connect");
  socket.once("disconnect", (reason) => report({ event: "disconnected", reason }));
  report({ event: "ready", id: socket.id, pid: socket._pid });

  await back;
  report({
    event: "reconnected",
    id: socket.id,
    recovered: socket.recovered,
    sameId: socket.id === firstId,
  });
  socket.emit("cluster:emit-all", "end");
  await until(() => got.some(([, v]) => v === "end"));
  report({ event: "got", list: got });
  return socket;
}

const deadline = setTimeout(() => {
  report({ event: "error", reason: "timeout" });
  exit(1);
}, 60_000);

main()
  .then((socket) => {
    report({ event: "done" });
    // Connected until the test closes stdin.
    process.stdin.resume();
    process.stdin.on("end", () => {
      socket.disconnect();
      clearTimeout(deadline);
      exit(0);
    });
  })
  .catch((err) => {
    report({ event: "error", reason: String(err?.stack ?? err) });
    exit(1);
  });
