// End-to-end tests of the dashboard (issue 17), in headless Chromium driven by playwright-core.
//
// The script starts everything it talks to, all on loopback: a webhooksd of its own on a
// temporary data directory (`WEBHOOKSD`; started once to create the store, stopped, given a
// fast disabler with the `webhooks` CLI (`WEBHOOKS_CLI`), started again) and a receiver on
// 127.0.0.2 whose answer the test chooses. Then, through the UI only: log in, create a hook,
// send a test event and see its attempt, watch the hook get auto-disabled, re-enable it,
// replay an attempt and check the receiver got the same `webhook-id`; and the other views and
// actions on the way. Each view is photographed at desktop and phone width into
// target/dashboard-screenshots/ (git-ignored).
//
// Run it with `dashboard-tests/run`, or `node --test e2e.mjs` with the two variables set.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

const WEBHOOKSD = process.env.WEBHOOKSD;
const WEBHOOKS_CLI = process.env.WEBHOOKS_CLI;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.SCREENSHOTS || fileURLToPath(new URL("../target/dashboard-screenshots/", import.meta.url));
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 375, height: 740 };
/** The longest any single wait may take; every wait in here is bounded. */
const WAIT_MS = 20_000;

// ---------------------------------------------------------------------------------------------
// The world: receiver, daemon, browser.

/** An HTTP receiver on 127.0.0.2 that records each request and answers `status`. */
async function startReceiver() {
  const receiver = { requests: [], status: 500 };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      receiver.requests.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(receiver.status, { "content-type": "text/plain" });
      res.end(receiver.status >= 400 ? "receiver says no\n" : "ok\n");
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.2", resolve);
  });
  receiver.url = `http://127.0.0.2:${server.address().port}/hook`;
  receiver.close = () => new Promise((resolve) => server.close(resolve));
  return receiver;
}

/** Starts webhooksd on `dataDir` and resolves once it printed both listening addresses. */
async function startDaemon(dataDir, masterKey) {
  const args = [
    "--data-dir", dataDir,
    "--listen", "127.0.0.1:0",
    "--websocket-listen", "127.0.0.1:0",
    "--master-api-key", masterKey,
    "--allowed-destinations", "127.0.0.0/8,::1",
    "--blocked-cidrs", "0.0.0.0/32",
    "--retry-delay-ms", "200",
    "--drain-deadline-secs", "2",
  ];
  const child = spawn(WEBHOOKSD, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "warn" } });
  const daemon = { child, stderr: "" };
  child.stderr.on("data", (d) => {
    daemon.stderr = (daemon.stderr + d).slice(-20_000);
  });
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  daemon.exited = exited;
  const lines = createInterface({ input: child.stdout });
  const ready = new Promise((resolve) => {
    lines.on("line", (line) => {
      let m;
      if ((m = line.match(/^websockets listening on (\S+)$/))) daemon.ws = m[1];
      else if ((m = line.match(/^listening on (\S+)$/))) {
        daemon.api = `http://${m[1]}`;
        resolve();
      }
    });
  });
  const outcome = await Promise.race([
    ready.then(() => "ready"),
    exited.then((e) => `exited early (${JSON.stringify(e)})`),
    deadline(30_000).then(() => "not listening after 30 s"),
  ]);
  if (outcome !== "ready") {
    child.kill("SIGKILL");
    throw new Error(`webhooksd ${outcome}\n${daemon.stderr}`);
  }
  assert.ok(daemon.ws, "the daemon printed its websocket address");
  return daemon;
}

