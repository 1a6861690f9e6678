// The live feed: newest on top, bounded, rendered at most once per animation frame however
// many events arrive, so a burst of thousands per second costs one small DOM update a frame.
// Each row is one item for tap and keyboard: its detail (every column in words, and what the
// row has no room for: the quantity in coins, the venue's symbol, the seq) shows in `line`.

import { detailList, detailOf, refreshLine } from "./details.js";
import { coins, el, price, stamp, usd, zone } from "./format.js";

export const FEED_LIMIT = 200;

// Each row's event, for restamp() to say its detail again with the new time.
const shown = new WeakMap();

export class Feed {
  constructor(list, emptyNote, line, limit = FEED_LIMIT) {
    this.list = list;
    this.emptyNote = emptyNote;
    this.line = line;
    this.limit = limit;
    this.queue = [];
    this.frame = 0;
    this.tabStop = detailList(list, line);
    this.refusal = ""; // the server's refusal of the filters, while it stands
  }

  /** Queue events (oldest first); they appear on the next animation frame. */
  push(...events) {
    for (const event of events) this.queue.push(event);
    // Only the newest `limit` can ever be on screen: drop the rest before building rows.
    if (this.queue.length > 4 * this.limit) this.queue.splice(0, this.queue.length - this.limit);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  /** Whether no row is shown or queued. */
  get empty() {
    return !this.list.childElementCount && !this.queue.length;
  }

  /** Say, while no row has come, what the server's source is doing (its own words from
   * /v1/health, e.g. the simulator warming up, how far); "" for the plain note. */
  waiting(why) {
    if (this.refusal) return; // no liquidation can come until the filters change
    const text = why ? `Waiting for liquidations: ${why}.` : "Waiting for liquidations…";
    if (this.emptyNote.textContent !== text) this.emptyNote.textContent = text;
  }

  /** Say that the server refused the filters (its own words): "Waiting for liquidations…"
   * under them read as a quiet market, where none can come until they change. */
  refused(message) {
    this.refusal = `No feed: the server refused these filters: ${message}. Change them above.`;
    this.emptyNote.textContent = this.refusal;
    this.emptyNote.hidden = false;
  }

  clear() {
    this.refusal = "";
    this.emptyNote.textContent = "Waiting for liquidations…";
    this.queue = [];
    this.list.replaceChildren();
    refreshLine(this.list, this.line); // its row is gone with the old filters: the hint again
    this.emptyNote.hidden = false;
  }

  render() {
    this.frame = 0;
    const fresh = this.queue.slice(-this.limit);
    this.queue = [];
    if (!fresh.length) return;
    const fragment = document.createDocumentFragment();
    for (let i = fresh.length - 1; i >= 0; i -= 1) fragment.append(row(fresh[i]));
    this.list.prepend(fragment);
    // Trim the oldest, but not the row a reader is on: in a crash it would fall off within a
    // second and take their place (focus) with it. It goes once they leave it; the line keeps
    // saying it (a past liquidation, named by its seq) until another row is picked.
    const reading = document.activeElement;
    let extra = this.list.childElementCount - this.limit;
    let node = this.list.lastElementChild;
    while (extra > 0 && node) {
      const before = node.previousElementSibling;
      if (node !== reading) {
        node.remove();
        extra -= 1;
      }
      node = before;
    }
    this.tabStop();
    this.emptyNote.hidden = true;
  }

  /** Choose the rows' times again (call when the local date changes): a row drawn as
   * "23:59:40" today is another day's after midnight, and format.stamp then gives its date. */
  restamp(now = Date.now()) {
    for (const item of this.list.children) {
      const event = shown.get(item);
      if (!event) continue;
      item.querySelector(".time").textContent = stamp(event.ts, now);
      detailOf(item, detail(event, [...item.children].map((cell) => cell.textContent)), item.dataset.detailKey, null);
      if (this.line.dataset.key === item.dataset.detailKey) this.line.textContent = item.dataset.detail;
    }
  }
}

/** A row in words, from its cells' texts (each formatted once), e.g. "LONG LIQ BTC-PERP
 * $2,140,000 at $61,234.5 · Cascade: 9/10 · <exchange> · 14:03:27 UTC · 34.95 coins (BTCUSDT) · seq 812". */
function detail(event, cells) {
  const [side, market, size, price_, score, exchange, time] = cells;
  return `${side} ${market} ${size} at ${price_} · ${score} · ${exchange} · ${time} ${zone(event.ts)} · ` +
    `${coins(event.quantity)} coins (${event.symbol}) · seq ${event.seq}`;
}

/** One row, e.g. "LONG LIQ  BTC-PERP  $2,140,000  $61,234.5  Cascade: 9/10  <exchange>  14:03:27". */
export function row(event, now = Date.now()) {
  const long = event.side === "long";
  const score = Number(event.cascade_score) || 0;
  const item = el("li", `row ${long ? "long" : "short"}${score >= 7 ? " hot" : ""}`);
  const cells = [
    long ? "LONG LIQ" : "SHORT LIQ",
    String(event.market),
    usd(event.size_usd),
    price(event.price),
    `Cascade: ${score}/10`,
    String(event.exchange),
    stamp(event.ts, now),
  ];
  const classes = ["side", "market", "num size", "num price", "score", "exchange", "num time"];
  item.append(...cells.map((text, i) => el("span", classes[i], text)));
  shown.set(item, event);
  // A list item still (role null): its label reads the whole row out when focused.
  return detailOf(item, detail(event, cells), String(event.seq), null);
}
