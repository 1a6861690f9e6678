// The cascade alert banner: one entry per active cascade (by alert id), updated in place,
// marked exhausted and then removed when the cascade ends.
//
// What a screen reader hears comes from a separate live region, not from the banners: in a
// crash dozens of cascades update every few seconds, and a banner that is itself an alert (or
// sits in an assertive region) is read out on every update. Only a cascade starting or ending
// is announced, gathered for a moment and at most once every ANNOUNCE_EVERY_MS.

import { clock, count, el, price, usdShort, zone } from "./format.js";

const EXHAUSTED_VISIBLE_MS = 8_000;
// A burst of starts arrives within a tick or two: wait this long so it is one announcement.
const GATHER_MS = 300;
const ANNOUNCE_EVERY_MS = 2_000;
const NAMED_IN_ONE = 4;

export class AlertBanner {
  /** ``announcer``: a visually hidden live region read out by screen readers (optional). */
  constructor(container, announcer = null) {
    this.container = container;
    this.announcer = announcer;
    this.entries = new Map(); // alert id -> { node, seq, status }
    this.pending = { started: [], exhausted: [] };
    this.announceTimer = null;
    this.lastAnnounced = -Infinity;
  }

  clear() {
    this.entries.clear();
    this.container.replaceChildren();
    this.pending = { started: [], exhausted: [] };
    clearTimeout(this.announceTimer);
    this.announceTimer = null;
  }

  /** Show one alert of a cascade's lifecycle (started, updated or exhausted). */
  show(alert) {
    const known = this.entries.get(alert.id);
    if (known && known.seq > alert.seq) return; // an older step arriving late
    const node = render(alert);
    if (known) known.node.replaceWith(node);
    else this.container.prepend(node);
    this.entries.set(alert.id, { node, seq: alert.seq, status: alert.status });
    // A page opened mid-cascade sees it first as "updated": shown, not announced.
    if (alert.status === "started" && !known) this.announce("started", alert);
    if (alert.status === "exhausted" && known && known.status !== "exhausted") {
      this.announce("exhausted", alert);
    }
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

  announce(kind, alert) {
    if (!this.announcer) return;
    this.pending[kind].push(`${alert.market} ${alert.side === "long" ? "longs" : "shorts"}`);
    if (this.announceTimer !== null) return;
    const at = Math.max(performance.now() + GATHER_MS, this.lastAnnounced + ANNOUNCE_EVERY_MS);
    this.announceTimer = setTimeout(() => this.flush(), at - performance.now());
  }

  flush() {
    this.announceTimer = null;
    const text = [
      sentence(this.pending.started, "started"),
      sentence(this.pending.exhausted, "exhausted"),
    ].filter(Boolean).join(" ");
    this.pending = { started: [], exhausted: [] };
    if (!text) return;
    this.lastAnnounced = performance.now();
    this.announcer.textContent = text;
  }
}

/** "Cascade started: ETH-PERP longs." / "6 cascades started: A, B, C, D and 2 more." */
function sentence(names, verb) {
  if (names.length === 0) return "";
  if (names.length === 1) return `Cascade ${verb}: ${names[0]}.`;
  const named = names.slice(0, NAMED_IN_ONE).join(", ");
  const more = names.length > NAMED_IN_ONE ? ` and ${names.length - NAMED_IN_ONE} more` : "";
  return `${names.length} cascades ${verb}: ${named}${more}.`;
}

function render(alert) {
  const over = alert.status === "exhausted";
  const long = alert.side === "long";
  const node = el("div", `alert ${long ? "long" : "short"}${over ? " exhausted" : ""}`);
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
