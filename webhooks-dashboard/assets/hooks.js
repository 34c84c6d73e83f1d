// An account's hooks: each with its state (enabled, disabled by hand, auto-disabled and
// why), the failures counted in the current window and its success rate over the last hour;
// the account-wide actions (re-enable, a test event); and the form that creates or edits a
// hook.

import { get, all, put, patch, publish, seg, sampleChannelCreate } from "./api.js";
import { h, field, act, say, showError, markFields, stateEl, percent, plural, crumbs, uid } from "./dom.js";

/** An account's name, for headings; its id when it cannot be read. */
export async function accountName(ctx, id) {
  try {
    const a = await get(`/accounts/${seg(id)}`, { signal: ctx.signal });
    return a.name || id;
  } catch (e) {
    if (e.name === "AbortError") throw e;
    return id;
  }
}

export async function hooksView(ctx, accountId) {
  const base = `/accounts/${seg(accountId)}`;
  const name = await accountName(ctx, accountId);
  ctx.title(`Hooks of ${name}`);

  const table = h("div", { class: "table-wrap" }, h("p", {}, "Loading hooks…"));
  const reenable = h("button", { type: "button" }, "Re-enable auto-disabled hooks");
  const reenableAll = h("button", { type: "button" }, "Re-enable here and in sub-accounts");
  const refresh = h("button", { type: "button" }, "Refresh");

  const triggerNote = uid("trigger-note");
  const trigger = h(
    "button",
    { type: "button", disabled: !ctx.session.is_master, "aria-describedby": triggerNote },
    "Send test event"
  );
  const note = ctx.session.is_master
    ? "Sends a CHANNEL_CREATE event for this account through POST /v2/events, as KAZOO would publish it."
    : "Only the master account may send events (POST /v2/events); log in with its api key to send a test event.";

  ctx.root.prepend(crumbs([["Accounts", "#/accounts"], [name]]));
  ctx.root.append(
    h(
      "div",
      { class: "actions" },
      h("a", { class: "button primary", href: `#/accounts/${accountId}/new` }, "New hook"),
      trigger,
      h("a", { class: "button", href: `#/tail/${accountId}` }, "Live tail")
    ),
    h("p", { class: "muted small", id: triggerNote }, note),
    h("h2", {}, "Hooks"),
    h("div", { class: "actions" }, refresh, reenable, reenableAll),
    table
  );

  let shown = null;
  const draw = async () => {
    const [hooks, failures, stats] = await Promise.all([
      all(`${base}/webhooks`, { signal: ctx.signal }),
      get(`${base}/webhooks/failures`, { signal: ctx.signal }).catch(unavailable),
      get(`${base}/webhooks/stats`, { signal: ctx.signal }).catch(unavailable),
    ]);
    // Drawn again only when something changed, so a screen reader's place is not lost every 5 s.
    const seen = JSON.stringify([hooks, failures, stats]);
    if (seen === shown) return;
    shown = seen;
    const failed = new Map((failures || []).map((f) => [f.hook_id, f.count]));
    const rates = new Map((stats || []).map((x) => [x.hook_id, x]));
    hooks.sort((a, b) => (a.name || "").localeCompare(b.name || ""));
    const focused = document.activeElement && table.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    if (!hooks.length) {
      table.replaceChildren(h("p", {}, "This account has no hooks yet. ", h("a", { href: `#/accounts/${accountId}/new` }, "Create one"), "."));
      return;
    }
    const rate = (id) => {
      const r = rates.get(id);
      if (!stats) return "unavailable";
      if (!r || r.success_rate === null || r.success_rate === undefined) return "no deliveries";
      return `${percent(r.success_rate)} (${r.succeeded} of ${r.succeeded + r.failed})`;
    };
    table.replaceChildren(
      h(
        "table",
        { class: "cards" },
        h("caption", {}, `${plural(hooks.length, "hook")}; success rate over the last hour on this node`),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Name", "Event", "Destination", "Status", "Failures (window)", "Success (1 h)"].map((c) => h("th", { scope: "col" }, c))
          )
        ),
        h(
          "tbody",
          {},
          hooks.map((x) =>
            h(
              "tr",
              {},
              h("td", { class: "first", "data-label": "Name" }, h("a", { href: `#/accounts/${accountId}/hooks/${x.id}`, "data-key": x.id }, x.name || x.id)),
              h("td", { "data-label": "Event" }, h("code", {}, x.hook)),
              h("td", { class: "uri", "data-label": "Destination" }, x.uri),
              h("td", { "data-label": "Status" }, stateEl(x)),
              h("td", { class: "num", "data-label": "Failures (window)" }, failures ? String(failed.get(x.id) || 0) : "unavailable"),
              h("td", { class: "num", "data-label": "Success (1 h)" }, rate(x.id))
            )
          )
        )
      )
    );
    if (focused) {
      const again = table.querySelector(`[data-key="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
  };

  refresh.addEventListener("click", () => act(refresh, draw));
  reenable.addEventListener("click", () =>
    act(reenable, async () => {
      await patch(`${base}/webhooks`, { "re-enable": true });
      say(`Auto-disabled hooks of ${name} re-enabled.`);
      await draw();
    })
  );
  reenableAll.addEventListener("click", () =>
    act(reenableAll, async () => {
      await patch(`${base}/descendants/webhooks`, { "re-enable": true });
      say(`Auto-disabled hooks of ${name} and its sub-accounts re-enabled.`);
      await draw();
    })
  );
  trigger.addEventListener("click", () =>
    act(trigger, async () => {
      const r = await publish(sampleChannelCreate(accountId));
      say(r && r.dropped ? `Test event sent: dropped (${r.dropped}).` : `Test event sent: ${plural((r && r.dispatched) || 0, "delivery", "deliveries")}.`);
      // The attempts arrive after the sends; show the counts once they are likely in.
      setTimeout(() => !ctx.signal.aborted && draw().catch(showError), 1500);
    })
  );

  await draw();
  ctx.every(5000, () => draw().catch(showError));
}

/** Failure counts or stats this daemon cannot give (a 404 on an older node): shown as such. */
function unavailable(e) {
  if (e.name === "AbortError") throw e;
  return null;
}

// ---- the hook form ----

const VERBS = ["post", "get", "put"];
const FORMATS = [
  ["form-data", "Form (application/x-www-form-urlencoded)"],
  ["json", "JSON"],
];

/** The form's controls, filled from `hook` (an existing hook) or with the API's defaults. */
function hookForm(catalogue, hook, { creating }) {
  const input = (name, attrs) => h("input", { name, ...attrs });
  const select = (name, options, value) =>
    h(
      "select",
      { name },
      options.map(([v, label]) => h("option", { value: v, selected: v === value }, label))
    );
  const known = catalogue.map((m) => [m.id, `${m.name} (${m.id})`]);
  if (hook && hook.hook && !known.some(([id]) => id === hook.hook)) known.push([hook.hook, hook.hook]);
  const controls = {
    name: input("name", { type: "text", value: hook ? hook.name || "" : "", autocomplete: "off" }),
    uri: input("uri", { type: "url", value: hook ? hook.uri || "" : "", autocomplete: "off", inputmode: "url" }),
    hook: select("hook", known, hook ? hook.hook : "channel_create"),
    http_verb: select("http_verb", VERBS.map((v) => [v, v.toUpperCase()]), hook ? hook.http_verb || "post" : "post"),
    format: select("format", FORMATS, hook ? hook.format || "form-data" : "form-data"),
    retries: input("retries", { type: "number", inputmode: "numeric", value: hook && hook.retries !== undefined ? hook.retries : 2 }),
    enabled: input("enabled", { type: "checkbox", checked: hook ? hook.enabled !== false : true }),
    include_subaccounts: input("include_subaccounts", { type: "checkbox", checked: hook ? hook.include_subaccounts === true : false }),
  };
  if (creating) controls.secret = input("secret", { type: "checkbox" });
  const fields = [
    field("Name", controls.name),
    field("Destination URI", controls.uri, "Where the requests go, e.g. https://receiver.example/calls"),
    field("Event", controls.hook),
    field("HTTP method", controls.http_verb),
    field("Body format", controls.format),
    field("Retries", controls.retries, "How many times a delivery is tried in all, the first try included (KAZOO's meaning)."),
    field("Enabled", controls.enabled),
    field("Include sub-accounts", controls.include_subaccounts, "Also fire for events of the accounts below this one."),
    creating ? field("Sign deliveries", controls.secret, "Standard Webhooks signatures; the secret is shown on the hook's page.") : null,
  ];
  return { controls, fields };
}

/** What the form says, as a hook body. Retries that are not a number go as typed: the API words the error. */
function formBody(controls, { creating }) {
  const body = {
    name: controls.name.value.trim(),
    uri: controls.uri.value.trim(),
    hook: controls.hook.value,
    http_verb: controls.http_verb.value,
    format: controls.format.value,
    enabled: controls.enabled.checked,
    include_subaccounts: controls.include_subaccounts.checked,
  };
  const retries = controls.retries.value.trim();
  if (retries !== "") body.retries = /^-?\d+$/.test(retries) ? Number(retries) : retries;
  if (creating && controls.secret.checked) body.secret = "generate";
  return body;
}

async function formView(ctx, accountId, hookId) {
  const creating = !hookId;
  const base = `/accounts/${seg(accountId)}/webhooks`;
  const [name, catalogue, hook] = await Promise.all([
    accountName(ctx, accountId),
    all("/webhooks?ascending=true", { signal: ctx.signal }),
    creating ? null : get(`${base}/${seg(hookId)}`, { signal: ctx.signal }),
  ]);
  ctx.title(creating ? `New hook in ${name}` : `Edit ${hook.name || hookId}`);
  const { controls, fields } = hookForm(catalogue, hook, { creating });
  const submit = h("button", { type: "submit", class: "primary" }, creating ? "Create hook" : "Save changes");
  const back = creating ? `#/accounts/${accountId}` : `#/accounts/${accountId}/hooks/${hookId}`;
  const form = h("form", { class: "stack", novalidate: true }, fields, h("div", { class: "actions" }, submit, h("a", { href: back }, "Cancel")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    try {
      const body = formBody(controls, { creating });
      const saved = creating ? await put(base, body) : await patch(`${base}/${seg(hookId)}`, body);
      ctx.flash(creating ? `Hook "${saved.name}" created.` : `Hook "${saved.name}" saved.`);
      ctx.go(`#/accounts/${accountId}/hooks/${saved.id}`);
    } catch (e) {
      showError(e);
      const first = markFields(form, e);
      if (first) first.focus();
    } finally {
      submit.disabled = false;
    }
  });
  const crumbItems = creating
    ? [["Accounts", "#/accounts"], [name, `#/accounts/${accountId}`], ["New hook"]]
    : [["Accounts", "#/accounts"], [name, `#/accounts/${accountId}`], [hook.name || hookId, back], ["Edit"]];
  ctx.root.prepend(crumbs(crumbItems));
  ctx.root.append(form);
}

export const newHookView = (ctx, accountId) => formView(ctx, accountId, null);
export const editHookView = (ctx, accountId, hookId) => formView(ctx, accountId, hookId);
