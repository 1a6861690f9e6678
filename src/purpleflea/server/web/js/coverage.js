// Coverage per exchange: a badge for how complete its feed is (GET /v1/exchanges) and an
// uptime strip of the last 24 hours with its gaps marked (GET /v1/coverage).

import { getJson } from "./api.js";
import { detailGroup, detailOf, redrawKeepingFocus } from "./details.js";
import { clock, el, percent, zone } from "./format.js";

const HOUR_MS = 3_600_000;
const HOURS = 24;
const BADGE_TEXT = {
  complete: "every liquidation",
  snapshot: "a throttled sample (at most one per symbol per second or similar), so its totals are a floor",
  sampled: "only the accounts watched",
};

/**
 * The coverage class of exchange `id` (display name `name`) as a badge: complete / snapshot /
 * sampled. What the class means is its detail (a phone has no hover to read it).
 */
export function coverageBadge(coverage, id, name = id) {
  const kind = coverage || "unknown";
  const badge = el("span", `cov-badge cov-${kind}`, kind);
  const sends = BADGE_TEXT[kind] ? `this venue sends ${BADGE_TEXT[kind]}` : "coverage not stated";
  const named = name && name !== id ? `${id} (${name})` : id;
  return detailOf(badge, `${named}: ${kind}, ${sends}`, `${id}:badge`);
}

/** One hour's cell; its detail also tells the gaps in that hour (a 2 px mark is no tap target). */
function hourCell(id, hour, row, gapTexts) {
  const cell = el("span", "cov-hour");
  const when = `${id} ${clock(hour)}–${clock(hour + HOUR_MS)} ${zone(hour)}`;
  let text;
  if (!row) {
    cell.classList.add("cov-none");
    text = `${when}: not watched`;
  } else {
    const up = row.uptime;
    cell.classList.add(up >= 0.999 ? "cov-up" : up >= 0.95 ? "cov-mostly" : up > 0 ? "cov-poor" : "cov-down");
    text = `${when}: up ${percent(up)}`;
    if (row.pressure !== null && row.pressure !== undefined) {
      text += ` · throttle pressure ${percent(row.pressure)} of symbol-seconds carried an event`;
    }
  }
  for (const gap of gapTexts) text += ` · ${gap}`;
  return detailOf(cell, text, `${id}:${hour}`);
}

function gapEnd(gap, start, span) {
  return gap.end ?? start + span;
}

function gapText(gap, end) {
  const seconds = Math.max(0, Math.round((end - gap.start) / 1000));
  const outcome =
    gap.repair === "repaired"
      ? `repaired from REST: ${gap.repaired_events} events`
      : gap.repair === "open"
        ? `open: ${gap.note}`
        : "repair pending";
  return `gap ${clock(gap.start)} ${zone(gap.start)} +${seconds} s (${gap.reason}) · ${outcome}`;
}

// As `.cov-strip`'s `gap` in style.css: the cells are not the strip's width / 24 apart.
const CELL_GAP_PX = 1;
const CELL_WIDTH = `(100% - ${(HOURS - 1) * CELL_GAP_PX}px) / ${HOURS}`;

/** Where moment `t` sits in the strip, in the cells' own coordinates (a CSS length). */
function stripX(t, start) {
  const hours = Math.min(HOURS, Math.max(0, (t - start) / HOUR_MS));
  const cell = Math.min(HOURS - 1, Math.floor(hours));
  return { cell, hours, css: `${hours} * ${CELL_WIDTH} + ${cell * CELL_GAP_PX}px` };
}

/**
 * Where a gap was, drawn over the cells; what it was is in the detail of its hours' cells.
 * Placed by cell, not by the strip's width, and a short mark kept inside its first hour's cell:
 * a tap on it goes through to a cell whose detail tells this gap, even at an hour's edge.
 */
function gapMark(gap, start, span) {
  const from = stripX(Math.max(gap.start, start), start);
  const to = stripX(Math.min(gapEnd(gap, start, span), start + span), start);
  const cellEnd = `${from.cell + 1} * ${CELL_WIDTH} + ${from.cell * CELL_GAP_PX}px`;
  const mark = el("span", `cov-gap cov-gap-${gap.repair}`);
  mark.style.left = `min(calc(${from.css}), calc(${cellEnd} - 2px))`;
  mark.style.width = `max(2px, calc(${to.css} - (${from.css})))`;
  mark.setAttribute("aria-hidden", "true"); // its hours' cells say it in words
  return mark;
}

/** The 24 hourly cells and the gap marks of exchange `id`: the strip and its cells. */
function strip(id, rows, gaps, end) {
  const last = end - (end % HOUR_MS);
  const start = last - (HOURS - 1) * HOUR_MS;
  const span = HOURS * HOUR_MS;
  const byHour = new Map(rows.map((row) => [row.hour, row]));
  const box = el("div", "cov-strip");
  const cells = [];
  for (let hour = start; hour <= last; hour += HOUR_MS) {
    const within = gaps.filter((g) => g.start < hour + HOUR_MS && gapEnd(g, start, span) > hour);
    cells.push(hourCell(id, hour, byHour.get(hour), within.map((g) => gapText(g, gapEnd(g, start, span)))));
  }
  box.append(...cells);
  for (const gap of gaps) box.append(gapMark(gap, start, span));
  return { box, cells };
}

function summary(rows, gaps) {
  const watched = rows.reduce((sum, row) => sum + row.up_s / Math.max(row.uptime, 1e-9), 0);
  const up = rows.reduce((sum, row) => sum + row.up_s, 0);
  const repaired = gaps.filter((g) => g.repair === "repaired").length;
  let text = `${percent(watched > 0 ? up / watched : 0)} up`;
  if (gaps.length) text += ` · ${gaps.length} gap${gaps.length > 1 ? "s" : ""} (${repaired} repaired)`;
  const pressures = rows.map((r) => r.pressure).filter((p) => p !== null && p !== undefined);
  if (pressures.length) text += ` · pressure ${percent(Math.max(...pressures))}`;
  return el("span", "cov-summary small", text);
}

/**
 * Fetch the last 24 h of coverage and draw one row per exchange that has any; a tapped or
 * focused badge tells what the venue sends, an hour its uptime and gaps, in `line`.
 */
export async function loadCoverage(list, exchanges, line) {
  const answer = await getJson("/v1/coverage");
  const rows = new Map();
  const gaps = new Map();
  for (const row of answer.hours) rows.set(row.exchange, [...(rows.get(row.exchange) || []), row]);
  for (const gap of answer.gaps) gaps.set(gap.exchange, [...(gaps.get(gap.exchange) || []), gap]);
  const known = new Map(exchanges.map((e) => [e.id, e]));
  const ids = [...new Set([...rows.keys(), ...gaps.keys()])].sort();
  if (!ids.length) {
    redrawKeepingFocus(list, () => list.replaceChildren(el("li", "empty", "No coverage recorded yet.")), line);
    return;
  }
  const drawn = ids.map((id) => {
    const item = el("li", "cov-row");
    item.dataset.exchange = id;
    const badge = coverageBadge(known.get(id)?.coverage, id, known.get(id)?.name);
    const hours = strip(id, rows.get(id) || [], gaps.get(id) || [], answer.end);
    item.append(el("span", "cov-name", id), badge, hours.box, summary(rows.get(id) || [], gaps.get(id) || []));
    // One Tab stop an exchange: its badge, then the arrows walk its hours.
    detailGroup([badge, ...hours.cells], line);
    return item;
  });
  // Redrawn every 60 s: a reader on an hour stays on it.
  redrawKeepingFocus(list, () => list.replaceChildren(...drawn), line);
}
