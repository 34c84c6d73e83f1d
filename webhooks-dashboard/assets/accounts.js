// The account tree: the logged-in account and every account below it, each with its hook
// count and badges for failures counted towards auto-disable and hooks already auto-disabled.
// The tree is drawn at once from `descendants` (each item's `tree` lists its ancestors); the
// counts fill in as each account's two requests answer.

import { get, all, seg } from "./api.js";
import { h, plural, act } from "./dom.js";

/** The accounts the session may see: itself first, then its descendants, as `{id, name, tree}`. */
export async function visibleAccounts(ctx) {
  const me = ctx.session.account_id;
  const [self, below] = await Promise.all([
    get(`/accounts/${seg(me)}`, { signal: ctx.signal }),
    all(`/accounts/${seg(me)}/descendants`, { signal: ctx.signal }),
  ]);
  return [{ id: me, name: self.name || me, tree: [] }, ...below.map((a) => ({ id: a.id, name: a.name || a.id, tree: a.tree || [] }))];
}

export async function accountsView(ctx) {
  ctx.title("Accounts");
  const accounts = await visibleAccounts(ctx);
  const byParent = new Map();
  const root = accounts[0];
  for (const a of accounts.slice(1)) {
    // The nearest ancestor that is shown; every descendant has the root among its ancestors.
    const parent = [...a.tree].reverse().find((id) => accounts.some((b) => b.id === id)) || root.id;
    if (!byParent.has(parent)) byParent.set(parent, []);
    byParent.get(parent).push(a);
  }

  const rows = new Map();
  const node = (a) => {
    const counts = h("span", { class: "counts" }, "counting hooks…");
    const badges = h("span", { class: "badges" });
    rows.set(a.id, { counts, badges });
    const kids = byParent.get(a.id) || [];
    return h(
      "li",
      {},
      h(
        "div",
        { class: "tree-node" },
        h("a", { href: `#/accounts/${a.id}` }, a.name),
        counts,
        badges
      ),
      kids.length ? h("ul", { "aria-label": `Accounts under ${a.name}` }, kids.map(node)) : null
    );
  };

  const reload = h("button", { type: "button" }, "Refresh counts");
  ctx.root.append(
    h("p", { class: "muted" }, `${plural(accounts.length, "account")}. Failures are the failed tries counted towards auto-disable in the current window.`),
    h("div", { class: "actions" }, reload),
    h("ul", { class: "tree", "aria-label": "Account tree" }, node(root))
  );

  const fill = () =>
    Promise.all(
      accounts.map(async (a) => {
        const { counts, badges } = rows.get(a.id);
        const [hooks, failures] = await Promise.allSettled([
          all(`/accounts/${seg(a.id)}/webhooks`, { signal: ctx.signal }),
          get(`/accounts/${seg(a.id)}/webhooks/failures`, { signal: ctx.signal }),
        ]);
        if (ctx.signal.aborted) return;
        const items = [];
        if (hooks.status === "fulfilled") {
          const list = hooks.value;
          const off = list.filter((x) => x.enabled === false);
          const auto = off.filter((x) => x.disable_reason);
          counts.textContent = plural(list.length, "hook") + (off.length ? `, ${off.length} disabled` : "");
          if (auto.length) items.push(h("span", { class: "badge bad" }, `${auto.length} auto-disabled`));
        } else {
          counts.textContent = `hooks: ${hooks.reason.message}`;
        }
        if (failures.status === "fulfilled") {
          const n = (failures.value || []).reduce((sum, f) => sum + (f.count || 0), 0);
          if (n > 0) items.push(h("span", { class: "badge warn" }, plural(n, "failure")));
        } else {
          items.push(h("span", { class: "muted small" }, `failures: ${failures.reason.message}`));
        }
        badges.replaceChildren(...items);
      })
    );
  reload.addEventListener("click", () => act(reload, fill));
  await fill();
}
