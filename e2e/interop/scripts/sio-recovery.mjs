// Connection state recovery with the official `socket.io-client`, one scenario per run.
//
//   node scripts/sio-recovery.mjs <url> <mode> <scenario> [msgpack]
//
// <url>       e.g. http://127.0.0.1:40123 (the server serves /socket.io/ with recovery on)
// <mode>      polling | websocket | upgrade (as sio-client.mjs)
// msgpack     use socket.io-msgpack-parser (the server must too)
// <scenario>  cut      the transport is cut (socket.io.engine.close()); the client comes back
//                      by itself and must be recovered
//             manual   socket.disconnect() then socket.connect(): a fresh session
//             expired  the transport is cut and the client comes back after the server's
//                      window: a fresh session
//
// The server (the Rust test) serves on "/": "join" (room, ack) joins a room; "emit-now"
// (n, ack) broadcasts "all" n to everybody; on a recoverable disconnect it broadcasts, while
// the client is away, "all" 1, "room" 2 to room r, "room" "no" to room q, "all" "no" except
// room r, and "all" 3. The client joins r, gets "all" 0, is cut, comes back, asks for "all" 4
// and reports every "all"/"room" it got, in order, with the offset each carried.
//
// Prints JSON lines with an "event" key: transport, connected {id, recovered}, reconnected
// {id, recovered}, got {list: [[event, value, offset], ...]}, error, done.
// Exit status 0 when the scenario ran to its end without error; the deadline is 20 s.

import { io } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";

const [url, mode, scenario, parserName] = process.argv.slice(2);
const TRANSPORTS = {
  polling: ["polling"],
  websocket: ["websocket"],
  upgrade: ["polling", "websocket"],
};
const SCENARIOS = ["cut", "manual", "expired"];

const report = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const exit = (code) => process.stdout.write("", () => process.exit(code));
let failed = false;
const fail = (reason, extra = {}) => {
  failed = true;
  report({ event: "error", reason, ...extra });
};

if (!url || !(mode in TRANSPORTS) || !SCENARIOS.includes(scenario)) {
  console.error(`usage: sio-recovery.mjs <url> <polling|websocket|upgrade> <${SCENARIOS.join("|")}>`);
  process.exit(2);
}

async function settleTransport(manager) {
  const engine = manager.engine;
  if (mode === "upgrade" && engine.transport.name !== "websocket") {
    await new Promise((resolve, reject) => {
      engine.once("upgrade", resolve);
      engine.once("upgradeError", (err) => reject(new Error(`upgradeError: ${err?.message}`)));
    });
  }
  report({ event: "transport", name: engine.transport.name });
}

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, resolve));

async function main() {
  // "expired": the client stays away longer than the server's window (the test sets it to
  // 300 ms); otherwise it comes back quickly, by itself.
  const delay = scenario === "expired" ? 1500 : 100;
  const socket = io(url, {
    transports: TRANSPORTS[mode],
    upgrade: mode === "upgrade",
    reconnection: true,
    reconnectionDelay: delay,
    reconnectionDelayMax: delay,
    randomizationFactor: 0,
    ...(parserName === "msgpack" && { parser: msgpackParser }),
  });
  const got = [];
  const waiters = [];
  const record = (event) => (...args) => {
    const offset = args[args.length - 1];
    got.push([event, args[0], typeof offset === "string" && args.length === 2 ? offset : null]);
    for (const w of waiters.splice(0)) w();
  };
  socket.on("all", record("all"));
  socket.on("room", record("room"));
  const until = async (pred) => {
    while (!pred()) await new Promise((r) => waiters.push(r));
  };

  await once(socket, "connect");
  const firstId = socket.id;
  report({ event: "connected", id: socket.id, recovered: socket.recovered });
  await socket.emitWithAck("join", "r");
  await settleTransport(socket.io);
  await socket.emitWithAck("emit-now", 0);
  await until(() => got.some(([, v]) => v === 0));

  const back = once(socket, "connect");
  if (scenario === "manual") {
    socket.disconnect();
    socket.connect();
  } else {
    socket.io.engine.close();
  }
  await back;
  report({
    event: "reconnected",
    id: socket.id,
    recovered: socket.recovered,
    sameId: socket.id === firstId,
  });
  await settleTransport(socket.io);
  await socket.emitWithAck("emit-now", 4);
  await until(() => got.some(([, v]) => v === 4));
  report({ event: "got", list: got });
  return socket;
}

const deadline = setTimeout(() => {
  fail("timeout", { scenario });
  exit(1);
}, 20_000);

main()
  .then((socket) => {
    report({ event: "done" });
    socket.disconnect();
  })
  .catch((err) => fail("exception", { message: String(err?.stack ?? err) }))
  .finally(() => {
    clearTimeout(deadline);
    process.exitCode = failed ? 1 : 0;
    setTimeout(() => exit(failed ? 1 : 2), 5_000).unref();
  });
