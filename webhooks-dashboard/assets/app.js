// The dashboard's entry: hash routes to views, the login, and what every view shares.
//
// A view is `async (ctx, ...params)` that fills `ctx.root`. `ctx.title` names the page (its
// one `h1`, focused once the view is drawn, and the document title); `ctx.signal` aborts
// when the view is left, cancelling its requests; `ctx.every` runs a refresh while the view
// is shown; `ctx.go` navigates. Views talk to the API only through `api.js`.
//
// Modules: api.js (requests, session), dom.js (elements, messages), accounts.js (the tree),
// hooks.js (an account's hooks, the hook form), hook.js (one hook), chart.js, tail.js.

import { login, session, whenUnauthorized } from "./api.js";
import { h, field, showError, clearMessages, say, errorEl } from "./dom.js";
import { accountsView } from "./accounts.js";
import { hooksView, newHookView, editHookView } from "./hooks.js";
import { hookView } from "./hook.js";
import { tailView } from "./tail.js";

const ID = "([0-9a-f]{32})";
const HOOK = "([A-Za-z0-9_-]{1,128})";
const ROUTES = [
  [/^\/login$/, loginView],
  [/^\/accounts$/, accountsView],
  [new RegExp(`^/accounts/${ID}$`), hooksView],
  [new RegExp(`^/accounts/${ID}/new$`), newHookView],
  [new RegExp(`^/accounts/${ID}/hooks/${HOOK}$`), hookView],
  [new RegExp(`^/accounts/${ID}/hooks/${HOOK}/edit$`), editHookView],
  [/^\/tail$/, tailView],
  [new RegExp(`^/tail/([0-9a-f]{32}|\\*)$`), tailView],
];

let current = null; // the shown view's AbortController
let flash = null; // an outcome to announce on the next view ("Hook created")
let afterLogin = null; // where a login (or a new one after expiry) goes back to

const go = (hash) => {
  if (location.hash === hash) render();
  else location.hash = hash;
};

function routeOf(hash) {
  const path = hash.replace(/^#/, "") || "/accounts";
  for (const [re, view] of ROUTES) {
    const m = path.match(re);
    if (m) return { view, params: m.slice(1).filter((p) => p !== undefined), path };
  }
  return null;
}

function chrome(s) {
  document.getElementById("nav").hidden = !s;
  document.getElementById("who").hidden = !s;
  document.getElementById("who-name").textContent = s
    ? `${s.account_name || s.account_id}${s.is_master ? " (master account)" : ""}`
    : "";
  for (const a of document.querySelectorAll("#nav a")) {
    const here = location.hash.startsWith(a.getAttribute("href"));
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

async function render() {
  if (current) current.abort();
  const controller = new AbortController();
  current = controller;
  const s = session.get();
  let route = routeOf(location.hash);
  if (!route) {
    route = { view: notFoundView, params: [], path: location.hash };
  }
  if (!s && route.view !== loginView) {
    afterLogin = location.hash || "#/accounts";
    location.replace("#/login");
    return;
  }
  chrome(s);
  clearMessages();
  if (flash) {
    say(flash);
    flash = null;
  }
  const root = h("div", { class: "view" });
  const heading = h("h1", { tabindex: "-1" }, "Loading…");
  root.append(heading);
  document.getElementById("view").replaceChildren(root);
  document.getElementById("main").setAttribute("aria-busy", "true");
  const timers = [];
  controller.signal.addEventListener("abort", () => timers.forEach(clearInterval));
  const ctx = {
    root,
    signal: controller.signal,
    session: s,
    go,
    /** Names the page: its heading and the document title. */
    title(text) {
      heading.textContent = text;
      document.title = `${text} · Webhooks dashboard`;
    },
    /** Announces `text` on the next view drawn. */
    flash(text) {
      flash = text;
    },
    /** Calls `fn` every `ms` while this view is shown and the tab visible. */
    every(ms, fn) {
      timers.push(
        setInterval(() => {
          if (!document.hidden && !controller.signal.aborted) fn();
        }, ms)
      );
    },
  };
  try {
    await route.view(ctx, ...route.params);
  } catch (e) {
    if (controller.signal.aborted) return;
    if (heading.textContent === "Loading…") ctx.title("Something went wrong");
    showError(e);
  }
  if (controller.signal.aborted) return;
  document.getElementById("main").removeAttribute("aria-busy");
  // A new page: move focus to its heading, so keyboard and screen reader users start there.
  // (Not on the first load, where the browser's own start is expected.)
  if (rendered++ > 0 || route.view === loginView) heading.focus();
}
let rendered = 0;

function notFoundView(ctx) {
  ctx.title("Page not found");
  ctx.root.append(h("p", {}, "There is no such page here. ", h("a", { href: "#/accounts" }, "Go to the accounts"), "."));
}

async function loginView(ctx) {
  ctx.title("Log in");
  ctx.root.classList.add("login");
  const key = h("input", {
    name: "api_key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const button = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h(
    "form",
    { class: "stack", novalidate: true },
    field("API key", key, "The account's api key (the master key is printed when the daemon first starts)."),
    h("div", { class: "actions" }, button)
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    try {
      const s = await login(key.value.trim());
      pendingExpiry = null;
      flash = `Logged in as ${s.account_name || s.account_id}.`;
      const to = afterLogin && !afterLogin.startsWith("#/login") ? afterLogin : "#/accounts";
      afterLogin = null;
      go(to);
    } catch (e) {
      showError(e);
      key.setAttribute("aria-invalid", "true");
      key.focus();
    } finally {
      button.disabled = false;
    }
  });
  ctx.root.append(
    h("p", {}, "Log in with an account's api key. The dashboard acts as that account, through the same API as any client."),
    form
  );
  // Why the last token was refused, kept until a login succeeds (the view may be drawn twice).
  if (pendingExpiry) document.getElementById("alert").replaceChildren(errorEl(pendingExpiry));
  setTimeout(() => key.focus(), 0);
}

let pendingExpiry = null;
whenUnauthorized((err) => {
  // The token expired or was revoked: log in again, then come back here. A view's other
  // requests are refused too; the first refusal decides.
  if (!session.get()) return;
  session.clear();
  pendingExpiry = err;
  afterLogin = location.hash;
  go("#/login");
});

function start() {
  document.getElementById("logout").addEventListener("click", () => {
    session.clear();
    pendingExpiry = null;
    flash = "Logged out.";
    go("#/login");
  });
  // The skip link moves focus without touching the hash (which is the route).
  document.querySelector(".skip").addEventListener("click", (ev) => {
    ev.preventDefault();
    const heading = document.querySelector("#view h1");
    (heading || document.getElementById("main")).focus();
  });
  window.addEventListener("hashchange", render);
  render();
}

start();
