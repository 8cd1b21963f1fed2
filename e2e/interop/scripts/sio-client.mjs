// Drives a Socket.IO server with the official `socket.io-client`, one scenario per run.
//
//   node scripts/sio-client.mjs <url> <mode> <scenario>
//
// <url>       e.g. http://127.0.0.1:40123 (no path; the server serves /socket.io/)
// <mode>      polling    transports: ["polling"]                (no upgrade)
//             websocket  transports: ["websocket"]              (no polling at all)
//             upgrade    default: polling, then the upgrade to websocket, which the script
//                        waits for and reports (`transport` line)
// <scenario>  one of SCENARIOS below; each documents what the server must do.
//
// Prints one JSON object per line on stdout, each with an "event" key:
//   {"event":"transport","name":"websocket"}   the engine's transport once settled
//   {"event":"error","reason":...}              something went wrong (the exit status is 1)
//   {"event":"done"}                            the scenario ran to its end
// plus the scenario's own lines. The Rust test asserts on them; the script checks only what
// it alone can see (Buffer identity, exact string equality of echoes).
//
// Exit status: 0 when the scenario ran to its end without error, 1 otherwise or after the
// 20 s deadline. After "done" the script closes its sockets and lets Node exit by itself,
// so nothing pending (a reconnection timer, a request in flight) is cut short.

import { io } from "socket.io-client";
import { createHash } from "node:crypto";

const [url, mode, scenario] = process.argv.slice(2);
const TRANSPORTS = {
  polling: ["polling"],
  websocket: ["websocket"],
  upgrade: ["polling", "websocket"],
};

const report = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
// process.exit() drops stdout that a full pipe has not taken yet: exit once it is flushed.
const exit = (code) => process.stdout.write("", () => process.exit(code));
let failed = false;
const fail = (reason, extra = {}) => {
  failed = true;
  report({ event: "error", reason, ...extra });
};
const check = (cond, reason, extra = {}) => {
  if (!cond) fail(reason, extra);
  return cond;
};

// Options every socket gets. Reconnection is off unless a scenario is about it: a failure
// must fail the test, not be retried behind its back.
const OPTS = {
  transports: TRANSPORTS[mode],
  upgrade: mode === "upgrade",
  reconnection: false,
};

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, resolve));

/** Resolves on `connect`, rejects on `connect_error`. */
const connected = (socket) =>
  new Promise((resolve, reject) => {
    if (socket.connected) return resolve();
    socket.once("connect", resolve);
    socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
  });

/** The arrivals of `event` on `socket`, in order: `next()` resolves with the next one's
 *  arguments, whether it came before or after the call. */
function arrivals(socket, event) {
  const queue = [];
  const waiters = [];
  socket.on(event, (...args) => {
    const w = waiters.shift();
    if (w) w(args);
    else queue.push(args);
  });
  return {
    next: () =>
      queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((r) => waiters.push(r)),
  };
}

/** Waits until the manager's engine uses its final transport, and reports it. */
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

const b64 = (buf) => Buffer.from(buf).toString("base64");
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

/** Node's deep equality, Buffers included, as the checks below need it. */
function same(a, b) {
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) {
    return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => same(x, b[i]));
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => same(a[k], b[k]));
  }
  return Object.is(a, b);
}

/** JSON for a report, Buffers as {"$bin": base64}. */
function jsonable(v) {
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer) return { $bin: b64(v) };
  if (Array.isArray(v)) return v.map(jsonable);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonable(x)]));
  }
  return v;
}

