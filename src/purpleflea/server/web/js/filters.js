// Filters and view choices kept in the URL's query string, so a reload or a shared link
// shows the same page.

// The longest filter value a link may carry to the server (its names are shorter).
const MAX_VALUE = 64;

/** The exchanges a filter may name, [{id, name, coverage, price}], from the server's registry. */
export async function loadExchanges() {
  const response = await fetch("/v1/exchanges");
  if (!response.ok) throw new Error(`GET /v1/exchanges: HTTP ${response.status}`);
  const body = await response.json();
  return Array.isArray(body.exchanges) ? body.exchanges : [];
}

/**
 * The page state from a query string. A filter is kept as written even when no control offers
 * it (`?side=buy`, `?exchange=Binance`, `?min_usd=100k`): the server refuses it in its own
 * words and the feed says so. Dropped, it left the feed unfiltered without a word.
 */
export function readState(search = location.search) {
  const params = new URLSearchParams(search);
  // In any case, as the server takes them (a link with ?exchange=OKX&side=Short).
  const exchange = (params.get("exchange") || "").trim().toLowerCase().slice(0, MAX_VALUE);
  const side = (params.get("side") || "").trim().toLowerCase().slice(0, MAX_VALUE);
  return {
    minUsd: minUsdOf((params.get("min_usd") || "").trim().slice(0, MAX_VALUE)),
    market: (params.get("market") || "").trim().toUpperCase(),
    exchange,
    side,
    heatmap: (params.get("heatmap") || "BTC-PERP").trim().toUpperCase(),
    top: params.get("top") === "24h" ? "24h" : "1h",
  };
}

/** A minimum size as the page keeps it: a number of USD (0: any), or the text a link gave that
 * is none, for the server to refuse. */
export function minUsdOf(text) {
  const value = Number(text);
  return text === "" || (Number.isFinite(value) && value >= 0) ? value : text;
}

/** Write the state into the URL without reloading or adding history entries. */
export function writeState(state) {
  const params = new URLSearchParams();
  if (state.minUsd !== 0) params.set("min_usd", String(state.minUsd));
  if (state.market) params.set("market", state.market);
  if (state.exchange) params.set("exchange", state.exchange);
  if (state.side) params.set("side", state.side);
  if (state.heatmap !== "BTC-PERP") params.set("heatmap", state.heatmap);
  if (state.top !== "1h") params.set("top", state.top);
  const query = params.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

/** The subset that the stream and the history query filter on. */
export function streamFilters(state) {
  return { minUsd: state.minUsd, market: state.market, exchange: state.exchange, side: state.side };
}
