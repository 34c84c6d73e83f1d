// One hook: its state and settings, its actions (edit, enable or disable, rotate the signing
// secret, delete), the chart of its last hour and its last attempts, each with what was sent
// and answered and a button to send that delivery again.

import { get, patch, post, del, seg } from "./api.js";
import { h, act, say, showError, stateEl, hookState, percent, pretty, timeEl, fromGregorian, crumbs, uid, plural } from "./dom.js";
import { deliveryChart } from "./chart.js";
import { accountName } from "./hooks.js";

/** Settings shown first, in this order, with their labels; any other public field follows. */
const SETTINGS = [
  ["hook", "Event"],
  ["uri", "Destination URI"],
  ["http_verb", "HTTP method"],
  ["format", "Body format"],
  ["retries", "Retries"],
  ["retry_schedule", "Retry schedule"],
  ["include_subaccounts", "Include sub-accounts"],
  ["include_internal_legs", "Include internal legs"],
  ["signed", "Signed"],
  ["rate_limit", "Rate limit"],
  ["custom_request_headers", "Custom request headers"],
  ["custom_data", "Custom data"],
  ["group", "Group"],
];
const HIDDEN = new Set(["id", "name", "enabled", "disable_reason"]);

const ATTEMPTS_SHOWN = 25;

