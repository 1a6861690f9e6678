// Top markets by liquidated notional over the last hour or day (REST aggregates).

import { getJson } from "./api.js";
import { detailGroup, detailOf, redrawKeepingFocus } from "./details.js";
import { count, el, usd, usdShort } from "./format.js";

const SPAN_MS = { "1h": 3_600_000, "24h": 86_400_000 };
const SHOWN = 10;

/**
 * Fetch and draw the top markets; `onPick(market)` runs when one is clicked, and a tapped or
 * focused bar tells its long/short split and totals in `line`. `wanted()` says,
 * once the answer is in, whether it is still the one to show: an answer can be overtaken by a
 * later question (the range toggled while a slow 24 h sum ran). Returns whether it drew.
 */
export async function loadTop(list, range, onPick, line, wanted = () => true) {
  const start = Math.floor((Date.now() - SPAN_MS[range]) / 60_000) * 60_000;
  // The measure alone (estimate=false): these bars show measured notional, and the open hour's
  // estimate beside it was most of the answer's server CPU in a crash (charged to the account).
  const query = { interval: "1h", group_by: "market", start, estimate: "false" };
  const answer = await getJson("/v1/liquidations/aggregate", query);
  if (!wanted()) return false;
  const totals = new Map();
  for (const bucket of answer.buckets) {
    const cell = totals.get(bucket.group) || { market: bucket.group, usd: 0, longs: 0, shorts: 0, count: 0 };
    cell.usd += bucket.size_usd;
    cell.longs += bucket.long_usd;
    cell.shorts += bucket.short_usd;
    cell.count += bucket.count;
    totals.set(bucket.group, cell);
  }
  const top = [...totals.values()].sort((a, b) => b.usd - a.usd).slice(0, SHOWN);
  const span = range.replace("h", " h"); // as the toggle spells it: "1 h", "24 h"
  if (!top.length) {
    redrawKeepingFocus(list, () => list.replaceChildren(el("li", "empty", `No liquidations in the last ${span}.`)), line);
    return true;
  }
  const peak = top[0].usd || 1;
  const bars = [];
  const drawn = top.map((cell) => {
    const item = el("li", "top-row");
    const name = el("button", "link market", cell.market);
    name.type = "button";
    name.title = `show the heatmap of ${cell.market}`;
    name.addEventListener("click", () => onPick(cell.market));
    const bar = el("span", "bar");
    const longs = el("span", "bar-long");
    const shorts = el("span", "bar-short");
    longs.style.width = `${(cell.longs / peak) * 100}%`;
    shorts.style.width = `${(cell.shorts / peak) * 100}%`;
    bar.append(longs, shorts);
    const split = `${cell.market}: longs ${usdShort(cell.longs)} · shorts ${usdShort(cell.shorts)} · ` +
      `${usd(cell.usd)} in ${count(cell.count)} liquidations in the last ${span}`;
    bars.push(detailOf(bar, split, cell.market));
    // The two numbers carry no unit on screen: their hovers and the bar's detail name it.
    const total = el("span", "num", usdShort(cell.usd));
    total.title = `${usd(cell.usd)} liquidated in the last ${span}`;
    const events = el("span", "num small", count(cell.count));
    events.title = `${count(cell.count)} liquidations in the last ${span}`;
    item.append(name, bar, total, events);
    return item;
  });
  detailGroup(bars, line);
  redrawKeepingFocus(list, () => list.replaceChildren(...drawn), line);
  return true;
}
