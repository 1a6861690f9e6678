// Number and time formatting shared by the feed, the heatmap and the top-markets list.

const usdWhole = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** Whole dollars, or two significant digits where they would read "0": a real liquidation
 * of $0.006 (0.1 ONT) shown as "$0" reads as nothing (formatting.py's _whole_or_cents). */
function wholeOrCents(value) {
  if (value > 0 && value <= 0.5) {
    if (value >= 1e-4) return String(Number(value.toPrecision(2)));
    return trimZeros(value.toFixed(12));
  }
  return usdWhole.format(value);
}

/** "$2,140,000": the exact notional, as on the product page's feed; "$0.0061" under 50 cents. */
export function usd(value) {
  return "$" + wholeOrCents(value);
}

function trimZeros(text) {
  return text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
}

/** "65,425": a count with thousands separators. */
export function count(value) {
  return usdWhole.format(value);
}

const coinDigits = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 8 });

/** "112.45274", "1,250,000", "0.0012345": a coin quantity to 8 significant digits (the API's
 * 112.45274092395594 is a float's noise past that). */
export function coins(value) {
  return coinDigits.format(value);
}

/** "$2.14M", "$45.3K", "$950": three significant digits with a short unit. */
export function usdShort(value) {
  const units = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]];
  for (const [unit, suffix] of units) {
    if (value >= unit * 0.9995) return "$" + trimZeros((value / unit).toPrecision(3)) + suffix;
  }
  return "$" + wholeOrCents(value);
}

/** A share (0..1) as "100%", "99.9%", "0%": one decimal, cut rather than rounded, so only a
 * whole share reads 100% (0.999, an hour 3.6 s down, read "100%"). */
export function percent(share) {
  if (share >= 1) return "100%";
  if (share === 0) return "0%";
  // The epsilon keeps a share computed a rounding under a tenth (0.58 as 0.5799999...) on it.
  return `${(Math.floor(share * 1000 + 1e-6) / 10).toFixed(1)}%`;
}

// One formatter per number of decimals, made once: toLocaleString with options builds a new
// one on every call (33 us in chromium, the most of a feed row's cost in a crash).
const fixedFormats = new Map();

/** `value` with exactly `digits` decimals and thousands separators, e.g. "61,234.5". */
function fixed(value, digits) {
  let format = fixedFormats.get(digits);
  if (!format) {
    format = new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
    fixedFormats.set(digits, format);
  }
  return format.format(value);
}

/** "$61,234.56", "$3.14159", "$0.000024208": formatting.py's format_price (what tail,
 * history and the agent tools write): at least two decimals, up to six significant digits,
 * trailing zeros past the second decimal dropped, at most twelve decimals. */
export function price(value) {
  if (!Number.isFinite(value)) return "–";
  if (value === 0) return "$0.00";
  const magnitude = Math.floor(Math.log10(Math.abs(value)));
  const digits = Math.min(12, Math.max(2, 5 - magnitude));
  const [whole, fraction = ""] = fixed(value, digits).split(".");
  return "$" + whole + "." + fraction.replace(/0+$/, "").padEnd(2, "0");
}

/** A price with as many decimals as `step` needs: $91,000 for $500 steps, $0.1625 for 0.0005. */
export function priceStep(value, step) {
  let digits = 0;
  while (digits < 10 && Math.abs(Math.round(step * 10 ** digits) - step * 10 ** digits) > 1e-6 * step * 10 ** digits) {
    digits += 1;
  }
  return "$" + fixed(value, digits);
}

/** "14:03:27" local time from ms since the epoch (zone() names the zone it is in). */
export function clock(ms) {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
}

/** A feed time: "14:03:27" today, "Dec 4 14:03" on another day (local dates): the history
 * shown on load can be days old where a filter matches rarely, and a bare time read as today. */
export function stamp(ms, now = Date.now()) {
  const d = new Date(ms);
  if (d.toDateString() === new Date(now).toDateString()) return clock(ms);
  const hm = [d.getHours(), d.getMinutes()].map((n) => String(n).padStart(2, "0")).join(":");
  return `${d.toLocaleString("en-US", { month: "short" })} ${d.getDate()} ${hm}`;
}

/** The browser's offset from UTC at `ms`, e.g. "UTC+9", "UTC-4", "UTC+5:30" or "UTC": every
 * clock() on the page is local time, and a trader comparing it with an exchange's UTC times
 * or a colleague's screen has to know which. */
export function zone(ms = Date.now()) {
  const minutes = -new Date(ms).getTimezoneOffset();
  if (!minutes) return "UTC";
  const abs = Math.abs(minutes);
  const part = abs % 60 ? `${Math.floor(abs / 60)}:${String(abs % 60).padStart(2, "0")}` : `${abs / 60}`;
  return `UTC${minutes > 0 ? "+" : "-"}${part}`;
}

/** Create an element with a class and text (never HTML: server text stays text). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
