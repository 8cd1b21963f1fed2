// Drives a Socket.IO cluster (Node and Volley nodes on one Redis) with the official
// socket.io-client and checks that every node sees every other: the cluster handlers of
// ../shared/conformance/CLUSTER.md, served by conformance-server (cluster mode) and by
// scripts/cluster-node.mjs (official socket.io + @socket.io/redis-adapter).
//
//   node scripts/cluster-driver.mjs '<json>'
//   json: {"nodes":[{"url":"http://127.0.0.1:3101"},...], "mode":"classic"|"sharded"|"streams",
//          "redis":"redis://127.0.0.1:6390", "label":"before-restart",
//          "extras":true}
//   extras: false for servers that serve only CLUSTER.md (ref-node): no /chat namespace, no
//   cluster:emit-rooms or cluster:emit-volatile.
//
// Prints one JSON line per check: {"event":"check","name":...,"ok":true|false,...}, then
// {"event":"done","passed":N,"failed":M}. Exit status 1 when a check failed or on error.
// Waits are bounded (every wait has a deadline); absence is checked with a marker sent
// after the message under test on the same path, never with a sleep.

import { io } from "socket.io-client";
import { createClient } from "redis";
import { Emitter } from "@socket.io/redis-emitter";

const cfg = JSON.parse(process.argv[2]);
const N = cfg.nodes.length;
const EXTRAS = cfg.extras !== false;
const report = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const exit = (code) => process.stdout.write("", () => process.exit(code));
let passed = 0;
let failed = 0;
const check = (name, ok, extra = {}) => {
  if (ok) passed++;
  else failed++;
  report({ event: "check", name: `${cfg.label}: ${name}`, ok: !!ok, ...extra });
};
const sorted = (a) => [...a].sort();
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
// Bounds on a hang, never reached unless something is broken, however busy the machine.
const TIMEOUT = 30000;

/** Records every event of a socket; `next(event, pred)` waits for the first matching one
 *  not yet taken. */
