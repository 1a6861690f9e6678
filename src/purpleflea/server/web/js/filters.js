// Filters and view choices kept in the URL's query string, so a reload or a shared link
// shows the same page.

// An exchange id's shape; which ids exist is the server's to say (GET /v1/exchanges).
const EXCHANGE_ID = /^[a-z0-9_]{1,40}$/;

/** The exchanges a filter may name, [{id, name, coverage, price}], from the server's registry. */
export async function loadExchanges() {
  const response = await fetch("/v1/exchanges");
  if (!response.ok) throw new Error(`GET /v1/exchanges: HTTP ${response.status}`);
  const body = await response.json();
  return Array.isArray(body.exchanges) ? body.exchanges : [];
}

/** The page state from a query string (unknown or malformed values fall back to defaults). */
export function readState(search = location.search) {
  const params = new URLSearchParams(search);
  const minUsd = Number(params.get("min_usd"));
  // In any case, as the server takes them (a link with ?exchange=OKX&side=Short).
  const exchange = (params.get("exchange") || "").trim().toLowerCase();
  const side = (params.get("side") || "").trim().toLowerCase();
  return {
    minUsd: Number.isFinite(minUsd) && minUsd > 0 ? minUsd : 0,
    market: (params.get("market") || "").trim().toUpperCase(),
    exchange: EXCHANGE_ID.test(exchange) ? exchange : "",
    side: side === "long" || side === "short" ? side : "",
    heatmap: (params.get("heatmap") || "BTC-PERP").trim().toUpperCase(),
    top: params.get("top") === "24h" ? "24h" : "1h",
  };
}

/** Write the state into the URL without reloading or adding history entries. */
export function writeState(state) {
  const params = new URLSearchParams();
  if (state.minUsd > 0) params.set("min_usd", String(state.minUsd));
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
