// The heatmap chart: notional at risk per price level, longs to the left of the axis and
// shorts to the right, the mark price as a line, clusters as labelled bands. Inline SVG
// built with DOM calls, so every label is text, never markup.

import { detailGroup, detailLine, detailOf, redrawKeepingFocus } from "./details.js";
import { el, priceStep, usdShort } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 520; // the widest drawing; a narrower box (a phone) gets its own width
const MIN_WIDTH = 300;
const AXIS = 74; // room for price labels on the left
const LANE = 56; // each side's outer lane: cluster labels ("$1.86B"), which bars never reach
const PAD = 8;
const LABEL_GAP = 12; // one label line: labels of nearby clusters stack instead of overlapping

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Draw `map` (the /v1/heatmap/{market} answer) into `container`. */
export function drawHeatmap(container, map) {
  const prices = map.prices || [];
  const longs = map.long_usd || [];
  const shorts = map.short_usd || [];
  const n = prices.length;
  if (!n) {
    showMessage(container, `The heatmap of ${map.market} is empty.`);
    return;
  }
  const rowH = Math.max(2, Math.min(5, Math.floor(500 / n)));
  const height = n * rowH + 2 * PAD + 14;
  const low = prices[0];
  const high = prices[n - 1] + map.bucket_size;
  const top = PAD + 14;
  const y = (p) => top + ((high - p) / (high - low)) * n * rowH;
  // Drawn at the box's own width, one unit a CSS pixel: 520 units shrunk into a 390 px phone's
  // 328 px drew its 10 px labels at 6 px. (Redrawn at the 15 s refresh after a resize.)
  const width = Math.min(WIDTH, Math.max(MIN_WIDTH, container.clientWidth || WIDTH));
  const centre = AXIS + (width - AXIS) / 2;
  const half = (width - AXIS) / 2 - LANE - PAD;
  const peak = Math.max(1, ...longs, ...shorts);
  const scale = (usd) => (usd / peak) * half;
  const step = map.bucket_size;
  const price = (value) => priceStep(value, step);
  const markPrice = priceStep(map.mark_price, step / 10);

  const chart = svg("svg", {
    class: "heatmap-chart",
    viewBox: `0 0 ${width} ${height}`,
    // A group, not an image: an image's parts are hidden from screen readers, and its bars
    // and bands are focusable, each labelled with its numbers.
    role: "group",
    "aria-label": `${map.source === "measured" ? "Measured liquidation map" : "Liquidation heatmap"} of ${map.market}`,
  });
  chart.append(
    svg("text", { x: centre - 6, y: PAD + 6, class: "hm-head", "text-anchor": "end" }, "← longs"),
    svg("text", { x: centre + 6, y: PAD + 6, class: "hm-head" }, "shorts →"),
  );

  // Labels go in the lanes, top to bottom, each below the previous one of its side.
  const byTop = [...(map.clusters || [])].sort((a, b) => b.high - a.high);
  const lastLabel = { long: -Infinity, short: -Infinity };
  const bands = [];
  for (const cluster of byTop) {
    const long = cluster.side === "long";
    const y0 = y(cluster.high);
    const labelY = Math.max(y0 + 10, lastLabel[long ? "long" : "short"] + LABEL_GAP);
    lastLabel[long ? "long" : "short"] = labelY;
    const band = svg("rect", {
      class: `hm-cluster ${long ? "long" : "short"}`,
      x: long ? AXIS : centre,
      y: y0,
      width: centre - AXIS - (long ? 0 : PAD),
      height: Math.max(rowH, y(cluster.low) - y0),
    });
    bands.push(detailOf(band, String(cluster.label), `cluster:${cluster.side}:${cluster.low}:${cluster.high}`));
    const usd = cluster.notional_usd ?? cluster.usd ?? 0;
    chart.append(
      band,
      svg(
        "text",
        {
          class: "hm-cluster-label",
          x: long ? AXIS + 4 : width - PAD - 4,
          y: labelY,
          "text-anchor": long ? "start" : "end",
        },
        usdShort(usd), // the side is the lane's; the band's title and the list name it
      ),
    );
  }

  // Labels stacked below the last row stay inside the chart.
  const lowest = Math.max(lastLabel.long, lastLabel.short) + 4;
  if (lowest > height) chart.setAttribute("viewBox", `0 0 ${width} ${lowest}`);

  // Price labels at round prices, at least 14 px apart.
  const labelStep = niceStep(Math.ceil(14 / rowH) * step);
  const levels = []; // each price level's bars, long then short (left to right)
  for (let i = 0; i < n; i += 1) {
    const yi = y(prices[i] + map.bucket_size);
    const tip = `${price(prices[i])} – ${price(prices[i] + map.bucket_size)}: ` +
      `longs ${usdShort(longs[i] || 0)}, shorts ${usdShort(shorts[i] || 0)}`;
    const level = [];
    if (longs[i] > 0) {
      const w = scale(longs[i]);
      const bar = svg("rect", { class: "hm-long", x: centre - w, y: yi, width: w, height: rowH - 0.5 });
      level.push(detailOf(bar, tip, `long:${prices[i]}`));
    }
    if (shorts[i] > 0) {
      const bar = svg("rect", { class: "hm-short", x: centre, y: yi, width: scale(shorts[i]), height: rowH - 0.5 });
      level.push(detailOf(bar, tip, `short:${prices[i]}`));
    }
    chart.append(...level);
    levels.push(level);
    const nearMark = Math.abs(yi + rowH / 2 - y(map.mark_price)) < 10;
    const ratio = prices[i] / labelStep;
    if (Math.abs(ratio - Math.round(ratio)) < 1e-6 && !nearMark) {
      chart.append(svg("text", { class: "hm-price", x: AXIS - 6, y: yi + rowH / 2 + 3, "text-anchor": "end" }, price(prices[i])));
    }
  }

  chart.append(svg("line", { class: "hm-axis", x1: centre, x2: centre, y1: top, y2: top + n * rowH }));
  if (map.mark_price >= low && map.mark_price <= high) {
    const ym = y(map.mark_price);
    chart.append(
      svg("line", { class: "hm-mark", x1: AXIS, x2: width - PAD, y1: ym, y2: ym }),
      svg("text", { class: "hm-mark-label", x: AXIS - 6, y: ym + 4, "text-anchor": "end" }, markPrice),
    );
  }

  const caption = el("p", "hm-caption");
  caption.append(
    el("strong", "", String(map.market)),
    document.createTextNode(` mark ${markPrice} · bucket ${price(map.bucket_size)} · ` +
      `longs ${usdShort(sum(longs))} · shorts ${usdShort(sum(shorts))} at risk in view`),
  );
  if (map.source === "measured") {
    // Every answer says its source; the measured one also how much of the market it saw.
    const coverage = `${(100 * (map.coverage || 0)).toFixed(1)}%`;
    caption.prepend(el("span", "hm-source", "measured "));
    caption.append(el("span", "hm-coverage",
      ` · source: measured, ${map.accounts} sampled accounts, coverage ${coverage} of open ` +
      "interest (their own liquidation prices; exact for them, silent about the rest)"));
  } else if (map.source) {
    caption.append(el("span", "hm-source-note", ` · source: ${map.source}`));
  }
  const list = el("ul", "hm-clusters");
  for (const cluster of map.clusters || []) {
    list.append(el("li", cluster.side === "long" ? "long" : "short", String(cluster.label)));
  }
  // Below the chart, so what it says never covers the bar it describes. Arrow keys walk the
  // bars top to bottom (highest price first), as the chart reads.
  const line = detailLine("Tap a bar or a band, or Tab to the chart and use the arrow keys, for its numbers.");
  detailGroup(levels.reverse().flat(), line);
  detailGroup(bands, line);
  // Redrawn every 15 s: a reader on a bar stays on it.
  redrawKeepingFocus(container, () => container.replaceChildren(caption, chart, line, list));
}

export function showMessage(container, text, detail) {
  const note = el("p", "empty", text);
  if (detail) note.append(el("span", "detail", detail));
  container.replaceChildren(note);
}

/** The smallest of 1, 2, 2.5, 5 x 10^k that is at least `raw`. */
function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw * (1 - 1e-9));
}

function sum(values) {
  let total = 0;
  for (const v of values) total += v;
  return total;
}
