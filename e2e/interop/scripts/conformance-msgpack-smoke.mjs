// H1-H5 of ../shared/conformance/SUITES.md with socket.io-client + socket.io-msgpack-parser,
// against a server started with PARSER=msgpack (conformance-server or ref-node):
//
//   node scripts/conformance-msgpack-smoke.mjs <url>
//
// Prints one JSON line per observation (binary as {"$bin": [bytes]}) then {"event":"done"};
// the outputs of two servers can be compared line by line.
import { io } from "socket.io-client";
import parser from "socket.io-msgpack-parser";

const url = process.argv[2];
const show = (v) =>
  Buffer.isBuffer(v) ? { $bin: [...v] } : Array.isArray(v) ? v.map(show)
  : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, show(x)])) : v;
const report = (o) => console.log(JSON.stringify(show(o)));
const once = (s, e) => new Promise((r) => s.once(e, (...a) => r(a)));
const opts = { parser, transports: ["websocket"], reconnection: false };

const root = io(url, { ...opts, auth: { token: "123" } });
report({ event: "H1", args: await once(root, "auth") });
const custom = io(`${url}/custom`, opts);
report({ event: "H1 /custom", args: await once(custom, "auth") });
root.emit("message", 1, "2", { 3: [true] }, 1.5, null, Buffer.from([1, 2, 3]));
report({ event: "H2", args: await once(root, "message-back") });
report({ event: "H3", args: await root.timeout(5000).emitWithAck("message-with-ack", 1, "2", Buffer.from([4])) });
const h5 = once(root, "emit-with-ack");
root.emit("emit-with-ack", "A", 2);
const [a, b, ack] = await h5;
report({ event: "H5 ask", args: [a, b, typeof ack] });
const back = once(root, "emit-with-ack");
ack("B", { x: Buffer.from([9]) });
report({ event: "H5 back", args: await back });
const random = io(`${url}/random`, opts);
const [err] = await once(random, "connect_error");
report({ event: "H4", message: err.message });
report({ event: "done" });
for (const s of [root, custom, random]) s.close();
