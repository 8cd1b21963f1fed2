// Drives an Engine.IO *echo* server with the official `engine.io-client`.
//
//   node scripts/eio-echo.mjs <base-url> <mode> [path]
//
// <base-url>  e.g. http://127.0.0.1:40123 (no path)
// <mode>      polling   transports: ["polling"]            (no upgrade)
//             websocket transports: ["websocket"]          (no polling at all)
//             upgrade   default transports: polling, then the probe and upgrade to websocket
// [path]      Engine.IO path, default /engine.io/
//
// Sends a fixed set of text and binary messages, checks that each echo equals what was sent
// (same order, same kind, same bytes) and prints one JSON object per line on stdout:
//
//   {"event":"open","transport":"polling","upgrades":["websocket"]}  (upgrades: the server's)
//   {"event":"upgrade","transport":"websocket"}                      (mode "upgrade" only)
//   {"event":"echo","phase":"open","name":"text","kind":"text","data":"hello",
//    "transport":"polling","ok":true}                                (binary data: base64)
//   {"event":"done","transport":"websocket","mismatches":0}
//   {"event":"close","reason":"forced close"}
//
// Exit status: 0 when every echo matched, 1 on a mismatch, an error or the 15 s deadline.
// Diagnostics go to stderr; stdout holds only JSON lines.

import { Socket } from "engine.io-client";

const [baseUrl, mode, path = "/engine.io/"] = process.argv.slice(2);
const TRANSPORTS = {
  polling: ["polling"],
  websocket: ["websocket"],
  upgrade: ["polling", "websocket"],
};
if (!baseUrl || !(mode in TRANSPORTS)) {
  console.error("usage: eio-echo.mjs <base-url> <polling|websocket|upgrade> [path]");
  process.exit(2);
}

const report = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
// process.exit() drops stdout that a full pipe has not taken yet: exit once it is flushed.
const exit = (code) => process.stdout.write("", () => process.exit(code));
let failed = false;
const fail = (reason, extra = {}) => {
  failed = true;
  report({ event: "error", reason, ...extra });
};

// Every byte value, so a server that mangles high bytes or treats binary as UTF-8 is caught.
const allBytes = new ArrayBuffer(256);
new Uint8Array(allBytes).forEach((_, i, a) => (a[i] = i));

// What gets sent; the server must send each one back unchanged.
// `kind` is what the echo must be: "text" (a string) or "binary" (bytes).
const MESSAGES = [
  { name: "text", kind: "text", data: "hello" },
  { name: "text-unicode", kind: "text", data: "héllo wörld € 🙂 日本" },
  // Looks like a base64 binary packet on polling ("b…"), and like packet types. (Not the
  // polling payload separator \x1e: Engine.IO v4 cannot carry it in text over polling.)
  { name: "text-tricky", kind: "text", data: 'bAQIDBA==\n4 2probe "q" \\ \u0000 end' },
  { name: "text-empty", kind: "text", data: "" },
  { name: "text-large", kind: "text", data: "x".repeat(100_000) },
  { name: "binary-buffer", kind: "binary", data: Buffer.from([1, 2, 3, 4]) },
  { name: "binary-arraybuffer", kind: "binary", data: allBytes },
  { name: "binary-uint8array", kind: "binary", data: new Uint8Array([255, 0, 128, 10, 30]) },
];

const toBytes = (data) => {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return null;
};

const socket = new Socket(baseUrl, {
  path,
  transports: TRANSPORTS[mode],
  // Only the upgrade mode may upgrade; "polling" must stay on polling.
  upgrade: mode === "upgrade",
  // A failed session must fail the test, not be retried behind its back.
  reconnection: false,
});

// Echoes still expected, in order: { msg, phase }.
const pending = [];
let mismatches = 0;
let settle = null; // resolves when `pending` empties

function sendAll(phase) {
  for (const msg of MESSAGES) {
    pending.push({ msg, phase });
    socket.send(msg.data);
  }
  return new Promise((resolve) => {
    settle = resolve;
  });
}

socket.on("message", (data) => {
  const expected = pending.shift();
  if (!expected) {
    fail("unexpected message", { data: String(data).slice(0, 200) });
    return;
  }
  const { msg, phase } = expected;
  // engine.io-parser decodes an empty text message ("4") to `undefined`, on the client as
  // on the Node server: that is the official behaviour, so it counts as "".
  if (data === undefined && msg.data === "") data = "";
  const bytes = toBytes(data);
  const kind = typeof data === "string" ? "text" : bytes ? "binary" : typeof data;
  let ok = kind === msg.kind;
  let reported;
  if (kind === "text") {
    ok = ok && data === msg.data;
    reported = data;
  } else if (kind === "binary") {
    ok = ok && bytes.equals(toBytes(msg.data));
    reported = bytes.toString("base64");
  }
  if (!ok) mismatches++;
  report({
    event: "echo",
    phase,
    name: msg.name,
    kind,
    data: reported,
    transport: socket.transport.name,
    ok,
  });
  if (pending.length === 0 && settle) {
    const s = settle;
    settle = null;
    s();
  }
});

socket.on("error", (err) => fail("socket error", { message: String(err?.message ?? err) }));
socket.on("upgradeError", (err) =>
  fail("upgrade error", { message: String(err?.message ?? err) }),
);

const deadline = setTimeout(() => {
  fail("timeout", {
    transport: socket.transport?.name,
    readyState: socket.readyState,
    pending: pending.map((p) => p.msg.name),
  });
  exit(1);
}, 15_000);

// The handshake as the server sent it (`socket.upgrades` is private in engine.io-client 6.6).
let handshake = {};
socket.once("handshake", (data) => (handshake = data));
const opened = new Promise((resolve) => socket.once("open", resolve));
const upgraded = new Promise((resolve) => socket.once("upgrade", resolve));
let closing = false;
const closed = new Promise((resolve) =>
  socket.once("close", (reason, description) => {
    if (!closing) {
      fail("closed early", {
        reason,
        description: String(description?.message ?? description ?? ""),
        pending: pending.map((p) => p.msg.name),
      });
      exit(1);
      return;
    }
    resolve({ reason });
  }),
);

async function main() {
  await opened;
  report({ event: "open", transport: socket.transport.name, upgrades: handshake.upgrades });

  // Sent while the upgrade probe may be in flight: these must not be lost or reordered.
  await sendAll("open");

  if (mode === "upgrade") {
    const transport = await upgraded;
    report({ event: "upgrade", transport: transport.name });
    await sendAll("upgraded");
  }

  report({ event: "done", transport: socket.transport.name, mismatches });
  closing = true;
  socket.close();
  const { reason } = await closed;
  report({ event: "close", reason });
}

main()
  .catch((err) => fail("exception", { message: String(err?.stack ?? err) }))
  .finally(() => {
    clearTimeout(deadline);
    // No process.exit() here: the client emits "close" before its close packet has left
    // (over polling it is a POST still in flight), and the server must see that packet.
    // Node exits once nothing is pending; the unref'd timer only bounds a stuck request.
    process.exitCode = failed || mismatches > 0 ? 1 : 0;
    setTimeout(() => exit(process.exitCode), 5_000).unref();
  });
