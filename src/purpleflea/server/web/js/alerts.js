// The cascade alert banner: one entry per active cascade (by alert id), updated in place,
// marked exhausted and then removed when the cascade ends.

import { clock, count, el, price, usdShort, zone } from "./format.js";

const EXHAUSTED_VISIBLE_MS = 8_000;

export class AlertBanner {
  constructor(container) {
    this.container = container;
    this.entries = new Map(); // alert id -> { node, seq }
  }

  clear() {
    this.entries.clear();
    this.container.replaceChildren();
  }

  /** Show one alert of a cascade's lifecycle (started, updated or exhausted). */
  show(alert) {
    const known = this.entries.get(alert.id);
    if (known && known.seq > alert.seq) return; // an older step arriving late
    const node = render(alert);
    if (known) known.node.replaceWith(node);
    else this.container.prepend(node);
    this.entries.set(alert.id, { node, seq: alert.seq });
    if (alert.status === "exhausted") {
      setTimeout(() => {
        const entry = this.entries.get(alert.id);
        if (entry && entry.node === node) {
          node.remove();
          this.entries.delete(alert.id);
        }
      }, EXHAUSTED_VISIBLE_MS);
    }
  }
}

function render(alert) {
  const over = alert.status === "exhausted";
  const long = alert.side === "long";
  const node = el("div", `alert ${long ? "long" : "short"}${over ? " exhausted" : ""}`);
  node.setAttribute("role", "alert");
  node.dataset.cascade = String(alert.id);
  node.dataset.status = String(alert.status);
  const move = Number(alert.price_move_pct) || 0;
  node.append(
    el("span", "badge", over ? "CASCADE EXHAUSTED" : `CASCADE ${alert.score}/10`),
    el("span", "message", String(alert.message)),
    el(
      "span",
      "meta",
      `${alert.market} ${long ? "longs" : "shorts"} · ${usdShort(alert.total_usd)} total · ` +
        `${count(alert.events)} liquidations · ${price(alert.start_price)} → ${price(alert.last_price)} ` +
        `(${move >= 0 ? "+" : ""}${move.toFixed(2)}%) · since ${clock(alert.started_at)} ${zone(alert.started_at)}`,
    ),
  );
  return node;
}