async function stopDaemon(daemon) {
  if (!daemon || daemon.child.exitCode !== null || daemon.child.signalCode !== null) return;
  daemon.child.kill("SIGTERM");
  const done = await Promise.race([daemon.exited.then(() => true), deadline(15_000).then(() => false)]);
  if (!done) {
    daemon.child.kill("SIGKILL");
    await daemon.exited;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** A deadline for a race: it does not keep the process alive once the race is won. */
const deadline = (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref());

/** Calls `fn` until it returns something truthy, at most `ms`; fails with `what` otherwise. */
async function eventually(what, fn, ms = WAIT_MS, every = 250) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(every);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

/**
 * The API as a script uses it, for the setup the UI is not under test for. `data` goes in
 * crossbar's `{"data": ...}`, except for `/events`, whose body is the KAZOO event itself.
 */
async function api(method, path, data, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers["x-auth-token"] = token;
  const resp = await fetch(`${world.daemon.api}/v2${path}`, {
    method,
    headers,
    body: data === undefined ? undefined : JSON.stringify(path === "/events" ? data : { data }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = await resp.json();
  assert.ok(resp.ok, `${method} ${path}: ${resp.status} ${JSON.stringify(body)}`);
  return body;
}

const world = {};

before(async () => {
  assert.ok(WEBHOOKSD, "WEBHOOKSD names the webhooksd binary (dashboard-tests/run sets it)");
  assert.ok(WEBHOOKS_CLI, "WEBHOOKS_CLI names the webhooks binary (dashboard-tests/run sets it)");
  world.dir = await mkdtemp(join(tmpdir(), "dashboard-e2e-"));
  world.key = randomBytes(32).toString("hex");
  world.receiver = await startReceiver();

  // First start creates the store; the disabler's settings are read from it, so set them
  // with the CLI while the daemon is stopped and start again: 2 failures in 2 s disable a
  // hook, and the disabler looks every 0.5 s.
  const first = await startDaemon(world.dir, world.key);
  await stopDaemon(first);
  const cli = promisify(execFile);
  for (const args of [["set-disable-threshold", "2"], ["set-failure-expiry", "2000"]]) {
    await cli(WEBHOOKS_CLI, ["--data-dir", world.dir, ...args], { timeout: 30_000 });
  }
  world.daemon = await startDaemon(world.dir, world.key);

  // A sub-account, so the tree has a branch (made through the API: not what is under test).
  const auth = await api("PUT", "/api_auth", { api_key: world.key });
  world.token = auth.auth_token;
  world.master = auth.data.account_id;
  world.child = (await api("PUT", "/accounts", { name: "Acme Support" }, world.token)).data.id;

  await mkdir(SHOTS, { recursive: true });
  world.browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 60_000 });
  world.context = await world.browser.newContext({ viewport: DESKTOP });
  world.page = await world.context.newPage();
  world.page.setDefaultTimeout(WAIT_MS);
  world.problems = [];
  world.page.on("pageerror", (e) => world.problems.push(`page error: ${e.message}`));
  world.page.on("console", (m) => {
    // The browser logs each refused request; the tests cause some on purpose (a wrong api
    // key, a bad hook, a bad token). What must never show: script errors, CSP violations.
    if (m.type() === "error" && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) {
      world.problems.push(`console: ${m.text()}`);
    }
  });
});

after(async () => {
  await world.browser?.close().catch(() => {});
  await stopDaemon(world.daemon);
  await world.receiver?.close();
  if (world.dir) await rm(world.dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Helpers over the page.

let shot = 0;
/** Photographs the page as it is, at desktop and at phone width, and checks the phone view does not scroll sideways. */
async function photograph(name) {
  const page = world.page;
  shot += 1;
  const base = `${String(shot).padStart(2, "0")}-${name}`;
  await page.screenshot({ path: join(SHOTS, `${base}-desktop.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  await sleep(100);
  await page.screenshot({ path: join(SHOTS, `${base}-phone.png`), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.setViewportSize(DESKTOP);
  assert.ok(overflow <= 0, `${name}: at 375 px the page scrolls sideways by ${overflow} px`);
}

/**
 * Waits for a view: its heading names it and has the focus (focus follows navigation), except
 * on the login view, where the focus goes straight to the API key field.
 */
async function onView(heading) {
  const h1 = world.page.getByRole("heading", { level: 1, name: heading, exact: true });
  await h1.waitFor();
  const expected = heading === "Log in" ? "INPUT" : "H1";
  await eventually(`focus on the ${expected === "H1" ? "heading" : "API key field"} of "${heading}"`, () =>
    world.page.evaluate((tag) => document.activeElement && document.activeElement.tagName === tag, expected)
  );
  return h1;
}

// The two message regions (hidden while empty, so found by id rather than by role).
const alertText = () => world.page.locator("#alert").innerText();
const statusText = () => world.page.locator("#status").innerText();

/** The row of the hooks table naming `hook`. */
const hookRow = (name) => world.page.getByRole("row").filter({ has: world.page.getByRole("link", { name }) });

// ---------------------------------------------------------------------------------------------
// The tests, in order: each builds on the one before; after a failure the rest are skipped.

let broken = false;
function step(name, fn) {
  test(name, { timeout: 120_000 }, async (t) => {
    if (broken) return t.skip("an earlier step failed");
    try {
      await fn(t);
    } catch (e) {
      broken = true;
      const page = world.page;
      if (page) await page.screenshot({ path: join(SHOTS, `failed-${name.replace(/\W+/g, "-")}.png`), fullPage: true }).catch(() => {});
      if (world.daemon) e.message += `\n--- webhooksd stderr (tail) ---\n${world.daemon.stderr.slice(-4000)}`;
      throw e;
    }
  });
}

const HOOK = "Calls to the receiver";

step("serves the page with a strict content security policy", async () => {
  const resp = await fetch(`${world.daemon.api}/dashboard`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(resp.status, 200);
  const csp = resp.headers.get("content-security-policy");
  assert.match(csp, /script-src 'self';/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  const config = await (await fetch(`${world.daemon.api}/dashboard/config.json`)).json();
  assert.equal(config.websocket_port, Number(world.daemon.ws.split(":").pop()));
});

step("logs in with the API key field, showing the API's words for a wrong key", async () => {
  const page = world.page;
  await page.goto(`${world.daemon.api}/dashboard`);
  await onView("Log in");
  await photograph("login");
  const key = page.getByLabel("API key");
  await key.fill("0".repeat(64));
  await key.press("Enter");
  await eventually("the refusal in the alert", async () => /invalid_credentials/.test(await alertText()));
  assert.match(await alertText(), /invalid credentials/);
  assert.ok(await page.getByRole("alert").getByText("invalid_credentials").isVisible(), "the error is in a role=alert region");
  await photograph("login-refused");
  await key.fill(world.key);
  await key.press("Enter");
  await onView("Accounts");
  assert.match(await statusText(), /Logged in as master/);
});

step("shows the account tree with hook counts", async () => {
  const page = world.page;
  const tree = page.getByRole("list", { name: "Account tree" });
  await tree.getByRole("link", { name: "Acme Support" }).waitFor();
  await eventually("hook counts", async () => (await tree.innerText()).includes("0 hooks"));
  await photograph("accounts");
});

step("creates a hook through the form, showing a validation error as the API words it", async () => {
  const page = world.page;
  await page.getByRole("list", { name: "Account tree" }).getByRole("link", { name: "master", exact: true }).click();
  await onView("Hooks of master");
  assert.match(await page.getByText("This account has no hooks yet").innerText(), /no hooks/);
  await page.getByRole("link", { name: "New hook" }).click();
  await onView("New hook in master");
  await page.getByLabel("Name").fill(HOOK);
  await page.getByLabel("Destination URI").fill(world.receiver.url);
  await page.getByLabel("Event").selectOption("channel_create");
  await page.getByLabel("HTTP method").selectOption("post");
  await page.getByLabel("Retries").fill("9");
  await page.getByRole("button", { name: "Create hook" }).click();
  await eventually("the validation error", async () => /validation error/.test(await alertText()));
  const words = await alertText();
  assert.match(words, /retries/);
  assert.match(words, /Value must be at most/, `the API's own message, got: ${words}`);
  assert.equal(await page.getByLabel("Retries").getAttribute("aria-invalid"), "true");
  await photograph("hook-form-error");
  await page.getByLabel("Retries").fill("1");
  assert.ok(await page.getByLabel("Enabled").isChecked());
  await page.getByRole("button", { name: "Create hook" }).click();
  await onView(HOOK);
  assert.match(await statusText(), /created/);
  world.hookUrl = page.url();
  world.hookId = world.hookUrl.split("/").pop();
});

step("sends a test event and sees the failed attempt arrive, with its request and response", async () => {
  const page = world.page;
  world.receiver.status = 500;
  await page.getByRole("navigation", { name: "Breadcrumb" }).getByRole("link", { name: "master" }).click();
  await onView("Hooks of master");
  await page.getByRole("button", { name: "Send test event" }).click();
  await eventually("the event dispatched", async () => /Test event sent: 1 delivery/.test(await statusText()));
  await eventually("the receiver hit", () => world.receiver.requests.length >= 1);
  await page.getByRole("link", { name: HOOK }).click();
  await onView(HOOK);
  const attempts = page.getByRole("list", { name: /attempts?, newest first/ });
  await attempts.waitFor();
  const first = attempts.getByRole("listitem").first();
  await eventually("a failed attempt with HTTP 500", async () => {
    const text = await first.innerText();
    return /Failed/.test(text) && /HTTP 500/.test(text);
  });
  assert.match(await first.innerText(), /\d+ ms/, "its latency is shown");
  await first.getByText("Request and response").click();
  const details = await first.innerText();
  assert.match(details, /receiver says no/, "the response body");
  assert.match(details, /webhook-id/i, "the request headers");
  assert.match(details, /hook_event = channel_create/, "the request body, decoded");
  await photograph("hook-detail");
});

step("watches the hook get auto-disabled, with its reason", async () => {
  const page = world.page;
  await page.getByRole("navigation", { name: "Breadcrumb" }).getByRole("link", { name: "master" }).click();
  await onView("Hooks of master");
  const send = page.getByRole("button", { name: "Send test event" });
  const row = hookRow(HOOK);
  // Two failures within the window disable it; the disabler looks every 0.5 s.
  await eventually(
    "the hook auto-disabled",
    async () => {
      const text = await row.innerText();
      if (/Auto-disabled/.test(text)) return true;
      if (await send.isEnabled()) await send.click();
      await page.getByRole("button", { name: "Refresh", exact: true }).click();
      return false;
    },
    WAIT_MS,
    700
  );
  const text = await row.innerText();
  assert.match(text, /Auto-disabled/);
  assert.match(text, /fail/i, `the reason is shown: ${text}`);
  await photograph("hooks-auto-disabled");
  await page.getByRole("link", { name: "Accounts" }).first().click();
  await onView("Accounts");
  const tree = page.getByRole("list", { name: "Account tree" });
  await eventually("the auto-disabled badge", async () => /1 auto-disabled/.test(await tree.innerText()));
  await photograph("accounts-badges");
});

step("re-enables the account's auto-disabled hooks", async () => {
  const page = world.page;
  await page.getByRole("list", { name: "Account tree" }).getByRole("link", { name: "master", exact: true }).click();
  await onView("Hooks of master");
  await page.getByRole("button", { name: "Re-enable auto-disabled hooks" }).click();
  await eventually("the status", async () => /re-enabled/.test(await statusText()));
  await eventually("the hook enabled", async () => /Enabled/.test(await hookRow(HOOK).innerText()));
  assert.doesNotMatch(await hookRow(HOOK).innerText(), /Auto-disabled/);
});

step("replays an attempt: the receiver gets the same webhook-id", async () => {
  const page = world.page;
  world.receiver.status = 200;
  await page.getByRole("link", { name: HOOK }).click();
  await onView(HOOK);
  const attempts = page.getByRole("list", { name: /attempts?, newest first/ });
  const first = attempts.getByRole("listitem").first();
  await first.waitFor();
  await first.getByText("Request and response").click();
  const id = (await first.innerText()).match(/webhook-id (\S+)/)?.[1];
  assert.ok(id && id !== "—", "the attempt shows its webhook-id");
  const before = world.receiver.requests.length;
  await first.getByRole("button", { name: "Replay" }).click();
  await eventually("the replay queued", async () => /Replay of .* queued/.test(await statusText()));
  const replayed = await eventually("the replay at the receiver", () =>
    world.receiver.requests.slice(before).find((r) => r.headers["webhook-id"] === id)
  );
  assert.equal(replayed.method, "POST");
  await eventually("the replay's success in the attempts", async () => {
    await page.getByRole("button", { name: "Refresh", exact: true }).click();
    return /Succeeded/.test(await attempts.getByRole("listitem").first().innerText());
  });
  await photograph("hook-replayed");
});

step("disables by hand, enables, rotates the secret and edits the hook", async () => {
  const page = world.page;
  await page.getByRole("button", { name: "Disable", exact: true }).click();
  await page.getByText("Disabled by hand").waitFor();
  await page.getByRole("button", { name: "Enable", exact: true }).click();
  await eventually("enabled again", async () => /enabled\./.test(await statusText()));
  await page.getByRole("button", { name: "Generate signing secret" }).click();
  const secret = page.getByLabel("New signing secret");
  await secret.waitFor();
  assert.match(await secret.inputValue(), /^whsec_/);
  await photograph("hook-secret");
  await page.getByRole("link", { name: "Edit", exact: true }).click();
  await onView(`Edit ${HOOK}`);
  assert.equal(await page.getByLabel("Retries").inputValue(), "1");
  await photograph("hook-edit");
  await page.getByLabel("Retries").fill("2");
  await page.getByRole("button", { name: "Save changes" }).click();
  await onView(HOOK);
  assert.match(await statusText(), /saved/);
  const settings = await page.locator("dl.settings").innerText();
  assert.match(settings, /Retries\s+2/);
  assert.match(settings, /Signed\s+yes/);
});

step("tails live events over the websocket", async () => {
  const page = world.page;
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Live tail" }).click();
  await onView("Live tail");
  await eventually("subscribed", async () => /subscribed to call\.\*\.\*, object\.\*\.\*/.test(await page.getByText(/^Connected/).innerText()));
  const callId = randomBytes(8).toString("hex");
  const event = {
    "Event-Category": "call_event",
    "Event-Name": "CHANNEL_CREATE",
    "Msg-ID": randomBytes(8).toString("hex"),
    "Call-ID": callId,
    "Call-Direction": "inbound",
    "Caller-ID-Number": "+15550001111",
    "Callee-ID-Number": "+15550002222",
    "Custom-Channel-Vars": { "Account-ID": world.master },
  };
  await api("POST", "/events", event, world.token);
  const log = page.getByRole("log");
  await eventually("the event in the tail", async () => (await log.innerText()).includes("CHANNEL_CREATE"));
  assert.match(await log.innerText(), /\+15550001111 → \+15550002222/);
  // The account's hook fires for it, and its try streams too.
  await eventually("the delivery in the tail", async () => /delivery[\s\S]*delivered · HTTP 200/.test(await log.innerText()));
  await photograph("live-tail");
});

step("deletes the hook after a confirmation", async () => {
  const page = world.page;
  await page.goto(world.hookUrl);
  await onView(HOOK);
  await page.getByRole("button", { name: "Delete hook" }).click();
  await page.getByRole("button", { name: "Yes, delete it" }).click();
  await onView("Hooks of master");
  assert.match(await statusText(), /deleted/);
  await page.getByText("This account has no hooks yet").waitFor();
});

step("logs out and back in by keyboard only", async () => {
  const page = world.page;
  await page.getByRole("button", { name: "Log out" }).click();
  await onView("Log in");
  await page.keyboard.type(world.key);
  await page.keyboard.press("Enter");
  await onView("Accounts");
});

step("a refused token leads back to the login, with the API's words, then to the same page", async () => {
  const page = world.page;
  await page.goto(`${world.daemon.api}/dashboard#/tail`);
  await onView("Live tail");
  await page.evaluate(() => {
    const key = "webhooks-dashboard.session";
    const s = JSON.parse(sessionStorage.getItem(key));
    sessionStorage.setItem(key, JSON.stringify({ ...s, token: "expired" }));
  });
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Accounts" }).click();
  await onView("Log in");
  assert.match(await alertText(), /invalid_credentials/);
  await page.getByLabel("API key").fill(world.key);
  await page.getByRole("button", { name: "Log in" }).click();
  await onView("Accounts");
});

step("a sub-account sees its own tree, and cannot send test events", async () => {
  const page = world.page;
  const key = (await api("GET", `/accounts/${world.child}/api_key`, undefined, world.token)).data.api_key;
  await page.getByRole("button", { name: "Log out" }).click();
  await onView("Log in");
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Log in" }).click();
  await onView("Accounts");
  const tree = page.getByRole("list", { name: "Account tree" });
  await tree.getByRole("link", { name: "Acme Support" }).click();
  await onView("Hooks of Acme Support");
  const send = page.getByRole("button", { name: "Send test event" });
  assert.ok(await send.isDisabled());
  const why = await page.locator(`#${await send.getAttribute("aria-describedby")}`).innerText();
  assert.match(why, /Only the master account may send events/);
  await photograph("hooks-sub-account");
  assert.deepEqual(world.problems, [], "no script errors or policy violations in the page");
});
