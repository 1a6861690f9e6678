// Details that were only in hover titles (a heatmap bar's range and notional, a coverage hour's
// uptime, a gap's outcome, a top market's long/short split), made reachable without a mouse:
// a tablet or phone has no hover, and a keyboard or screen-reader user never sees a title.
// Each detail's element is focusable and labelled with the same text, and focusing, clicking
// or tapping it writes the text into a detail line drawn beside (never over) what it describes.

/**
 * Give `node` its detail `text`: the hover title for a mouse, the accessible name for a screen
 * reader, and what the detail line shows. `key` names the thing across redraws (the same
 * price level, the same hour) so that a focused detail stays focused when its panel refreshes.
 */
export function detailOf(node, text, key) {
  node.setAttribute("role", "img");
  node.setAttribute("aria-label", text);
  node.dataset.detail = text;
  node.dataset.detailKey = key;
  node.setAttribute("tabindex", "-1");
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

/**
 * Make `items` (nodes given `detailOf`, in reading order) one stop for Tab: the first (or the
 * one last picked) takes Tab, the arrow keys, Home and End move within, so a chart of two
 * hundred bars does not cost two hundred presses to get past. Focus, click or tap shows the
 * item's detail in `line`.
 */
export function detailGroup(items, line) {
  if (!items.length) return;
  items[0].setAttribute("tabindex", "0");
  const show = (item) => {
    for (const other of items) other.setAttribute("tabindex", other === item ? "0" : "-1");
    line.textContent = item.dataset.detail;
    line.dataset.key = item.dataset.detailKey;
  };
  items.forEach((item, index) => {
    item.addEventListener("focus", () => show(item));
    // A second tap on the focused item, after another group wrote the line, shows it again.
    item.addEventListener("click", () => show(item));
    item.addEventListener("keydown", (event) => {
      const to = { ArrowDown: index + 1, ArrowRight: index + 1, ArrowUp: index - 1, ArrowLeft: index - 1,
        Home: 0, End: items.length - 1 }[event.key];
      if (to === undefined) return;
      event.preventDefault(); // the arrows would scroll the page as well
      items[Math.max(0, Math.min(items.length - 1, to))].focus();
    });
  });
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
 * Redraw `container` with `draw()` without losing the reader's place: when focus was on a
 * detail inside it, focus the redrawn detail with the same key (which shows it again). A
 * `line` that outlives the redraw shows the redrawn detail's new numbers, or its hint again
 * when what it described is gone (a market that left the top ten).
 */
export function redrawKeepingFocus(container, draw, line) {
  const active = document.activeElement;
  const focused = active instanceof Element && container.contains(active) ? active.getAttribute("data-detail-key") : null;
  draw();
  const find = (key) => [...container.querySelectorAll("[data-detail-key]")].find((n) => n.getAttribute("data-detail-key") === key);
  if (focused !== null) find(focused)?.focus({ preventScroll: true });
  if (line?.dataset.key === undefined) return;
  const shown = find(line.dataset.key);
  if (shown) {
    line.textContent = shown.getAttribute("data-detail");
  } else {
    delete line.dataset.key;
    line.textContent = line.dataset.hint;
  }
}
