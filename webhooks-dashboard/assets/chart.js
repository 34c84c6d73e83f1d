// A hook's last hour as stacked bars, one per bucket of `GET .../{H}/stats`: successes below,
// failures on top. Drawn as inline SVG (no library), stretched to the width; the labels are
// HTML so they stay readable at any width. The caption and the table are its text
// alternative: the picture is `aria-hidden`, the numbers are not.

import { h, s, percent, plural } from "./dom.js";

const W = 600;
const H = 100;

const clock = (unix) =>
  new Date(unix * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

/** The figure for `stats` (`{bucket_s, buckets: [{start, succeeded, failed}], succeeded, failed, success_rate}`). */
export function deliveryChart(stats) {
  const buckets = stats.buckets || [];
  const total = (b) => (b.succeeded || 0) + (b.failed || 0);
  const peak = Math.max(1, ...buckets.map(total));
  const slot = W / Math.max(1, buckets.length);
  const gap = slot > 4 ? 1 : 0;
  const bars = buckets.flatMap((b, i) => {
    const x = i * slot + gap / 2;
    const okH = ((b.succeeded || 0) / peak) * H;
    const badH = ((b.failed || 0) / peak) * H;
    return [
      okH > 0 ? s("rect", { class: "bar-ok", x, y: H - okH, width: slot - gap, height: okH }) : null,
      badH > 0 ? s("rect", { class: "bar-bad", x, y: H - okH - badH, width: slot - gap, height: badH }) : null,
    ];
  });
  const picture = s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", "aria-hidden": "true", focusable: "false" },
    bars
  );
  const first = buckets[0];
  const last = buckets[buckets.length - 1];
  const minutes = Math.round((buckets.length * (stats.bucket_s || 60)) / 60);
  const busy = buckets.filter((b) => total(b) > 0);
  const worst = busy.reduce((w, b) => ((b.failed || 0) > (w ? w.failed || 0 : 0) ? b : w), null);

  const caption =
    `Last ${minutes} minutes on this node: ${plural(stats.succeeded || 0, "delivery", "deliveries")} succeeded, ` +
    `${stats.failed || 0} failed` +
    (stats.success_rate === null || stats.success_rate === undefined ? "." : ` (success rate ${percent(stats.success_rate)}).`) +
    (worst ? ` Most failures at ${clock(worst.start)}: ${worst.failed}.` : "");

  const table = h(
    "details",
    {},
    h("summary", {}, "The numbers, minute by minute"),
    busy.length
      ? h(
          "table",
          {},
          h("caption", {}, "Minutes with deliveries"),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Minute"), h("th", { scope: "col" }, "Succeeded"), h("th", { scope: "col" }, "Failed"))),
          h(
            "tbody",
            {},
            busy.map((b) => h("tr", {}, h("th", { scope: "row" }, clock(b.start)), h("td", {}, b.succeeded || 0), h("td", {}, b.failed || 0)))
          )
        )
      : h("p", {}, "No deliveries in this time.")
  );

  return h(
    "figure",
    { class: "chart" },
    h(
      "div",
      { class: "legend", "aria-hidden": "true" },
      h("span", {}, h("span", { class: "swatch ok" }), "succeeded"),
      h("span", {}, h("span", { class: "swatch bad" }), "failed")
    ),
    picture,
    h(
      "div",
      { class: "axis", "aria-hidden": "true" },
      h("span", {}, first ? clock(first.start) : ""),
      h("span", {}, last ? clock(last.start + (stats.bucket_s || 60)) : "now")
    ),
    h("figcaption", {}, caption),
    table
  );
}
