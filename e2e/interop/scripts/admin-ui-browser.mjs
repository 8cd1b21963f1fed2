// Drives the official admin UI (the `ui/dist` of the npm package @socket.io/admin-ui 0.5.1,
// served here from another loopback port) in headless Chromium with playwright-core,
// against a server with the admin-ui server side on /admin (no auth).
//
//   node scripts/admin-ui-browser.mjs '<config json>'
//
// config: {"adminUrl": "http://127.0.0.1:3000", "shots": "/abs/dir", "prefix": "single",
//          "servers": 1, "clients": [{"url": "...", "transport": "websocket", "rooms": ["lobby"]}],
//          "login": {"username": "admin", "password": "secret"}}   (login: with basic auth)
// The script connects the clients itself (official socket.io-client, namespace "/", joining
// their rooms with the server's "join" handler), then, in the UI: connects to adminUrl through
// the connection form (with `login`: a wrong password first, which the form must refuse,
// then the right one), waits until the Servers page lists `servers` servers and the
// dashboard counts every client (the users' connections plus the UI's own), reads the Sockets
// and Rooms pages until every client's socket and room is there, then clicks the disconnect
// button of the first client's socket and waits for that client to hear it.
//
// Output, one JSON object per line (diagnostics on stderr):
//   {"event":"client","id":...,"url":...,"transport":...,"rooms":[...]}
//   {"event":"login-refused","text":"Invalid credentials"}
//   {"event":"servers","rows":[["<serverId>","<hostname>","<pid>","<uptime>","<clients>",...],...]}
//   {"event":"dashboard","clients":N,"websocket":N,"polling":N,"healthyServers":N}
//   {"event":"sockets","namespace":"/","rows":[["<id>","<address>","<transport>"],...]}
//   {"event":"rooms","rows":[["<name>","<type>","<count>"],...]}
//   {"event":"client-disconnect","id":...,"reason":"io server disconnect"}
//   {"event":"screenshot","name":...,"path":...}
//   {"event":"done"}
// Exit status 0 when every wait succeeded, 1 otherwise (with an {"event":"error"} line).

import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { io } from "socket.io-client";

const config = JSON.parse(process.argv[2] || "{}");
const report = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const exit = (code) => process.stdout.write("", () => process.exit(code));
const fail = (message) => {
  report({ event: "error", message });
  exit(1);
};
process.on("unhandledRejection", (e) => fail(String(e && e.stack ? e.stack : e)));

// 1. The UI's static files, on a port of their own (another origin than the server's).
const UI_DIR = fileURLToPath(new URL("../node_modules/@socket.io/admin-ui/ui/dist/", import.meta.url));
const TYPES = {
  ".html": "text/html",
  ".js": "text/javascript",
  ".css": "text/css",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".map": "application/json",
};
const statics = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^(\.\.[/\\])+/, "");
  const file = join(UI_DIR, path === "/" ? "index.html" : path);
  try {
    const body = await readFile(file);
    res.writeHead(200, { "Content-Type": TYPES[extname(file)] || "application/octet-stream" });
    res.end(body);
  } catch {
    res.writeHead(404);
    res.end();
  }
});
await new Promise((r) => statics.listen(0, "127.0.0.1", r));
const uiUrl = `http://127.0.0.1:${statics.address().port}/`;

// 2. The clients.
const clients = [];
for (const spec of config.clients) {
  const socket = io(spec.url, { transports: [spec.transport], forceNew: true, reconnection: false });
  await new Promise((resolve) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (e) => fail(`client connect_error: ${e.message}`));
  });
  for (const room of spec.rooms || []) await socket.emitWithAck("join", room);
  const c = { id: socket.id, url: spec.url, transport: spec.transport, rooms: spec.rooms || [] };
  clients.push({ ...c, socket });
  report({ event: "client", ...c });
}

