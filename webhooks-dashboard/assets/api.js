// The public API, as any crossbar client sees it: `/v2` paths, the `{"data": ...}` envelope,
// the token in `X-Auth-Token`. The dashboard has no other way in.

const KEY = "webhooks-dashboard.session";

/** The login, kept for this browser tab only (sessionStorage): closing the tab logs out. */
export const session = {
  get() {
    try {
      return JSON.parse(sessionStorage.getItem(KEY) || "null");
    } catch {
      return null;
    }
  },
  set(value) {
    sessionStorage.setItem(KEY, JSON.stringify(value));
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

/** An error answered by the API, carrying crossbar's envelope as it came. */
export class ApiError extends Error {
  constructor(status, envelope, fallback) {
    super((envelope && envelope.message) || fallback || `HTTP ${status}`);
    this.status = status;
    this.envelope = envelope;
    this.data = envelope ? envelope.data : undefined;
  }
}

/** Called with the error when a request is refused for its token (expired, revoked). */
let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

/**
 * One request; resolves to the envelope of a success, rejects with an `ApiError` otherwise.
 * `data` (when given) is wrapped in `{"data": ...}` as crossbar expects, unless `raw` (the
 * body of `POST /v2/events` is the KAZOO event itself).
 */
export async function call(method, path, data, { signal, raw = false } = {}) {
  const headers = { Accept: "application/json" };
  const s = session.get();
  if (s && s.token) headers["X-Auth-Token"] = s.token;
  const init = { method, headers, signal, cache: "no-store" };
  if (data !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(raw ? data : { data });
  }
  let resp;
  try {
    resp = await fetch(`/v2${path}`, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, null, `The daemon did not answer (${e.message}).`);
  }
  let envelope = null;
  try {
    envelope = await resp.json();
  } catch {
    // Not JSON: a proxy's page, or the connection cut mid-body.
  }
  if (!resp.ok || (envelope && envelope.status === "error")) {
    const err = new ApiError(resp.status, envelope, resp.statusText);
    if (resp.status === 401 && s && s.token && !path.startsWith("/api_auth")) onUnauthorized(err);
    throw err;
  }
  return envelope || {};
}

export const get = (path, opts) => call("GET", path, undefined, opts).then((e) => e.data);
export const put = (path, data, opts) => call("PUT", path, data, opts).then((e) => e.data);
export const post = (path, data, opts) => call("POST", path, data, opts).then((e) => e.data);
export const patch = (path, data, opts) => call("PATCH", path, data, opts).then((e) => e.data);
/** Publishes KAZOO events (`POST /v2/events`, master account only): the body is the event. */
export const publish = (event, opts) => call("POST", "/events", event, { ...opts, raw: true }).then((e) => e.data);
export const del = (path, opts) => call("DELETE", path, undefined, opts).then((e) => e.data);

/** Every item of a paginated listing, following `next_start_key` (at most `maxPages`). */
export async function all(path, { signal, maxPages = 100 } = {}) {
  const items = [];
  let start = null;
  for (let page = 0; page < maxPages; page++) {
    const sep = path.includes("?") ? "&" : "?";
    const url = start === null ? path : `${path}${sep}start_key=${encodeURIComponent(start)}`;
    const env = await call("GET", url, undefined, { signal });
    items.push(...(env.data || []));
    if (!env.next_start_key) break;
    start = env.next_start_key;
  }
  return items;
}

/** Trades an api key for a token (`PUT /v2/api_auth`) and keeps the login. */
export async function login(apiKey) {
  const env = await call("PUT", "/api_auth", { api_key: apiKey });
  const d = env.data || {};
  session.set({
    token: env.auth_token,
    account_id: d.account_id,
    account_name: d.account_name,
    is_master: d.is_master_account === true,
  });
  return session.get();
}

/** Path segments, escaped. */
export const seg = (s) => encodeURIComponent(s);

/** Random lowercase hex: ids for test events (crypto.randomUUID needs a secure context). */
export function randomHex(bytes) {
  const a = new Uint8Array(bytes);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A CHANNEL_CREATE in KAZOO's AMQP shape, happening in `accountId`, with fresh ids: what
 * `webhooks trigger channel_create` sends, so each test event is a new delivery.
 */
export function sampleChannelCreate(accountId) {
  const callId = randomHex(16);
  return {
    "Event-Category": "call_event",
    "Event-Name": "CHANNEL_CREATE",
    "App-Name": "webhooks-dashboard",
    "App-Version": "1",
    "Node": "dashboard@test",
    "Msg-ID": randomHex(16),
    "Call-ID": callId,
    "Call-Direction": "inbound",
    "Channel-Name": "sofia/sipinterface_1/+15556783945@dashboard.test",
    "Channel-Is-Loopback": false,
    "Caller-ID-Name": "Dashboard Test",
    "Caller-ID-Number": "+15556783945",
    "Callee-ID-Name": "Test Event",
    "Callee-ID-Number": "+15552345678",
    "From": "+15556783945@dashboard.test",
    "To": "+15552345678@dashboard.test",
    "Request": "+15552345678@dashboard.test",
    "Timestamp": Math.floor(Date.now() / 1000) + GREGORIAN_OFFSET,
    "Custom-Channel-Vars": {
      "Account-ID": accountId,
      "Authorizing-Type": "device",
      "Realm": "dashboard.test",
    },
    "Custom-Application-Vars": {},
    "Channel-State": "CS_INIT",
  };
}

/** KAZOO's timestamps are gregorian seconds: unix seconds plus this. */
export const GREGORIAN_OFFSET = 62167219200;
