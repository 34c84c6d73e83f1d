// Building the page without a framework: `h` makes elements, the rest formats values and
// fills the two message regions (`role="alert"` for errors, `role="status"` for outcomes).

import { GREGORIAN_OFFSET } from "./api.js";

const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (k === "text") {
      el.textContent = v;
    } else if (k === "dataset") {
      Object.assign(el.dataset, v);
    } else {
      el.setAttribute(k === "className" ? "class" : k, v === true ? "" : String(v));
    }
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** `h("a", {href: "#/x", class: "y"}, "text", child...)`: attributes, `on<event>` listeners, children. */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

let nextId = 0;
/** A document-unique id, for `aria-describedby` and label pairs. */
export const uid = (prefix = "id") => `${prefix}-${++nextId}`;

// ---- values ----

/** A KAZOO timestamp (gregorian seconds) as a Date. */
export const fromGregorian = (g) => new Date((Number(g) - GREGORIAN_OFFSET) * 1000);

/** A `<time>` showing local date and time. */
export function timeEl(date) {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) return h("span", {}, "—");
  return h("time", { datetime: date.toISOString() }, date.toLocaleString());
}

/** 0.9873 → "98.7%"; null → "—" (nothing sent). */
export function percent(rate) {
  if (rate === null || rate === undefined || Number.isNaN(rate)) return "—";
  const p = rate * 100;
  return `${p === 100 || p === 0 ? p.toFixed(0) : p.toFixed(1)}%`;
}

export const plural = (n, one, many) => `${n} ${n === 1 ? one : many || one + "s"}`;

/** Pretty JSON, or the text itself when it is not JSON. */
export function pretty(value) {
  if (value === undefined || value === null || value === "") return "";
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

/** A hook's state as the summary and the document tell it. */
export function hookState(hook) {
  if (hook.enabled !== false) return { kind: "enabled", label: "Enabled", badge: "ok" };
  if (hook.disable_reason) {
    return { kind: "auto", label: "Auto-disabled", badge: "bad", reason: hook.disable_reason };
  }
  return { kind: "manual", label: "Disabled by hand", badge: "off" };
}

export function stateEl(hook) {
  const st = hookState(hook);
  return h(
    "span",
    { class: "state" },
    h("span", { class: `badge ${st.badge}` }, st.label),
    st.reason ? h("span", { class: "reason" }, st.reason) : null
  );
}

// ---- messages ----

/**
 * Crossbar's error `data` as (field path, code, message) triples: a validation error is
 * `{field: {code: {message, target, value}}}`, nested for nested fields; a system error is
 * `{message}`.
 */
export function errorLines(data, path = []) {
  if (!data || typeof data !== "object" || Array.isArray(data)) return [];
  if (typeof data.message === "string") {
    return [{ path: path.slice(0, -1), code: path[path.length - 1], message: data.message }];
  }
  return Object.entries(data).flatMap(([k, v]) => errorLines(v, [...path, k]));
}

/** The error as the API worded it: its `message`, then each of its `data` messages. */
export function errorEl(err) {
  const status = err.status ? ` (HTTP ${err.status})` : "";
  const lines = errorLines(err.data);
  const parts = [h("p", {}, h("strong", {}, err.message), status)];
  if (lines.length) {
    parts.push(
      h(
        "ul",
        {},
        lines.map((l) =>
          h(
            "li",
            {},
            l.path.length ? [h("code", {}, l.path.join(".")), ": "] : null,
            l.message,
            l.code && l.path.length ? h("span", { class: "muted" }, ` (${l.code})`) : null
          )
        )
      )
    );
  } else if (err.data !== undefined && err.data !== null && pretty(err.data) !== "{}") {
    parts.push(h("pre", {}, pretty(err.data)));
  }
  return h("div", {}, parts);
}

const alertRegion = () => document.getElementById("alert");
const statusRegion = () => document.getElementById("status");

export function showError(err) {
  if (err && err.name === "AbortError") return;
  // A warning, not an error: the API refusing something is part of the dashboard's work.
  console.warn(err);
  const region = alertRegion();
  region.replaceChildren(err && err.message !== undefined ? errorEl(err) : h("p", {}, String(err)));
}

export function clearMessages() {
  alertRegion().replaceChildren();
  statusRegion().replaceChildren();
}

/** An outcome worth announcing ("Hook created"). */
export function say(text) {
  alertRegion().replaceChildren();
  statusRegion().replaceChildren(h("p", {}, text));
}

/**
 * Runs an action from a button: disables it meanwhile, shows the outcome or the API's error.
 * Resolves to the action's value, or undefined when it failed.
 */
export async function act(button, fn) {
  if (button) button.disabled = true;
  try {
    clearMessages();
    return await fn();
  } catch (e) {
    showError(e);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** Breadcrumbs: [[label, href], ..., [label]]; the last is the current page. */
export function crumbs(items) {
  return h(
    "nav",
    { class: "crumbs", "aria-label": "Breadcrumb" },
    h(
      "ol",
      {},
      items.map(([label, href], i) =>
        h("li", {}, href && i < items.length - 1 ? h("a", { href }, label) : h("span", { "aria-current": "page" }, label))
      )
    )
  );
}

/** A labelled form field: label, control, optional hint, and a slot for the API's words. */
export function field(label, control, hint) {
  const id = control.id || uid("f");
  control.id = id;
  const hintEl = hint ? h("span", { class: "hint", id: `${id}-hint` }, hint) : null;
  const errEl = h("span", { class: "error", id: `${id}-error` });
  control.setAttribute("aria-describedby", [hintEl && hintEl.id, errEl.id].filter(Boolean).join(" "));
  if (control.type === "checkbox") {
    return h("div", { class: "field" }, h("div", { class: "check" }, control, h("label", { for: id }, label)), hintEl, errEl);
  }
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl, errEl);
}

/** Marks the form's controls named in a validation error, with the API's words beside them. */
export function markFields(form, err) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of form.querySelectorAll(".error")) el.textContent = "";
  let first = null;
  for (const line of errorLines(err && err.data)) {
    const name = line.path[0];
    const control = name && form.elements.namedItem(name);
    if (!control || !control.id) continue;
    control.setAttribute("aria-invalid", "true");
    const slot = document.getElementById(`${control.id}-error`);
    if (slot) slot.textContent = [slot.textContent, line.message].filter(Boolean).join("; ");
    first = first || control;
  }
  return first;
}
