// The live tail: the account's call and document events as the daemon streams them, and each
// try of its hooks (`webhooks.delivery.*`), over the websocket listener in KAZOO blackhole's
// protocol (subscribe with the REST token; one binding a message). The frames are shown as they come, newest first, in a `role="log"`
// region; the last MAX_SHOWN are kept.

import { session, randomHex } from "./api.js";
import { h, say, showError, timeEl, pretty, crumbs, uid } from "./dom.js";
import { visibleAccounts } from "./accounts.js";

const BINDINGS = ["call.*.*", "object.*.*", "webhooks.delivery.*"];
const MAX_SHOWN = 200;

let wsPort; // undefined until asked, then a number or null (the listener is off)

async function websocketPort(signal) {
  if (wsPort === undefined) {
    const resp = await fetch("/dashboard/config.json", { signal, cache: "no-store" });
    wsPort = (await resp.json()).websocket_port ?? null;
  }
  return wsPort;
}

export async function tailView(ctx, accountId) {
  ctx.title("Live tail");
  const [port, accounts] = await Promise.all([websocketPort(ctx.signal), visibleAccounts(ctx).catch(() => null)]);
  const target = accountId || ctx.session.account_id;
  const visible = new Set((accounts || []).map((a) => a.id));
  const depth = (a) => (a.tree || []).filter((id) => visible.has(id)).length;

  const picker = h(
    "select",
    { id: uid("acct") },
    ctx.session.is_master ? h("option", { value: "*", selected: target === "*" }, "Every account (*)") : null,
    (accounts || (target === "*" ? [] : [{ id: target, name: target }])).map((a) =>
      h("option", { value: a.id, selected: a.id === target }, "\u00a0\u00a0".repeat(depth(a)) + a.name)
    )
  );
  picker.addEventListener("change", () => ctx.go(`#/tail/${picker.value}`));
  const pause = h("button", { type: "button", "aria-pressed": "false" }, "Pause");
  const clear = h("button", { type: "button" }, "Clear");
  const state = h("p", { class: "muted", "aria-live": "polite" }, "Connecting…");
  const list = h("ol", { class: "events", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": "Events, newest first" });
  const empty = h("p", { class: "muted" }, "No events yet. Send a test event from an account's hooks page, or wait for calls.");

  ctx.root.prepend(crumbs([["Accounts", "#/accounts"], ["Live tail"]]));
  ctx.root.append(
    h(
      "p",
      { class: "muted small" },
      `Call and document events of the chosen account as this daemon streams them, and each delivery of its hooks (${BINDINGS.join(", ")}).`
    ),
    h("div", { class: "tail-controls" }, h("div", { class: "field" }, h("label", { for: picker.id }, "Account"), picker), pause, clear),
    state,
    empty,
    list
  );

  if (port === null) {
    state.textContent = "Live events are off on this daemon (it runs without --websocket-listen).";
    return;
  }

  let paused = false;
  let held = 0;
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    if (!paused && held) {
      say(`${held} events arrived while paused; they were not kept.`);
      held = 0;
    }
  });
  clear.addEventListener("click", () => list.replaceChildren());

  let socket = null;
  let retry = 1000;
  let timer = null;

  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // The listener's port on the host this page came from (an IPv6 host keeps its brackets).
    const host = location.hostname.includes(":") && !location.hostname.startsWith("[") ? `[${location.hostname}]` : location.hostname;
    socket = new WebSocket(`${scheme}://${host}:${port}/`);
    socket.addEventListener("open", () => {
      retry = 1000;
      const token = (session.get() || {}).token;
      for (const binding of BINDINGS) {
        socket.send(JSON.stringify({ action: "subscribe", auth_token: token, request_id: randomHex(8), data: { account_id: target, binding } }));
      }
      state.textContent = `Connected; subscribing to ${BINDINGS.join(" and ")} for ${target === "*" ? "every account" : picker.selectedOptions[0]?.textContent.trim() || target}…`;
    });
    socket.addEventListener("message", (m) => {
      let frame;
      try {
        frame = JSON.parse(m.data);
      } catch {
        return;
      }
      if (frame.action === "reply") {
        if (frame.status === "error") {
          const errors = (frame.data && frame.data.errors) || [];
          showError({ message: errors.join("; ") || "the stream refused the request", data: frame.data });
        } else if (frame.data && frame.data.subscribed) {
          const unique = [...new Set(frame.data.subscribed)];
          state.textContent = `Connected; subscribed to ${unique.join(", ")}.`;
        }
        return;
      }
      if (frame.action !== "event") return;
      if (paused) {
        held++;
        return;
      }
      empty.remove();
      list.prepend(eventItem(frame));
      while (list.children.length > MAX_SHOWN) list.lastElementChild.remove();
    });
    socket.addEventListener("close", () => {
      if (ctx.signal.aborted) return;
      state.textContent = `Disconnected; trying again in ${Math.round(retry / 1000)} s.`;
      timer = setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    });
    socket.addEventListener("error", () => {
      state.textContent = "The websocket failed; see the browser console.";
    });
  };
  ctx.signal.addEventListener("abort", () => {
    clearTimeout(timer);
    if (socket) socket.close();
  });
  try {
    connect();
  } catch (e) {
    showError(e);
  }
}

function eventItem(frame) {
  const d = frame.data || {};
  if (frame.name === "delivery") return deliveryItem(frame, d);
  const bits = [];
  if (d.caller_id_number || d.callee_id_number) bits.push(`${d.caller_id_number || "?"} → ${d.callee_id_number || d.request || "?"}`);
  if (d.call_direction) bits.push(d.call_direction);
  if (d.type) bits.push(`${d.type} ${d.id || ""}`.trim());
  return h(
    "li",
    {},
    h(
      "div",
      { class: "event-head" },
      h("strong", {}, frame.name || "event"),
      timeEl(new Date()),
      bits.length ? h("span", {}, bits.join(" · ")) : null,
      h("span", { class: "key mono" }, frame.routing_key || "")
    ),
    h("details", {}, h("summary", {}, "Event data"), h("pre", {}, pretty(d)))
  );
}

// One try of a hook: its result, the answer (or the transport error), its time, where it went.
function deliveryItem(frame, d) {
  const answer = d.status ? `HTTP ${d.status}` : d.client_error || "";
  const bits = [
    d.result === "success" ? "delivered" : d.last ? "failed" : "failed, will retry",
    answer,
    d.latency_ms !== undefined ? `${d.latency_ms} ms` : "",
    `try ${d.attempt}`,
  ].filter(Boolean);
  return h(
    "li",
    { class: d.result === "success" ? "delivery ok" : "delivery failed" },
    h(
      "div",
      { class: "event-head" },
      h("strong", {}, "delivery"),
      timeEl(new Date()),
      h("span", {}, bits.join(" · ")),
      h("span", { class: "key mono" }, `${d.hook_id || ""} → ${d.uri || ""}`)
    ),
    h("details", {}, h("summary", {}, "Delivery data"), h("pre", {}, pretty(d)))
  );
}