export async function hookView(ctx, accountId, hookId) {
  const base = `/accounts/${seg(accountId)}/webhooks/${seg(hookId)}`;
  const here = `#/accounts/${accountId}/hooks/${hookId}`;
  const [name, hook] = await Promise.all([accountName(ctx, accountId), get(base, { signal: ctx.signal })]);
  ctx.title(hook.name || hookId);

  const stateBox = h("div", { class: "summary-line" });
  const settings = h("dl", { class: "settings" });
  const chartBox = h("div", {}, h("p", {}, "Loading…"));
  const attemptsBox = h("div", {}, h("p", {}, "Loading…"));
  const secretBox = h("div", { "aria-live": "polite" });
  const confirmBox = h("div");

  const toggle = h("button", { type: "button" });
  const rotate = h("button", { type: "button" });
  const remove = h("button", { type: "button", class: "danger" }, "Delete hook");
  const refresh = h("button", { type: "button" }, "Refresh");
  const auto = h("input", { type: "checkbox", id: uid("auto"), checked: true });

  let current = hook;
  const drawHook = (x) => {
    current = x;
    ctx.title(x.name || hookId);
    const st = hookState(x);
    toggle.textContent = st.kind === "enabled" ? "Disable" : "Enable";
    rotate.textContent = x.signed ? "Rotate signing secret" : "Generate signing secret";
    const keys = [...SETTINGS.filter(([k]) => k in x), ...Object.keys(x).filter((k) => !HIDDEN.has(k) && !SETTINGS.some(([s]) => s === k)).map((k) => [k, k])];
    settings.replaceChildren(
      ...keys.flatMap(([k, label]) => [h("dt", {}, label), h("dd", {}, show(x[k]))])
    );
  };
  const show = (v) => {
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (v && typeof v === "object") return h("pre", {}, pretty(v));
    return String(v);
  };

  let shownState = null;
  const drawState = async () => {
    const [x, failures, stats] = await Promise.all([
      get(base, { signal: ctx.signal }),
      get(`/accounts/${seg(accountId)}/webhooks/failures`, { signal: ctx.signal }).catch(nothing),
      get(`${base}/stats`, { signal: ctx.signal }).catch(nothing),
    ]);
    const seen = JSON.stringify([x, failures, stats]);
    if (seen === shownState) return;
    shownState = seen;
    drawHook(x);
    const count = failures ? (failures.find((f) => f.hook_id === hookId) || {}).count || 0 : null;
    stateBox.replaceChildren(
      stateEl(x),
      h("span", {}, h("strong", {}, "Failures in the current window: "), count === null ? "unavailable" : String(count)),
      h("span", {}, h("strong", {}, "Success rate (1 h): "), stats ? percent(stats.success_rate) : "unavailable")
    );
    chartBox.replaceChildren(stats ? deliveryChart(stats) : h("p", {}, "This daemon does not report delivery statistics."));
  };

  let shownAttempts = null;
  const drawAttempts = async () => {
    const list = await get(`${base}/attempts?page_size=${ATTEMPTS_SHOWN}`, { signal: ctx.signal });
    // Drawn again only when something changed (as the state above), so a screen reader's
    // place is not lost every 5 s.
    const seen = JSON.stringify(list);
    if (seen === shownAttempts) return;
    shownAttempts = seen;
    // Keep open what the reader opened: the list is drawn again on every refresh.
    const open = new Set([...attemptsBox.querySelectorAll("details[open]")].map((d) => d.dataset.key));
    const focused = document.activeElement && attemptsBox.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    if (!list.length) {
      attemptsBox.replaceChildren(
        h("p", {}, "No attempts recorded yet. Failed tries are always recorded; successful ones when the account logs them, and replays always.")
      );
      return;
    }
    attemptsBox.replaceChildren(
      h("ol", { class: "attempts", "aria-label": `Last ${plural(list.length, "attempt")}, newest first` }, list.map((a) => attemptItem(a, open)))
    );
    if (focused) {
      const again = attemptsBox.querySelector(`[data-key="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
  };

  const attemptItem = (a, open) => {
    // Stable across refreshes (new attempts shift the positions): what the attempt says of itself.
    const key = `${a.timestamp}-${a.webhook_id}-${a.result}-${a.retries_left}`;
    const ok = a.result === "success";
    const headId = uid("attempt");
    const outcome = a.resp_status_code ? `HTTP ${a.resp_status_code}` : a.client_error || a.reason || "";
    const replay = h("button", { type: "button", "aria-describedby": headId, "data-key": `${key}-replay` }, "Replay");
    replay.addEventListener("click", () =>
      act(replay, async () => {
        await post(`${base}/replay`, { webhook_id: a.webhook_id });
        say(`Replay of ${a.webhook_id} queued.`);
        setTimeout(() => !ctx.signal.aborted && drawAll().catch(showError), 1000);
      })
    );
    const details = h(
      "details",
      { "data-key": key, open: open.has(key) },
      h("summary", { "data-key": `${key}-summary` }, "Request and response"),
      h("h3", {}, "Request"),
      h("p", {}, h("code", {}, `${(a.method || "").toUpperCase()} ${a.uri || ""}`)),
      headersEl(a.req_headers, "Request headers"),
      requestBodyEl(a),
      h("h3", {}, "Response"),
      a.resp_status_code
        ? [
            h("p", {}, `Status ${a.resp_status_code}`),
            headersEl(a.resp_headers, "Response headers"),
            a.resp_body ? [h("p", { class: "small muted" }, "Body"), h("pre", {}, pretty(a.resp_body))] : h("p", { class: "muted" }, "Empty body."),
          ]
        : h("p", {}, a.client_error ? `No response: ${a.client_error}` : "No response."),
      h(
        "p",
        { class: "small muted" },
        `webhook-id ${a.webhook_id || "—"}`,
        a.event_id ? ` · event ${a.event_id}` : "",
        a.retries_left !== undefined ? ` · retries left: ${a.retries_left}` : ""
      )
    );
    return h(
      "li",
      { class: ok ? "ok" : "failed" },
      h(
        "div",
        { class: "attempt-head", id: headId },
        h("span", { class: `badge ${ok ? "ok" : "bad"}` }, ok ? "Succeeded" : "Failed"),
        h("span", {}, outcome),
        h("span", { class: "muted" }, a.latency_ms !== undefined ? `${a.latency_ms} ms` : "latency not recorded"),
        h("span", { class: "grow muted" }, timeEl(fromGregorian(a.timestamp))),
        replay
      ),
      details
    );
  };

  const drawAll = () => Promise.all([drawState(), drawAttempts()]);

  toggle.addEventListener("click", () =>
    act(toggle, async () => {
      const enable = hookState(current).kind !== "enabled";
      const saved = await patch(base, { enabled: enable });
      say(enable ? `Hook "${saved.name}" enabled.` : `Hook "${saved.name}" disabled.`);
      await drawState();
      toggle.focus();
    })
  );
  rotate.addEventListener("click", () =>
    act(rotate, async () => {
      const hadOne = current.signed === true;
      const saved = await post(`${base}/secret`, {});
      const value = h("input", { type: "text", readonly: true, value: saved.secret || "", id: uid("secret"), class: "mono", "aria-describedby": "secret-note" });
      secretBox.replaceChildren(
        h(
          "div",
          { class: "secret-box" },
          h("label", { for: value.id }, h("strong", {}, "New signing secret")),
          value,
          h("p", { id: "secret-note", class: "small" }, hadOne
              ? "Shown once: copy it to the receiver now. The previous secret keeps signing beside it for the grace period (24 h)."
              : "Shown once: copy it to the receiver now. Every request of this hook is signed with it from now on.")
        )
      );
      value.focus();
      value.select();
      await drawState();
    })
  );
  remove.addEventListener("click", () => {
    const yes = h("button", { type: "button", class: "danger primary" }, "Yes, delete it");
    const no = h("button", { type: "button" }, "Cancel");
    no.addEventListener("click", () => {
      confirmBox.replaceChildren();
      remove.focus();
    });
    yes.addEventListener("click", () =>
      act(yes, async () => {
        await del(base);
        ctx.flash(`Hook "${current.name || hookId}" deleted.`);
        ctx.go(`#/accounts/${accountId}`);
      })
    );
    confirmBox.replaceChildren(
      h("div", { class: "confirm", role: "group", "aria-label": "Confirm deletion" }, h("p", {}, `Delete "${current.name || hookId}"? It stops firing at once; its attempts stay readable.`), h("div", { class: "actions" }, yes, no))
    );
    yes.focus();
  });
  refresh.addEventListener("click", () => act(refresh, drawAll));

  ctx.root.prepend(crumbs([["Accounts", "#/accounts"], [name, `#/accounts/${accountId}`], [hook.name || hookId]]));
  ctx.root.append(
    stateBox,
    h("div", { class: "actions" }, h("a", { class: "button", href: `${here}/edit` }, "Edit"), toggle, rotate, remove),
    confirmBox,
    secretBox,
    h("h2", {}, "Settings"),
    settings,
    h("h2", {}, "Deliveries in the last hour"),
    chartBox,
    h("h2", { id: "attempts-heading" }, "Last attempts"),
    h("div", { class: "actions" }, refresh, h("span", { class: "check" }, auto, h("label", { for: auto.id }, "Refresh every 5 seconds"))),
    attemptsBox
  );
  drawHook(hook);
  await drawAll();
  ctx.every(5000, () => {
    if (auto.checked) drawAll().catch(showError);
  });
}

function nothing(e) {
  if (e.name === "AbortError") throw e;
  return null;
}

/** The request body: a form decoded into `key = value` lines (what KAZOO's default format sends), JSON indented. */
function requestBodyEl(a) {
  if (!a.req_body) return null;
  const type = Object.entries(a.req_headers || {}).find(([k]) => k.toLowerCase() === "content-type");
  if (type && /x-www-form-urlencoded/.test(type[1])) {
    const lines = [...new URLSearchParams(a.req_body)].map(([k, v]) => `${k} = ${v}`);
    return [h("p", { class: "small muted" }, "Body (form, decoded)"), h("pre", {}, lines.join("\n"))];
  }
  return [h("p", { class: "small muted" }, "Body"), h("pre", {}, pretty(a.req_body))];
}

function headersEl(headers, label) {
  const entries = Object.entries(headers || {});
  if (!entries.length) return null;
  return [
    h("p", { class: "small muted" }, label),
    h("dl", { class: "headers" }, entries.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "string" ? v : JSON.stringify(v))])),
  ];
}