/** The 1,000,000 bytes of the "big" payload: an LCG, the same as `big_payload()` in Rust. */
function bigPayload(n) {
  const out = Buffer.alloc(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

// Strings with the characters most likely to be mangled. Must match `UNICODE_*` in the Rust
// test. U+001E is the polling payload separator; JSON escapes it, so it must survive.
const UNICODE_EVENT = 'évént 🙂 \u2028\u2029 "q" \\ /\u001e';
const UNICODE_STRINGS = [
  "emoji 🙂👍🏽🇫🇷 and 日本語",
  "line\u2028separator\u2029paragraph",
  'quote " apostrophe \' backslash \\ slash / backslash-u \\u0041',
  "record\u001eseparator and \u0000 nul and \t\n\r",
  "",
];
const UNICODE_OBJECT = { "kéy 🙂\u2028": 'vål "\\', "\u2029": ["\u001e", "🙂"] };

const SCENARIOS = {
  // 1. "/" and "/chat" multiplexed on one Manager. The server emits "welcome" {nsp, id} on
  //    connection and acks "which" with its namespace name.
  async namespaces() {
    const root = io(url, OPTS);
    const chat = io(`${url}/chat`, OPTS);
    report({ event: "manager", shared: root.io === chat.io });
    const welcomes = [root, chat].map((s) => once(s, "welcome"));
    await Promise.all([connected(root), connected(chat)]);
    for (const s of [root, chat]) report({ event: "connect", nsp: s.nsp, id: s.id });
    const [w1, w2] = await Promise.all(welcomes);
    report({ event: "welcome", nsp: "/", data: w1 });
    report({ event: "welcome", nsp: "/chat", data: w2 });
    for (const s of [root, chat]) {
      report({ event: "which", nsp: s.nsp, answer: await s.emitWithAck("which") });
    }
    await settleTransport(root.io);
    report({ event: "engine", same: root.io.engine === chat.io.engine });
    return [root, chat];
  },

  // 2. Middleware accepts auth {token: "secret"} and refuses anything else with
  //    "not authorized" / {code: 42}, on "/" and "/admin". "/" emits "auth" with the auth it
  //    saw and acks "ping" with "pong".
  async auth() {
    const good = io(url, { ...OPTS, auth: { token: "secret" } });
    const authSeen = once(good, "auth");
    // Same manager as `good`: a refusal must not disturb the other namespace.
    const admin = io(`${url}/admin`, { ...OPTS, auth: { token: "wrong" } });
    // Its own manager and connection, no auth at all.
    const anon = io(url, { ...OPTS, forceNew: true });
    report({ event: "manager", shared: good.io === admin.io, separate: good.io !== anon.io });
    const refusal = (name, s) =>
      new Promise((resolve) => {
        s.once("connect", () => {
          fail("refused socket connected", { name });
          resolve();
        });
        s.once("connect_error", (err) => {
          report({
            event: "connect_error",
            name,
            message: err.message,
            data: err.data ?? null,
            active: s.active,
          });
          resolve();
        });
      });
    await Promise.all([
      connected(good).then(() => report({ event: "connect", name: "good", id: good.id })),
      refusal("admin", admin),
      refusal("anon", anon),
    ]);
    report({ event: "auth", data: (await authSeen) ?? null });
    report({ event: "pong", answer: await good.emitWithAck("ping") });
    await settleTransport(good.io);
    return [good, admin, anon];
  },

  // 3. Several arguments both ways. On connection the server emits "multi" ("a", 2,
  //    [3.5, {k: null}], false) and "none" (no argument); "ev" (1, "two", {three: [3]}) is
  //    answered with "ev-back" (10, "two!", {three: [3]}, null); "zero" with "zero-back" ().
  async events() {
    const s = io(url, OPTS);
    const none = new Promise((resolve) => s.once("none", (...args) => resolve(args)));
    const evBack = new Promise((resolve) => s.once("ev-back", (...args) => resolve(args)));
    const zeroBack = new Promise((resolve) => s.once("zero-back", (...args) => resolve(args)));
    const multiArgs = new Promise((resolve) => s.once("multi", (...args) => resolve(args)));
    await connected(s);
    report({ event: "multi", args: await multiArgs });
    report({ event: "none", args: await none });
    s.emit("ev", 1, "two", { three: [3] });
    report({ event: "ev-back", args: await evBack });
    s.emit("zero");
    report({ event: "zero-back", args: await zeroBack });
    await settleTransport(s.io);
    return [s];
  },

  // 4. Acknowledgements both ways, and their timeouts.
  //    "sum" (a, b) -> ack a + b; "pair" () -> ack ("x", 2);
  //    "ask-me" (q) -> server emit_with_ack "question" (q) -> the client answers
  //      {answer: 42, q} -> the server acks "ask-me" with {got: <that answer>};
  //    "never-answers" -> never acked (the client times out after 500 ms);
  //    "server-timeout" -> the server emits "no-answer" with a 300 ms timeout, the client
  //      never answers, the server acks "server-timeout" with what it got ("timeout").
  async acks() {
    const s = io(url, OPTS);
    s.on("question", (q, cb) => {
      report({ event: "question", q, hasCallback: typeof cb === "function" });
      cb({ answer: 42, q });
    });
    s.on("no-answer", (x, cb) => {
      // Deliberately never calls `cb`.
      report({ event: "no-answer", x, hasCallback: typeof cb === "function" });
    });
    await connected(s);
    report({ event: "sum", result: await s.emitWithAck("sum", 2, 3) });
    const pair = await new Promise((resolve) => s.emit("pair", (...args) => resolve(args)));
    report({ event: "pair", args: pair });
    report({ event: "ask-me", result: await s.emitWithAck("ask-me", "life?") });
    const t0 = Date.now();
    try {
      const r = await s.timeout(500).emitWithAck("never-answers", 1);
      fail("never-answers was answered", { r });
    } catch (err) {
      report({ event: "client-timeout", message: err.message, elapsed: Date.now() - t0 });
    }
    report({ event: "server-timeout", result: await s.emitWithAck("server-timeout") });
    await settleTransport(s.io);
    return [s];
  },

  // 5a. Binary anywhere. "nested" {a: Buffer, b: [Buffer, "x"]} comes back as "nested-back"
  //     (the server deserializes it into a struct with Bytes fields and emits that) and as
  //     the ack of "nested-ack"; "many" (5 attachments in 4 arguments) comes back as
  //     "many-back" unchanged; "server-bin" is acked with binary the server made.
  async binary() {
    const s = io(url, OPTS);
    await connected(s);
    const nested = { a: Buffer.from([1, 2, 3]), b: [Buffer.from([4, 5, 255, 0]), "x"] };
    const back = new Promise((resolve) => s.once("nested-back", resolve));
    s.emit("nested", nested);
    const nb = await back;
    check(same(nb, nested), "nested-back differs");
    report({
      event: "nested-back",
      data: jsonable(nb),
      buffers: [nb?.a, nb?.b?.[0]].map((b) => Buffer.isBuffer(b)),
    });
    const na = await s.emitWithAck("nested-ack", nested);
    check(same(na, nested), "nested-ack differs");
    report({ event: "nested-ack", data: jsonable(na) });

    const many = [
      Buffer.from("first"),
      { x: Buffer.from([0]), y: [Buffer.alloc(0), { z: Buffer.from([255, 254]) }] },
      "text",
      Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    ];
    const manyBack = new Promise((resolve) => s.once("many-back", (...args) => resolve(args)));
    s.emit("many", ...many);
    const mb = await manyBack;
    check(same(mb, many), "many-back differs");
    report({ event: "many-back", args: jsonable(mb) });

    const sb = await s.emitWithAck("server-bin");
    report({ event: "server-bin", data: jsonable(sb), buffer: Buffer.isBuffer(sb?.one) });
    await settleTransport(s.io);
    return [s];
  },

  // 5b. 1,000,000 bytes each way: "big" (buffer, sha256 hex) is acked with the length the
  //     server saw and comes back as "big-back" (buffer).
  async big() {
    const s = io(url, OPTS);
    await connected(s);
    const payload = bigPayload(1_000_000);
    const sent = sha256(payload);
    const back = new Promise((resolve) => s.once("big-back", resolve));
    const ack = await s.emitWithAck("big", payload, sent);
    const got = await back;
    report({
      event: "big",
      ack,
      sentSha: sent,
      backSha: Buffer.isBuffer(got) ? sha256(got) : null,
      backLen: Buffer.isBuffer(got) ? got.length : null,
      equal: Buffer.isBuffer(got) && got.equals(payload),
    });
    await settleTransport(s.io);
    return [s];
  },

  // 6. Unicode in event names and payloads, both ways: the server answers UNICODE_EVENT
  //    with the same event and arguments, and acks with them too.
  async unicode() {
    const s = io(url, OPTS);
    await connected(s);
    const echo = new Promise((resolve) => s.once(UNICODE_EVENT, (...args) => resolve(args)));
    const ack = await s.emitWithAck(UNICODE_EVENT, UNICODE_STRINGS, UNICODE_OBJECT);
    const args = await echo;
    const want = [UNICODE_STRINGS, UNICODE_OBJECT];
    check(same(args, want), "echoed event differs", { args });
    check(same(ack, UNICODE_STRINGS), "ack differs", { ack });
    report({ event: "unicode", echoOk: same(args, want), ackOk: same(ack, UNICODE_STRINGS), args });
    await settleTransport(s.io);
    return [s];
  },

  // 7a. The client disconnects "/" while "/chat" stays; "/chat" acks "alive" with the
  //     number of sockets left in "/"; then the client disconnects "/chat".
  async "client-disconnect"() {
    const root = io(url, OPTS);
    const chat = io(`${url}/chat`, OPTS);
    await Promise.all([connected(root), connected(chat)]);
    report({ event: "connect", nsp: "/", id: root.id });
    report({ event: "connect", nsp: "/chat", id: chat.id });
    await settleTransport(root.io);
    for (const s of [root, chat]) {
      s.on("disconnect", (reason) => report({ event: "disconnect", nsp: s.nsp, reason }));
    }
    root.disconnect();
    report({ event: "alive", answer: await chat.emitWithAck("alive") });
    chat.disconnect();
    return [];
  },

  // 7b/7c. The server disconnects: "kick" -> socket.disconnect(), "kick-all" (on "/chat") ->
  //     socket.disconnect_all(). Reconnection is on, with short delays: the client must
  //     still not reconnect. The script only ends when nothing is pending, so a scheduled
  //     reconnection would show up as a reconnect_attempt line or a second connect.
  async "server-disconnect"() {
    return serverDisconnect(false);
  },
  async "server-disconnect-all"() {
    return serverDisconnect(true);
  },

  // 8. The connection is cut under the client (the test's proxy drops every TCP connection,
  //    the second time also switching to a fresh server). The client must notice and
  //    reconnect by itself, with a new socket id. "cut-me" (n) asks the test to cut;
  //    "still-there" is acked with "yes".
  async reconnect() {
    const CUTS = 2;
    const s = io(url, {
      ...OPTS,
      reconnection: true,
      reconnectionDelay: 50,
      reconnectionDelayMax: 100,
      randomizationFactor: 0,
      timeout: 5000,
    });
    s.io.on("reconnect_attempt", (n) => report({ event: "reconnect_attempt", n }));
    s.io.on("reconnect", (n) => report({ event: "reconnect", n }));
    s.io.on("reconnect_error", (err) =>
      report({ event: "reconnect_error", message: err?.message }),
    );
    s.on("disconnect", (reason, details) => {
      const description = details?.description?.message ?? details?.description ?? "";
      report({ event: "disconnect", reason, description: String(description) });
    });
    const conns = arrivals(s, "connect");
    for (let n = 1; n <= CUTS + 1; n++) {
      await conns.next();
      report({ event: "connect", n, id: s.id, active: s.active });
      await settleTransport(s.io);
      if (n <= CUTS) {
        s.emit("cut-me", n);
      }
    }
    report({ event: "still-there", answer: await s.emitWithAck("still-there") });
    return [s];
  },
};

async function serverDisconnect(all) {
  const opts = { ...OPTS, reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 50 };
  const root = io(url, opts);
  // "kick" has only "/"; "kick-all" has "/" and "/chat" on the same connection.
  const chat = all ? io(`${url}/chat`, opts) : null;
  const sockets = all ? [root, chat] : [root];
  root.io.on("reconnect_attempt", (n) => report({ event: "reconnect_attempt", n }));
  for (const s of sockets) {
    s.on("connect", () => report({ event: "connect", nsp: s.nsp, id: s.id }));
  }
  await Promise.all(sockets.map(connected));
  await settleTransport(root.io);
  const gone = sockets.map(
    (s) =>
      new Promise((resolve) =>
        s.once("disconnect", (reason) => {
          report({ event: "disconnect", nsp: s.nsp, reason, active: s.active });
          resolve();
        }),
      ),
  );
  (all ? chat : root).emit(all ? "kick-all" : "kick");
  await Promise.all(gone);
  return [];
}

if (!url || !(mode in TRANSPORTS) || !(scenario in SCENARIOS)) {
  console.error(
    `usage: sio-client.mjs <url> <polling|websocket|upgrade> <${Object.keys(SCENARIOS).join("|")}>`,
  );
  process.exit(2);
}

const deadline = setTimeout(() => {
  fail("timeout", { scenario });
  exit(1);
}, 20_000);

SCENARIOS[scenario]()
  .then((sockets) => {
    report({ event: "done" });
    for (const s of sockets) s.disconnect();
  })
  .catch((err) => fail("exception", { message: String(err?.stack ?? err) }))
  .finally(() => {
    clearTimeout(deadline);
    process.exitCode = failed ? 1 : 0;
    // Node exits once nothing is pending (a socket still open keeps it alive, so does a
    // reconnection timer); this unref'd timer only bounds a stuck one.
    setTimeout(() => exit(failed ? 1 : 2), 5_000).unref();
  });
