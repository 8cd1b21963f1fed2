// Prints the bytes socket.io-msgpack-parser encodes for a few packets (hex, one per line),
// the golden values of volley-core's MessagePack tests. Key order is Volley's
// (type, data, nsp, id), which is also Node's for broadcasts and CONNECT replies.
import { Encoder } from "socket.io-msgpack-parser";

const enc = new Encoder();
const hex = (p) => Buffer.from(enc.encode(p)[0]).toString("hex");
const cases = {
  event: { type: 2, data: ["hello", "world"], nsp: "/" },
  numbers: { type: 2, data: ["n", 1, 1.5, -3, 300, 70000, 2 ** 40, null], nsp: "/custom", id: 12 },
  unicode: { type: 2, data: ["u", "héllo ✓ 🎉"], nsp: "/" },
  binary: { type: 2, data: ["b", Buffer.from([1, 2, 3]), { x: [Buffer.from([4])] }], nsp: "/" },
  ack: { type: 3, data: [1, "2"], nsp: "/custom", id: 456 },
  connect: { type: 0, data: { sid: "abc" }, nsp: "/" },
  connect_empty: { type: 0, data: undefined, nsp: "/admin" },
  connect_error: { type: 4, data: { message: "Invalid namespace" }, nsp: "/random" },
  disconnect: { type: 1, nsp: "/x" },
};
for (const [name, p] of Object.entries(cases)) console.log(`${name} ${hex(p)}`);