// 3. The UI in Chromium.
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
const page = await context.newPage();
page.setDefaultTimeout(60_000); // a bound on a hang, never reached unless something is broken
page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
// Only loopback: the UI's web fonts from CDNs are not needed.
await page.route(/^https?:\/\/(?!127\.0\.0\.1)/, (route) => route.abort());
const shot = async (name) => {
  const path = join(config.shots, `admin-${config.prefix}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  report({ event: "screenshot", name, path });
};
// The rows of the data table of the page shown (a page that is leaving is hidden).
const rows = () =>
  page.$$eval(".v-main .v-data-table:has(thead) tbody tr", (trs) =>
    trs
      .filter((tr) => tr.offsetParent !== null && !tr.querySelector(".v-data-table__empty-wrapper, td[colspan]"))
      .map((tr) => [...tr.querySelectorAll("td")].map((td) => td.innerText.trim())),
  );

await page.goto(uiUrl);
const form = page.locator(".v-dialog form");
const inputs = form.locator("input"); // server URL, username, password
await inputs.nth(0).fill(config.adminUrl);
if (config.login) {
  // A wrong password first: the form says so and stays open.
  await inputs.nth(1).fill(config.login.username);
  await inputs.nth(2).fill(`${config.login.password}-wrong`);
  await form.locator("button[type=submit]").click();
  const error = form.locator(".red--text");
  await error.waitFor();
  report({ event: "login-refused", text: (await error.innerText()).trim() });
  await inputs.nth(2).fill(config.login.password);
}
await form.locator("button[type=submit]").click();
await page.locator(".v-dialog form").waitFor({ state: "hidden" });
const connectedChip = () =>
  page.waitForFunction(() =>
    [...document.querySelectorAll("header .v-chip")].some((c) => c.innerText.trim().toLowerCase() === "connected"),
  );
await connectedChip();
// (No reload test of the UI's session id: the UI 0.5.1 registers its "session" listener on
// "connect", after socket.io-client 4.x has emitted the events that came before the CONNECT
// answer, so it never stores the id, with Node's instrument as with Volley's.)

// Servers: every server's stats reached the UI (in a cluster, through the adapter).
await page.goto(`${uiUrl}#/servers/`);
await page.waitForFunction(
  (n) =>
    [...document.querySelectorAll(".v-main .v-data-table:has(thead) tbody tr")].filter(
      (tr) => tr.offsetParent !== null && !tr.querySelector("td[colspan]"),
    ).length === n,
  config.servers,
);
report({ event: "servers", rows: await rows() });
await shot("servers");

// Dashboard: the clients card counts the users' connections and the UI's own.
const expectedClients = clients.length + 1;
// The UI's own connection starts on long-polling and upgrades: a server_stats sampled before
// its upgrade counts it as polling, so wait for the split the clients asked for (the UI on
// WebSocket), not only for the total.
const expectedPolling = config.clients.filter((c) => c.transport === "polling").length;
await page.goto(`${uiUrl}#/`);
// The dashboard's small tables: [chip label, big number] per row ("WebSocket" / "HTTP
// long-polling" in the clients card, "Healthy" / "Unhealthy" in the servers card).
const figures = () =>
  [...document.querySelectorAll(".v-main .v-card tr")]
    .filter((tr) => tr.offsetParent !== null && tr.querySelector(".v-chip") && tr.querySelector("h2"))
    .map((tr) => [tr.querySelector(".v-chip").innerText.trim().toLowerCase(), Number(tr.querySelector("h2").innerText)]);
await page.waitForFunction(
  ([n, f, p]) => {
    const h = eval(f)();
    const ws = h.find(([k]) => k === "websocket");
    const lp = h.find(([k]) => k.includes("polling"));
    return ws && lp && ws[1] + lp[1] === n && lp[1] === p;
  },
  [expectedClients, `(${figures})`, expectedPolling],
);
{
  const h = await page.evaluate((f) => eval(f)(), `(${figures})`);
  const get = (pred) => (h.find(([k]) => pred(k)) || [])[1];
  const websocket = get((k) => k === "websocket");
  const polling = get((k) => k.includes("polling"));
  report({
    event: "dashboard",
    websocket,
    polling,
    clients: websocket + polling,
    healthyServers: get((k) => k === "healthy"),
  });
}
await shot("dashboard");

// Sockets: every client's socket in namespace "/", with its transport.
await page.goto(`${uiUrl}#/sockets/`);
await page.waitForFunction(
  (ids) => ids.every((id) => document.querySelector(".v-main").innerText.includes(id)),
  clients.map((c) => c.id),
);
// The namespace selector fills in when the UI has the server's namespaces (from its
// server_stats, sent every 2 s), which may come after the socket list: until then the only
// selection on the page is the table's "rows per page". Wait for a namespace to be chosen.
await page.waitForFunction(() =>
  [...document.querySelectorAll(".v-main .v-select__selection")].some((e) => e.innerText.trim().startsWith("/")),
);
const selected = await page
  .locator(".v-main .v-select__selection")
  .filter({ hasText: /^\s*\// })
  .first()
  .innerText();
report({ event: "sockets", namespace: selected.trim(), rows: (await rows()).map((r) => r.slice(0, 3)) });
await shot("sockets");

// Rooms: every room a client joined.
await page.goto(`${uiUrl}#/rooms/`);
const roomNames = [...new Set(clients.flatMap((c) => c.rooms))];
await page.waitForFunction(
  (names) => {
    const cells = [...document.querySelectorAll(".v-main .v-data-table:has(thead) tbody tr td:first-child")]
      .filter((td) => td.offsetParent !== null)
      .map((td) => td.innerText.trim());
    return names.every((n) => cells.includes(n));
  },
  roomNames,
);
report({ event: "rooms", rows: (await rows()).map((r) => r.slice(0, 3)) });
await shot("rooms");

// Disconnect the first client's socket from its row on the Sockets page.
const target = clients[0];
const heard = new Promise((resolve) => target.socket.once("disconnect", resolve));
await page.goto(`${uiUrl}#/sockets/`);
await page.locator("tr", { hasText: target.id }).locator("button").click();
report({ event: "client-disconnect", id: target.id, reason: await heard });
await page.goto(`${uiUrl}#/sockets/`);
await page.waitForFunction((id) => !document.body.innerText.includes(id), target.id);
await shot("after-disconnect");

report({ event: "done" });
for (const c of clients) c.socket.disconnect();
await browser.close();
statics.close();
exit(0);
