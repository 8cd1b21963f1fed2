// Drives a Socket.IO server (with allowEIO3) with the official `socket.io-client` 2.5.0
// (Engine.IO v3, Socket.IO protocol v4), one scenario per run.
//
//   node scripts/sio-client-v2.mjs <url> <mode> <scenario>
//
// <url>       e.g. http://127.0.0.1:40123 (no path; the server serves /socket.io/)
// <mode>      polling | websocket | upgrade (polling, then the upgrade, which is waited for)
// <scenario>  main | heartbeat | room | refusal | refused (see SCENARIOS)
//
// Prints one JSON object per line on stdout, each with an "event" key, as sio-client.mjs:
// "transport", "error" (exit status 1), "done", plus the scenario's own lines.

import ioV2 from "socket.io-client-v2";
import { io as ioV4 } from "socket.io-client";

const [url, mode, scenario] = process.argv.slice(2);
const TRANSPORTS = {
  polling: ["polling"],
  websocket: ["websocket"],
  upgrade: ["polling", "websocket"],
};

const report = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
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

const OPTS = {
  transports: TRANSPORTS[mode],
  upgrade: mode === "upgrade",
  reconnection: false,
  forceNew: false,
};

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...a) => resolve(a)));

const connected = (socket) =>
  new Promise((resolve, reject) => {
    if (socket.connected) return resolve();
    socket.once("connect", resolve);
    socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err}`)));
    socket.once("error", (err) => reject(new Error(`error: ${JSON.stringify(err)}`)));
  });

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

async function settleTransport(socket) {
  const engine = socket.io.engine;
  if (mode === "upgrade" && engine.transport.name !== "websocket") {
    await once(engine, "upgrade");
  }
  report({ event: "transport", name: engine.transport.name });
}

const hex = (b) => Buffer.from(b).toString("hex");

const SCENARIOS = {
  // "/" at once, "/custom" with a query, events, acks both ways, binary both ways, the
  // unknown namespace, a 300-event burst, and the disconnect reasons.
  async main() {
    const root = ioV2(url, OPTS);
    const rootAuth = arrivals(root, "auth");
    await connected(root);
    const engineId = root.io.engine.id;
    report({ event: "root", id: root.id, engine_id: engineId, auth: (await rootAuth.next())[0] });
    await settleTransport(root);

    const custom = ioV2(url + "/custom", { ...OPTS, query: { x: "y", token: "a b" } });
    const customAuth = arrivals(custom, "auth");
    await connected(custom);
    report({
      event: "custom",
      id: custom.id,
      same_manager: custom.io === root.io,
      auth: (await customAuth.next())[0],
    });

    // Events both ways.
    const back = arrivals(root, "message-back");
    root.emit("message", 1, "2", { 3: [true] }, "é😀");
    report({ event: "message-back", args: (await back.next()) });

    // Client → server ack.
    const acked = await new Promise((r) => root.emit("message-with-ack", 1, "2", { 3: [false] }, (...a) => r(a)));
    report({ event: "ack", args: acked });

    // Server → client ack: the server asks, the client answers, the server echoes the answer.
    const ewa = arrivals(custom, "emit-with-ack");
    custom.on("emit-with-ack", (...args) => {
      const cb = args[args.length - 1];
      if (typeof cb === "function") cb("answer", { n: 2 });
    });
    custom.emit("emit-with-ack", "question");
    const asked = await ewa.next();
    const answered = await ewa.next();
    report({ event: "server-ack", asked: asked.filter((a) => typeof a !== "function"), answered });

    // Binary both ways, in an event and in an ack.
    root.emit("message", Buffer.from([1, 2, 3]), { nested: Buffer.from([4, 5, 6]) });
    const binBack = await back.next();
    check(Buffer.isBuffer(binBack[0]) && Buffer.isBuffer(binBack[1].nested), "binary not Buffer");
    report({ event: "binary-back", first: hex(binBack[0]), nested: hex(binBack[1].nested) });
    const binAck = await new Promise((r) =>
      root.emit("message-with-ack", Buffer.from([255, 0]), (...a) => r(a)),
    );
    report({ event: "binary-ack", data: hex(binAck[0]), is_buffer: Buffer.isBuffer(binAck[0]) });

    // The unknown namespace.
    const random = ioV2(url + "/random", OPTS);
    const [err] = await once(random, "error");
    report({ event: "random-error", error: err, connected: random.connected });

    // 300 events in order, echoed in order.
    const burst = arrivals(custom, "message-back");
    for (let i = 0; i < 300; i++) custom.emit("message", i);
    const got = [];
    for (let i = 0; i < 300; i++) got.push((await burst.next())[0]);
    report({ event: "burst", in_order: got.every((v, i) => v === i), count: got.length });

    // Disconnect reasons: the client leaves /custom; the server kicks "/".
    custom.disconnect();
    report({ event: "custom-left" });
    const rootGone = once(root, "disconnect");
    root.emit("kick");
    const [reason] = await rootGone;
    report({ event: "root-disconnect", reason });
    root.io.engine.close();
  },

  // Stays connected over three heartbeat intervals (the client pings, the server pongs).
  async heartbeat() {
    const root = ioV2(url, OPTS);
    await connected(root);
    await settleTransport(root);
    let pongs = 0;
    const disconnected = [];
    root.on("disconnect", (r) => disconnected.push(r));
    await new Promise((resolve) =>
      root.io.on("pong", () => {
        pongs += 1;
        if (pongs === 3) resolve();
      }),
    );
    report({ event: "heartbeat", pongs, connected: root.connected, disconnected });
    // The transport closes: the server sees "transport close".
    root.io.engine.close();
  },

  // A 2.x and a 4.x client in one room see each other's broadcasts.
  async room() {
    const v2 = ioV2(url, OPTS);
    const v4 = ioV4(url, { transports: TRANSPORTS[mode], upgrade: mode === "upgrade", reconnection: false });
    await Promise.all([connected(v2), connected(v4)]);
    const v2Said = arrivals(v2, "room-said");
    const v4Said = arrivals(v4, "room-said");
    await new Promise((r) => v2.emit("join", r));
    await new Promise((r) => v4.emit("join", r));
    v2.emit("room-say", "from-v2", Buffer.from([2]));
    const a = [await v2Said.next(), await v4Said.next()];
    v4.emit("room-say", "from-v4", Buffer.from([4]));
    const b = [await v2Said.next(), await v4Said.next()];
    const show = (args) => [args[0], hex(args[1])];
    report({ event: "room", v2: [show(a[0]), show(b[0])], v4: [show(a[1]), show(b[1])] });
    v2.close();
    v4.close();
  },

  // Middleware refusals reach a 2.x client as a plain value: the error's data, or else its
  // message.
  async refusal() {
    const root = ioV2(url, OPTS);
    await connected(root);
    await settleTransport(root);
    const plain = ioV2(url + "/secret", OPTS);
    const [a] = await once(plain, "error");
    const withData = ioV2(url + "/secret-data", OPTS);
    const [b] = await once(withData, "error");
    report({ event: "refusal", plain: a, with_data: b, root_connected: root.connected });
    plain.close();
    withData.close();
    root.close();
  },

  // Without allowEIO3 the server refuses the handshake.
  async refused() {
    const root = ioV2(url, OPTS);
    const [err] = await once(root, "connect_error");
    const d = err && err.description;
    // Over polling the description is the HTTP status; over WebSocket an object.
    report({ event: "refused", message: String(err && (err.message || err)), status: typeof d === "number" ? d : null });
    root.close();
  },
};

const run = SCENARIOS[scenario];
if (!run) {
  fail(`unknown scenario ${scenario}`);
  exit(1);
} else {
  const deadline = setTimeout(() => {
    fail("deadline");
    exit(1);
  }, 20000);
  run()
    .then(() => {
      report({ event: "done" });
      clearTimeout(deadline);
      if (failed) exit(1);
    })
    .catch((e) => {
      fail(String(e && e.stack ? e.stack : e));
      clearTimeout(deadline);
      exit(1);
    });
}
