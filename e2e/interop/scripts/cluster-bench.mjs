// Broadcast throughput through Redis between two cluster nodes: a client on node A asks
// for `count` broadcasts to all (cluster:emit-all); a client on node B counts arrivals.
//   node scripts/cluster-bench.mjs <urlA> <urlB> <count> [payloadBytes]
// Prints {"event":"result","count":N,"ms":T,"perSec":R}.
import { io } from "socket.io-client";

const [a, b, countArg, sizeArg] = process.argv.slice(2);
const count = Number(countArg || 20000);
const payload = "x".repeat(Number(sizeArg || 32));
const connect = (url) =>
  new Promise((resolve, reject) => {
    const s = io(url, { transports: ["websocket"], reconnection: false, forceNew: true });
    s.once("connect", () => resolve(s));
    s.once("connect_error", reject);
  });
const [sa, sb] = [await connect(a), await connect(b)];
let got = 0;
const done = new Promise((resolve) =>
  sb.on("cluster:all", () => {
    if (++got === count) resolve();
  }),
);
const t0 = process.hrtime.bigint();
for (let i = 0; i < count; i++) {
  sa.emit("cluster:emit-all", payload);
  if (i % 500 === 499) await new Promise((r) => setImmediate(r));
}
await Promise.race([done, new Promise((_, rej) => setTimeout(() => rej(new Error(`only ${got}`)), 60000))]);
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
process.stdout.write(JSON.stringify({ event: "result", count, ms: Math.round(ms), perSec: Math.round((count * 1000) / ms) }) + "\n");
sa.close();
sb.close();
process.exit(0);
