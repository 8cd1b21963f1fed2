// The official `socket.io-client` with `socket.io-msgpack-parser` against a server speaking
// MessagePack, every check in one run:
//
//   node scripts/sio-msgpack.mjs <url> <mode>
//
// <mode> polling | websocket | upgrade (as sio-client.mjs).
//
// The server (e2e/tests/tests/socket_io_msgpack.rs) serves "/" and "/custom":
//   on connection: emits "welcome" {nsp, auth} and "kinds" (1, 1.5, -3, "héllo ✓ 🎉", null,
//     {x: [<bin 4 5>]}) and asks "question" (ack expected) with "q?";
//   "echo" (anything) is acked with the same arguments, as received;
//   "check" (1, 1.5, 2 ** 40, "ü", null, <bin>) is acked with what the server read:
//     {ints, floats, text, nil, bin};
//   "burst" (n) makes the server emit "n" 0..n-1;
//   "seq" (i) is recorded; "seq-done" is acked with the list recorded;
//   "shout" (args) broadcasts "shouted" (args) to every socket of the namespace, encoded once;
//   "big" (<bin>) is acked with its length and whether it is the expected payload, and
//     echoed as "big-back".
// Prints JSON lines as sio-client.mjs does; exit status 0 when every check passed.

import { io } from "socket.io-client";
import parser from "socket.io-msgpack-parser";

const [url, mode] = process.argv.slice(2);
const TRANSPORTS = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] };
const report = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const exit = (code) => process.stdout.write("", () => process.exit(code));
let failed = false;
const fail = (reason, extra = {}) => {
  failed = true;
  report({ event: "error", reason, ...extra });
};
const check = (cond, reason, extra = {}) => (cond ? true : (fail(reason, extra), false));
const OPTS = { transports: TRANSPORTS[mode], upgrade: mode === "upgrade", reconnection: false, parser };
const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...a) => resolve(a)));
const connected = (socket) =>
  new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
  });

function bigPayload(n) {
  const out = Buffer.alloc(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function run() {
  const root = io(url, { ...OPTS, auth: { token: "t-1", n: 7 } });
  const custom = io(`${url}/custom`, { ...OPTS, auth: { token: "t-2" } });
  check(root.io === custom.io, "one manager");
  const sockets = [root, custom];
  const welcomes = sockets.map((s) => once(s, "welcome"));
  const kinds = sockets.map((s) => once(s, "kinds"));
  for (const s of sockets) {
    s.on("question", (q, ack) => ack({ answer: `${q} yes`, from: s.nsp }));
  }
  await Promise.all(sockets.map(connected));
  for (const [i, s] of sockets.entries()) {
    const [w] = await welcomes[i];
    report({ event: "welcome", nsp: s.nsp, data: w });
    const [a, b, c, d, e, f] = await kinds[i];
    check(a === 1 && b === 1.5 && c === -3 && d === "héllo ✓ 🎉" && e === null, "kinds", { a, b, c, d, e });
    check(Buffer.isBuffer(f?.x?.[0]) && f.x[0].equals(Buffer.from([4, 5])), "nested binary from the server");
  }
  // Acks client -> server -> client, several arguments, binary nested, as received.
  const nested = { deep: [{ bin: Buffer.from([1, 2, 3]) }], u: "日本語 🙂" };
  const echo = await root.emitWithAck("echo", 1, 2.25, "x", null, nested, [Buffer.from([9])]);
  check(echo === 1, "echo first argument"); // emitWithAck resolves with the first argument
  const all = await new Promise((r) => custom.emit("echo", 1, 2.25, "x", null, nested, (...a) => r(a)));
  check(all.length === 5 || all.length === 6, "echo arity", { n: all.length });
  check(all[0] === 1 && all[1] === 2.25 && all[2] === "x" && all[3] === null, "echo scalars");
  check(Buffer.isBuffer(all[4]?.deep?.[0]?.bin) && all[4].deep[0].bin.equals(Buffer.from([1, 2, 3])), "echo nested binary");
  check(all[4]?.u === "日本語 🙂", "echo unicode");
  const seen = await root.emitWithAck("check", 1, 1.5, 2 ** 40, "ü", null, Buffer.from([7, 8]));
  report({ event: "check", data: seen });
  // Unknown namespace.
  const nope = io(`${url}/nope`, OPTS);
  const [err] = await once(nope, "connect_error");
  report({ event: "connect_error", message: err.message });
  // 300 events each way, in order.
  const got = [];
  const burstDone = new Promise((resolve) =>
    root.on("n", (i) => {
      got.push(i);
      if (got.length === 300) resolve();
    }),
  );
  root.emit("burst", 300);
  for (let i = 0; i < 300; i++) custom.emit("seq", i);
  const recorded = await custom.emitWithAck("seq-done");
  await burstDone;
  check(got.every((v, i) => v === i), "server burst in order");
  check(recorded.length === 300 && recorded.every((v, i) => v === i), "client burst in order");
  report({ event: "burst", received: got.length, recorded: recorded.length });
  // A broadcast reaches this socket and another client's, in one encoding.
  const other = io(url, { ...OPTS, forceNew: true });
  other.on("question", (q, ack) => ack({ answer: `${q} yes`, from: other.nsp }));
  await connected(other);
  const shouted = [root, other].map((s) => once(s, "shouted"));
  root.emit("shout", 1, 0.5, "é", Buffer.from([6]));
  for (const [a, b, c, d] of await Promise.all(shouted)) {
    check(a === 1 && b === 0.5 && c === "é" && Buffer.isBuffer(d) && d.equals(Buffer.from([6])), "broadcast");
  }
  report({ event: "broadcast", received: 2 });
  other.close();
  // 1 MB binary both ways.
  const big = bigPayload(1_000_000);
  const back = once(root, "big-back");
  const [len, exact] = await new Promise((r) => root.emit("big", big, (...a) => r(a)));
  const [echoed] = await back;
  check(len === big.length && exact === true, "big ack");
  check(Buffer.isBuffer(echoed) && echoed.equals(big), "big echo");
  report({ event: "big", len, same: exact });
  // Settle the transport, then report.
  const engine = root.io.engine;
  if (mode === "upgrade" && engine.transport.name !== "websocket") await once(engine, "upgrade");
  report({ event: "transport", name: engine.transport.name });
  nope.close();
  return sockets;
}

const timer = setTimeout(() => {
  fail("deadline");
  exit(1);
}, 20_000);
run()
  .then((sockets) => {
    report({ event: "done" });
    clearTimeout(timer);
    for (const s of sockets) s.close();
    if (failed) exit(1);
  })
  .catch((e) => {
    fail(String(e?.stack ?? e));
    exit(1);
  });
