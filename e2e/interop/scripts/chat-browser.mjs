// Drives the chat example (examples/chat) in headless Chromium with playwright-core.
//
//   node scripts/chat-browser.mjs <base-url> <screenshot-dir>
//
// Each person is a page in its own browser context: alice and bob in room "lobby", carol in
// room "garden", dave with the token "bad". The script clicks and types as a person would,
// waits for what each page must show (10 s at most per wait), and prints one JSON object per
// line on stdout:
//
//   {"event":"snapshot","step":"...","page":"alice","status":"connected as alice (websocket)",
//    "online":"3 online","room":"lobby","members":["alice","bob"],"typing":"",
//    "log":[{"kind":"notice","text":"bob joined","ack":null},...],"error":"",
//    "presence":"carol connected","api":"GET /api/hello: ..."}
//   {"event":"screenshot","name":"alice","path":"/.../chat-alice.png"}
//   {"event":"done"}
//
// Steps (the "step" of each snapshot): "typing" (bob types in lobby), "chat" (alice and bob
// talked, bob types again), "left" (bob left lobby and closed his page), "refused" (dave).
// Exit status: 0 when every wait succeeded, 1 otherwise (with an {"event":"error"} line).
// Diagnostics go to stderr; stdout holds only JSON lines.

import { chromium } from "playwright-core";

const [baseUrl, shotDir] = process.argv.slice(2);
if (!baseUrl || !shotDir) {
  console.error("usage: chat-browser.mjs <base-url> <screenshot-dir>");
  process.exit(2);
}

const report = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
// process.exit() drops stdout that a full pipe has not taken yet: exit once it is flushed.
const exit = (code) => process.stdout.write("", () => process.exit(code));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// launch() gives the browser a fresh temporary user-data-dir and deletes it on close.
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

const pages = {};

/** Opens the chat as `name` with `token` and submits the login form. */
async function open(name, token = "secret") {
  const context = await browser.newContext({ viewport: { width: 960, height: 600 } });
  const page = await context.newPage();
  // A bound on a hang, never reached unless something is broken, however busy the machine.
  page.setDefaultTimeout(60_000);
  page.on("pageerror", (e) => console.error(`[${name}] page error: ${e.message}`));
  page.on("console", (m) => console.error(`[${name}] console.${m.type()}: ${m.text()}`));
  await page.goto(baseUrl);
  await page.fill("#name", name);
  await page.fill("#token", token);
  await page.click("#login button");
  pages[name] = page;
  return page;
}

/** Waits until the element `selector` of `page` shows `text` (a string it contains, or a RegExp). */
const see = (page, selector, text) => page.locator(selector, { hasText: text }).first().waitFor();

/** Joins `room` and waits for the page to confirm it. */
async function join(page, room) {
  await page.fill("#room-name", room);
  await page.click("#room button[type=submit]");
  await see(page, "#log li", `You joined ${room}`);
}

/** Types `text` in the message box one key at a time (every key is an `input` event). */
const type = (page, text) => page.locator("#text").pressSequentially(text, { delay: 120 });

/** What a page shows, read in the page; `null` while its typing indicator does not read
 *  `typing` (when given). A plain function: Playwright runs its source in the page. */
function readPage(typing) {
  const text = (id) => document.getElementById(id).textContent;
  if (typing !== undefined && text("typing") !== typing) return null;
  const error = document.getElementById("error");
  return {
    status: text("status"),
    online: text("online"),
    room: text("current-room"),
    members: [...document.querySelectorAll("#members li")].map((li) => li.textContent),
    typing: text("typing"),
    log: [...document.querySelectorAll("#log li")].map((li) => ({
      kind: li.className,
      text: li.querySelector(".text").textContent,
      ack: li.querySelector(".ack")?.textContent ?? null,
    })),
    error: error.hidden ? "" : error.textContent,
    presence: text("presence"),
    api: text("api"),
  };
}

/** Prints what `page` shows now; with `typing`, the first time its typing indicator reads
 *  that (waited for and read in one step in the page: the indicator expires by itself 3 s
 *  after the last hint, and a busy machine must not make the test miss it). */
async function snapshot(step, name, typing) {
  const page = pages[name];
  const seen =
    typing === undefined
      ? await page.evaluate(readPage)
      : await (await page.waitForFunction(readPage, typing, { polling: 50 })).jsonValue();
  report({ event: "snapshot", step, page: name, ...seen });
}

async function screenshot(name, label = name) {
  const path = `${shotDir}/chat-${label}.png`;
  await pages[name].screenshot({ path });
  report({ event: "screenshot", name, path });
}

async function main() {
  const [alice, bob, carol] = [await open("alice"), await open("bob"), await open("carol")];
  for (const page of [alice, bob, carol]) {
    // The official client starts on polling and upgrades; the page shows the transport.
    await see(page, "#status", /^connected as \w+ \(websocket\)$/);
    await see(page, "#online", "3 online");
  }
  await join(alice, "lobby");
  await join(bob, "lobby");
  await join(carol, "garden");
  await see(alice, "#log li", "bob joined");
  await see(alice, "#members li", "bob");
  await see(bob, "#members li", "alice");

  // Bob types: alice sees it, carol (another room) must not.
  await Promise.all([type(bob, "hello alice"), snapshot("typing", "alice", "bob is typing…")]);
  await sleep(300); // what reached alice had time to reach carol too
  await snapshot("typing", "carol");
  await bob.press("#text", "Enter");
  await see(bob, "#log li.mine .ack.ok", "delivered");
  await see(alice, "#log li", "bob: hello alice");

  await type(alice, "hi bob");
  await alice.press("#text", "Enter");
  await see(alice, "#log li.mine .ack.ok", "delivered");
  await see(bob, "#log li", "alice: hi bob");

  // Bob starts another message, so the screenshot shows the typing indicator too.
  await Promise.all([type(bob, "see you"), snapshot("chat", "alice", "bob is typing…")]);
  await sleep(300);
  for (const name of ["bob", "carol"]) await snapshot("chat", name);
  await screenshot("alice");

  await bob.fill("#text", "");
  await bob.click("#leave");
  await see(alice, "#log li", "bob left");
  await alice.waitForFunction(() => document.querySelectorAll("#members li").length === 1);
  await bob.context().close();
  await see(alice, "#online", "2 online");

  const dave = await open("dave", "bad");
  await see(dave, "#error", "Connection refused");
  await sleep(300); // a refused socket must not count as online
  await snapshot("refused", "dave");
  await screenshot("dave");
  for (const name of ["alice", "carol"]) await snapshot("left", name);

  // A network blip: alice's connection drops and carol writes to lobby meanwhile; alice's
  // client comes back by itself, recovered: same room, the message she missed, and the page
  // says nothing was missed.
  await join(carol, "lobby");
  await see(alice, "#log li", "carol joined");
  await alice.evaluate(() => socket.io.engine.close());
  await type(carol, "are you there?");
  await carol.press("#text", "Enter");
  await see(alice, "#status", "nothing missed");
  await see(alice, "#log li", "carol: are you there?");
  await snapshot("blip", "alice");
  await screenshot("alice", "alice-after-blip");
}

let code = 0;
try {
  await main();
  report({ event: "done" });
} catch (e) {
  report({ event: "error", message: String(e?.stack ?? e) });
  code = 1;
} finally {
  await browser.close();
}
exit(code);
