// Details that were only in hover titles (a heatmap bar's range and notional, a coverage hour's
// uptime and a venue's coverage class, a gap's outcome, a top market's long/short split, a feed
// row's quantity in coins), made reachable without a mouse: a tablet or phone has no hover, and
// a keyboard or screen-reader user never sees a title. Each detail's element is focusable and
// labelled with the same text, and focusing, clicking or tapping it writes the text into a
// detail line drawn beside (never over) what it describes.

/**
 * Give `node` its detail `text`: the hover title for a mouse, the accessible name for a screen
 * reader, and what the detail line shows. `key` names the thing across redraws (the same
 * price level, the same hour) so that a focused detail stays focused when its panel refreshes.
 * `role` "img" names a drawn thing by its label; null keeps the node's own (a feed row stays a
 * list item). Called again on an HTML node, it replaces the text (a row's time restamped).
 */
export function detailOf(node, text, key, role = "img") {
  if (role) node.setAttribute("role", role);
  node.setAttribute("aria-label", text);
  node.dataset.detail = text;
  node.dataset.detailKey = key;
  if (!node.hasAttribute("tabindex")) node.setAttribute("tabindex", "-1");
  if (node instanceof SVGElement) {
    // SVG keeps its hover text in a <title> child, not an attribute.
    const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
    title.textContent = text;
    node.append(title);
  } else {
    node.title = text;
  }
  return node;
}

// The arrow keys step through a group, Home and End go to its ends.
const STEP = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 };

/** The index `key` moves to from `index` among `length` items; undefined for other keys. */
function stepTo(key, index, length) {
  const to = key === "Home" ? 0 : key === "End" ? length - 1 : STEP[key] === undefined ? undefined : index + STEP[key];
  return to === undefined ? undefined : Math.max(0, Math.min(length - 1, to));
}

/** Show `item`'s detail in `line`; it becomes its group's one Tab stop (`others` give theirs up). */
function pick(item, others, line) {
  for (const other of others) {
    if (other !== item && other.getAttribute("tabindex") !== "-1") other.setAttribute("tabindex", "-1");
  }
  item.setAttribute("tabindex", "0");
  line.textContent = item.dataset.detail;
  line.dataset.key = item.dataset.detailKey;
}

/** Move focus from `item` (at `index` of `items`) as the key of `event` says. */
function walk(event, items, index) {
  const to = stepTo(event.key, index, items.length);
  if (to === undefined) return;
  event.preventDefault(); // the arrows would scroll the page as well
  items[to].focus();
}

/**
 * Make `items` (nodes given `detailOf`, in reading order) one stop for Tab: the first (or the
 * one last picked) takes Tab, the arrow keys, Home and End move within, so a chart of two
 * hundred bars does not cost two hundred presses to get past. Focus, click or tap shows the
 * item's detail in `line`.
 */
export function detailGroup(items, line) {
  if (!items.length) return;
  items[0].setAttribute("tabindex", "0");
  items.forEach((item, index) => {
    item.addEventListener("focus", () => pick(item, items, line));
    // A second tap on the focused item, after another group wrote the line, shows it again.
    item.addEventListener("click", () => pick(item, items, line));
    item.addEventListener("keydown", (event) => walk(event, items, index));
  });
}

/**
 * As detailGroup, for a list whose items come and go (the live feed: hundreds a second in a
 * crash): one set of listeners on `list` serves every item it ever holds. Returns the function
 * to call after the list changed: the item picked last keeps the Tab stop while it is on the
 * list, else the first (newest) item takes it.
 */
export function detailList(list, line) {
  let picked = null;
  const itemOf = (event) => {
    const item = event.target instanceof Element ? event.target.closest("[data-detail]") : null;
    return item && item.parentElement === list ? item : null;
  };
  const show = (event) => {
    const item = itemOf(event);
    if (!item) return;
    picked = item;
    pick(item, list.querySelectorAll(':scope > [tabindex="0"]'), line);
  };
  list.addEventListener("focusin", show);
  list.addEventListener("click", show);
  list.addEventListener("keydown", (event) => {
    const item = itemOf(event);
    if (item) walk(event, list.children, Array.prototype.indexOf.call(list.children, item));
  });
  return () => {
    const stop = picked?.parentElement === list ? picked : list.firstElementChild;
    for (const other of list.querySelectorAll(':scope > [tabindex="0"]')) {
      if (other !== stop) other.setAttribute("tabindex", "-1");
    }
    stop?.setAttribute("tabindex", "0");
  };
}

/** A detail line: what it says before anything is picked tells how to pick. */
export function detailLine(hint) {
  const line = document.createElement("p");
  line.className = "detail-line";
  line.dataset.hint = hint;
  line.textContent = hint;
  // The focused item's own label reads the same text out; announcing the line too doubles it.
  line.setAttribute("aria-hidden", "true");
  return line;
}

/**
 * Make `line` say again what it shows, as its item in `container` now reads (new numbers), or
 * its hint when the item is gone (a market that left the top ten).
 */
export function refreshLine(container, line) {
  if (line?.dataset.key === undefined) return;
  const key = line.dataset.key;
  const shown = [...container.querySelectorAll("[data-detail-key]")].find((n) => n.getAttribute("data-detail-key") === key);
  if (shown) {
    line.textContent = shown.getAttribute("data-detail");
  } else {
    delete line.dataset.key;
    line.textContent = line.dataset.hint;
  }
}

/**
 * Redraw `container` with `draw()` without losing the reader's place: when focus was on a
 * detail inside it, focus the redrawn detail with the same key (which shows it again). A
 * `line` that outlives the redraw is refreshed (refreshLine).
 */
export function redrawKeepingFocus(container, draw, line) {
  const active = document.activeElement;
  const focused = active instanceof Element && container.contains(active) ? active.getAttribute("data-detail-key") : null;
  draw();
  if (focused !== null) {
    [...container.querySelectorAll("[data-detail-key]")].find((n) => n.getAttribute("data-detail-key") === focused)?.focus({ preventScroll: true });
  }
  refreshLine(container, line);
}
