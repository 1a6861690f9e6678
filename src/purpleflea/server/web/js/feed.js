// The live feed: newest on top, bounded, rendered at most once per animation frame however
// many events arrive, so a burst of thousands per second costs one small DOM update a frame.

import { coins, el, price, stamp, usd } from "./format.js";

export const FEED_LIMIT = 200;

export class Feed {
  constructor(list, emptyNote, limit = FEED_LIMIT) {
    this.list = list;
    this.emptyNote = emptyNote;
    this.limit = limit;
    this.queue = [];
    this.frame = 0;
  }

  /** Queue events (oldest first); they appear on the next animation frame. */
  push(...events) {
    for (const event of events) this.queue.push(event);
    // Only the newest `limit` can ever be on screen: drop the rest before building rows.
    if (this.queue.length > 4 * this.limit) this.queue.splice(0, this.queue.length - this.limit);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  clear() {
    this.queue = [];
    this.list.replaceChildren();
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
    let extra = this.list.childElementCount - this.limit;
    while (extra-- > 0) this.list.lastElementChild.remove();
    this.emptyNote.hidden = true;
  }

  /** Choose the rows' times again (call when the local date changes): a row drawn as
   * "23:59:40" today is another day's after midnight, and format.stamp then gives its date. */
  restamp(now = Date.now()) {
    for (const cell of this.list.querySelectorAll(".time")) cell.textContent = stamp(Number(cell.dataset.ts), now);
  }
}

/** One row, e.g. "LONG LIQ  BTC-PERP  $2,140,000  $61,234.5  Cascade: 9/10  <exchange>  14:03:27". */
export function row(event) {
  const long = event.side === "long";
  const score = Number(event.cascade_score) || 0;
  const item = el("li", `row ${long ? "long" : "short"}${score >= 7 ? " hot" : ""}`);
  const time = el("span", "num time", stamp(event.ts));
  time.dataset.ts = String(event.ts); // for restamp()
  item.append(
    el("span", "side", long ? "LONG LIQ" : "SHORT LIQ"),
    el("span", "market", String(event.market)),
    el("span", "num size", usd(event.size_usd)),
    el("span", "num price", price(event.price)),
    el("span", "score", `Cascade: ${score}/10`),
    el("span", "exchange", String(event.exchange)),
    time,
  );
  item.title = `${event.symbol} · ${coins(event.quantity)} coins · seq ${event.seq}`;
  return item;
}