function recorder(socket) {
  const seen = [];
  const waiters = [];
  socket.onAny((event, ...args) => {
    const item = { event, args, taken: false };
    seen.push(item);
    for (const w of [...waiters]) w();
  });
  const find = (event, pred) => seen.find((x) => !x.taken && x.event === event && pred(x.args));
  return {
    seen,
    next(event, pred = () => true, ms = TIMEOUT) {
      return new Promise((resolve, reject) => {
        const tryNow = () => {
          const hit = find(event, pred);
          if (!hit) return false;
          hit.taken = true;
          waiters.splice(waiters.indexOf(w), 1);
          clearTimeout(timer);
          resolve(hit.args);
          return true;
        };
        const w = () => tryNow();
        waiters.push(w);
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no "${event}" within ${ms} ms`));
        }, ms);
        tryNow();
      });
    },
    /** Whether an untaken `event` matching `pred` arrived. */
    has(event, pred = () => true) {
      return !!find(event, pred);
    },
  };
}

async function connect(url, nsp = "/") {
  const socket = io(url + nsp, { transports: ["websocket"], reconnection: false, forceNew: true });
  const rec = recorder(socket);
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (e) => reject(new Error(`connect ${url}${nsp}: ${e.message}`)));
  });
  return { socket, rec, url };
}

const ack = (c, event, ...args) => c.socket.timeout(TIMEOUT).emitWithAck(event, ...args);

/** Retries `f` until `ok(result)` or the deadline; returns the last result. */
async function eventually(f, ok, ms = TIMEOUT) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await f();
    if (ok(last) || Date.now() > deadline) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
}

let markerSeq = 0;
/** Sends a marker broadcast to every client of `clients` (through node 0 and through
 *  Redis) and waits until each got it: whatever was sent before on the same paths has
 *  arrived by then. */
async function barrier(clients, origin) {
  const tag = `marker-${++markerSeq}`;
  origin.socket.emit("cluster:emit-all", tag);
  await Promise.all(clients.map((c) => c.rec.next("cluster:all", (a) => a[0] === tag)));
}

async function main() {
  const root = [];
  const chat = [];
  for (const n of cfg.nodes) {
    root.push(await connect(n.url));
    if (EXTRAS) chat.push(await connect(n.url, "/chat"));
  }
  for (const [i, c] of root.entries()) {
    c.socket.on("cluster:ask", (d, cb) => cb(`c${i}:${d}`));
  }

  // C0, C13: names and server count.
  const names = [];
  for (const c of root) names.push(await ack(c, "cluster:name"));
  check("every node has its own name", new Set(names).size === N, { names });
  for (const [i, c] of root.entries()) {
    const count = await eventually(() => ack(c, "cluster:server-count"), (n) => n === N);
    check(`server count seen from ${names[i]}`, count === N, { count });
  }

  // C1, C2: rooms and data.
  await ack(root[0], "cluster:join", "room1");
  await ack(root[1], "cluster:join", "room1");
  await ack(root[2 % N], "cluster:join", "room2");
  await ack(root[1], "cluster:join", "room3");
  for (const [i, c] of root.entries()) await ack(c, "cluster:set-data", `v${i}`);

  // C3: io.emit from each node reaches every client of every node; binary too.
  for (const [i, origin] of root.entries()) {
    origin.socket.emit("cluster:emit-all", { from: i });
    const got = await Promise.allSettled(
      root.map((c) => c.rec.next("cluster:all", (a) => a[0]?.from === i)),
    );
    check(`emit to all from ${names[i]}`, got.every((g) => g.status === "fulfilled" && g.value[1] === names[i]), {
      got: got.map((g) => g.status),
    });
    const bin = Buffer.from([1, 2, 3, i]);
    origin.socket.emit("cluster:emit-all", { bin, from: `b${i}` });
    const gotBin = await Promise.allSettled(
      root.map((c) => c.rec.next("cluster:all", (a) => a[0]?.from === `b${i}`)),
    );
    check(
      `binary to all from ${names[i]}`,
      gotBin.every((g) => g.status === "fulfilled" && Buffer.isBuffer(g.value[0].bin) && g.value[0].bin.equals(bin)),
      { got: gotBin.map((g) => (g.status === "fulfilled" ? String(g.value[0].bin?.constructor?.name) : g.reason.message)) },
    );
  }

  // A volatile broadcast from each node (every client is writable, so all get it).
  for (const [i, origin] of EXTRAS ? root.entries() : []) {
    const tag = `volatile-${i}`;
    origin.socket.emit("cluster:emit-volatile", tag);
    const got = await Promise.allSettled(root.map((c) => c.rec.next("cluster:volatile", (a) => a[0] === tag)));
    check(`volatile broadcast from ${names[i]}`, got.every((g) => g.status === "fulfilled"), {
      got: got.map((g) => g.status),
    });
  }

  // C4: one room, from each node.
  for (const [i, origin] of root.entries()) {
    const tag = `room1-from-${i}`;
    origin.socket.emit("cluster:emit-room", "room1", tag);
    const got = await Promise.allSettled([0, 1].map((k) => root[k].rec.next("cluster:room", (a) => a[1] === tag)));
    await barrier(root, origin);
    const others = root.slice(2).filter((c) => c.rec.has("cluster:room", (a) => a[1] === tag));
    check(`one room from ${names[i]}`, got.every((g) => g.status === "fulfilled") && others.length === 0, {
      got: got.map((g) => g.status),
      strays: others.length,
    });
  }

  // Several rooms with except, from each node: rooms [room1, room2] except room3 reaches
  // c0 and c2, not c1 (in room1 and room3).
  if (N >= 3 && EXTRAS) {
    for (const [i, origin] of root.entries()) {
      const tag = `rooms-from-${i}`;
      origin.socket.emit("cluster:emit-rooms", ["room1", "room2"], ["room3"], tag);
      const got = await Promise.allSettled([0, 2].map((k) => root[k].rec.next("cluster:rooms", (a) => a[0] === tag)));
      await barrier(root, origin);
      const stray = root[1].rec.has("cluster:rooms", (a) => a[0] === tag);
      check(`several rooms with except from ${names[i]}`, got.every((g) => g.status === "fulfilled") && !stray, {
        got: got.map((g) => g.status),
        stray,
      });
    }
  }

  // C5: except one room.
  for (const [i, origin] of root.entries()) {
    const tag = `except-from-${i}`;
    origin.socket.emit("cluster:emit-except", "room1", tag);
    const targets = root.filter((_, k) => k >= 2);
    const got = await Promise.allSettled(targets.map((c) => c.rec.next("cluster:except", (a) => a[1] === tag)));
    await barrier(root, origin);
    const stray = [0, 1].some((k) => root[k].rec.has("cluster:except", (a) => a[1] === tag));
    check(`except a room from ${names[i]}`, got.every((g) => g.status === "fulfilled") && !stray, { stray });
  }

  // C6: socket.broadcast from each node: everyone but the sender.
  for (const [i, origin] of root.entries()) {
    const tag = `bc-${i}`;
    origin.socket.emit("cluster:broadcast", tag);
    const others = root.filter((_, k) => k !== i);
    const got = await Promise.allSettled(others.map((c) => c.rec.next("cluster:broadcast", (a) => a[0] === tag)));
    await barrier(root, origin);
    const self = origin.rec.has("cluster:broadcast", (a) => a[0] === tag);
    check(`socket.broadcast from ${names[i]}`, got.every((g) => g.status === "fulfilled") && !self, { self });
  }

  // Namespace /chat: its broadcasts stay in /chat.
  for (const [i, origin] of chat.entries()) {
    const tag = `chat-${i}`;
    origin.socket.emit("cluster:emit-all", tag);
    const got = await Promise.allSettled(chat.map((c) => c.rec.next("cluster:all", (a) => a[0] === tag)));
    await barrier(root, root[i]);
    const leaked = root.some((c) => c.rec.has("cluster:all", (a) => a[0] === tag));
    check(`/chat broadcast from ${names[i]}`, got.every((g) => g.status === "fulfilled" && g.value[1] === names[i]) && !leaked, {
      got: got.map((g) => g.status),
      leaked,
    });
  }

  // C7: fetchSockets from each node returns every node's sockets, with rooms and data.
  const ids = sorted(root.map((c) => c.socket.id));
  for (const [i, c] of root.entries()) {
    const list = await ack(c, "cluster:fetch", null);
    const got = Array.isArray(list) ? list.map((s) => s.id) : list;
    const dataOk = Array.isArray(list) && root.every((r, k) => list.find((s) => s.id === r.socket.id)?.data?.value === `v${k}`);
    const roomsOk = Array.isArray(list) && same(list.find((s) => s.id === root[1].socket.id)?.rooms, sorted([root[1].socket.id, "room1", "room3"]));
    check(`fetchSockets from ${names[i]}`, same(got, ids) && dataOk && roomsOk, { got, want: ids, dataOk, roomsOk });
    const inRoom = await ack(c, "cluster:fetch", "room1");
    const want1 = sorted([root[0].socket.id, root[1].socket.id]);
    check(`fetchSockets in a room from ${names[i]}`, same(Array.isArray(inRoom) ? inRoom.map((s) => s.id) : inRoom, want1), { inRoom });
  }

  // C8: serverSideEmit with ack from each node: one answer from every other node.
  for (const [i, c] of root.entries()) {
    const replies = await ack(c, "cluster:sse", `q${i}`);
    const want = sorted(names.filter((_, k) => k !== i).map((n) => `${n}:q${i}`));
    check(`serverSideEmit with ack from ${names[i]}`, same(replies, want), { replies, want });
  }

  // C9: io.timeout().emitWithAck from each node collects every client of the cluster.
  for (const [i, c] of root.entries()) {
    const replies = await ack(c, "cluster:ask-all", `a${i}`);
    const want = sorted(root.map((_, k) => `c${k}:a${i}`));
    check(`emitWithAck to all from ${names[i]}`, same(replies, want), { replies, want });
  }

  // C10: socketsJoin / socketsLeave across nodes.
  for (const [i, c] of root.entries()) {
    const target = `sj-${i}`;
    await ack(c, "cluster:sockets-join", "room1", target);
    const want = sorted([root[0].socket.id, root[1].socket.id]);
    const joined = await eventually(
      () => ack(root[(i + 1) % N], "cluster:fetch", target),
      (l) => Array.isArray(l) && same(l.map((s) => s.id), want),
    );
    check(`socketsJoin from ${names[i]}`, Array.isArray(joined) && same(joined.map((s) => s.id), want), { joined });
    await ack(c, "cluster:sockets-leave", "room1", target);
    const left = await eventually(
      () => ack(root[(i + 1) % N], "cluster:fetch", target),
      (l) => Array.isArray(l) && l.length === 0,
    );
    check(`socketsLeave from ${names[i]}`, Array.isArray(left) && left.length === 0, { left });
  }

  // C12: allRooms (classic only: the sharded adapter has none).
  if (cfg.mode === "classic") {
    for (const [i, c] of root.entries()) {
      const rooms = await ack(c, "cluster:all-rooms");
      const ok = Array.isArray(rooms) && ["room1", "room2", "room3", ...ids].every((r) => rooms.includes(r));
      check(`allRooms from ${names[i]}`, ok, { rooms });
    }
  }

  // The Node emitter (classic protocol only) reaches the clients of every node.
  if (cfg.mode === "classic") {
    const redis = createClient({ url: cfg.redis });
    await redis.connect();
    const emitter = new Emitter(redis);
    emitter.to("room1").emit("from-emitter", { x: 1 });
    const got = await Promise.allSettled([0, 1].map((k) => root[k].rec.next("from-emitter")));
    check("emitter to a room", got.every((g) => g.status === "fulfilled" && g.value[0]?.x === 1), {
      got: got.map((g) => g.status),
    });
    emitter.emit("from-emitter-all", Buffer.from([9, 9]));
    const all = await Promise.allSettled(root.map((c) => c.rec.next("from-emitter-all")));
    check("emitter to all, binary", all.every((g) => g.status === "fulfilled" && Buffer.isBuffer(g.value[0])), {
      got: all.map((g) => g.status),
    });
    emitter.in("room2").socketsJoin("emitted");
    const em = await eventually(
      () => ack(root[0], "cluster:fetch", "emitted"),
      (l) => Array.isArray(l) && l.length === 1,
    );
    check("emitter socketsJoin", Array.isArray(em) && same(em.map((s) => s.id), [root[2 % N].socket.id]), { em });
    await redis.quit();
  }

  // C11: disconnectSockets from each node reaches the sockets of every node.
  for (const [i, c] of root.entries()) {
    const doomed = [];
    for (const n of cfg.nodes) doomed.push(await connect(n.url));
    for (const d of doomed) await ack(d, "cluster:join", `doomed-${i}`);
    const gone = doomed.map(
      (d) =>
        new Promise((resolve, reject) => {
          const t = setTimeout(() => reject(new Error("still connected")), TIMEOUT);
          d.socket.once("disconnect", (reason) => {
            clearTimeout(t);
            resolve(reason);
          });
        }),
    );
    await ack(c, "cluster:disconnect-room", `doomed-${i}`);
    const reasons = await Promise.allSettled(gone);
    check(
      `disconnectSockets from ${names[i]}`,
      reasons.every((r) => r.status === "fulfilled" && r.value === "io server disconnect") && c.socket.connected,
      { reasons: reasons.map((r) => r.value ?? r.reason?.message) },
    );
  }

  for (const c of [...root, ...chat]) c.socket.close();
}

try {
  await main();
} catch (e) {
  failed++;
  report({ event: "error", reason: String(e?.stack || e) });
}
report({ event: "done", passed, failed });
exit(failed > 0 ? 1 : 0);
