// Wires the dashboard together: key, filters, history + live stream, alerts, heatmap, top list.

import { ApiError, createKey, getJson, loadKey, saveKey } from "./js/api.js";
import { AlertBanner } from "./js/alerts.js";
import { detailLine } from "./js/details.js";
import { Feed } from "./js/feed.js";
import { loadExchanges, minUsdOf, readState, streamFilters, writeState } from "./js/filters.js";
import { usd, zone } from "./js/format.js";
import { drawHeatmap, showMessage } from "./js/heatmap.js";
import { Freshness } from "./js/freshness.js";
import { LiveStream } from "./js/stream.js";
import { loadTop } from "./js/top.js";
import { loadCoverage } from "./js/coverage.js";

const $ = (id) => document.getElementById(id);
const HISTORY_ROWS = 50;
const HEATMAP_REFRESH_MS = 15_000;
const TOP_REFRESH_MS = 30_000;
const COVERAGE_REFRESH_MS = 60_000;
const HEALTH_REFRESH_MS = 10_000;

const state = readState();
const banner = new AlertBanner($("alerts"), $("alerts-announce"));
const topFresh = new Freshness($("top-fresh"));
const coverageFresh = new Freshness($("coverage-fresh"));
// Under each list, what a tapped or focused bar or hour says (no hover on a phone).
const topDetail = detailLine("Tap a bar, or Tab to it and use the arrow keys, for its long/short split.");
const coverageDetail = detailLine(
  "Tap a badge or an hour, or Tab to an exchange and use the arrow keys, for what the venue sends, its uptime and gaps.",
);
$("top-markets").after(topDetail);
$("coverage").after(coverageDetail);
// The feed's is above its rows: under up to 200 of them a phone would show it off screen.
const feedDetail = detailLine("Tap a row, or Tab to the feed and use the arrow keys, for all of it in one line with its size in coins.");
document.querySelector(".feed-head").before(feedDetail);
const feed = new Feed($("feed"), $("feed-empty"), feedDetail);
let exchangeList = []; // GET /v1/exchanges: ids, names and coverage classes
// Markets whose measured map the server serves (GET /v1/markets), so none is asked in vain.
let measuredMarkets = new Set();
let shownSeq = 0; // highest liquidation seq in the feed: resume never shows one twice
let received = 0;
let session = 0; // bumps on every (re)start so late answers of an old one are ignored
let streamDropped = false; // the stream went down since the panels were last refreshed
// No key, or the server rejected it: the timers ask nothing until a key is entered. (They
// looked at whether the key panel was open, so a panel opened to copy a new key or to type
// another one stopped every refresh.)
let keyMissing = false;

const stream = new LiveStream({
  onLiquidation(event) {
    received += 1;
    if (event.seq <= shownSeq) return;
    shownSeq = event.seq;
    feed.push(event);
  },
  onCascade: (alert) => banner.show(alert),
  onStatus: setStatus,
  onAuthError: keyRejected,
  onRefused: (message) => feed.refused(message),
});

// -- connection status and the key ---------------------------------------------------------

// The stream's state, and what /v1/health says is wrong with the server (empty when ok):
// a stream can be "live" (heartbeats flowing) while the server's own feed is dead, and a
// trader watching a quiet feed must not take that for a quiet market.
let streamState = { kind: "connecting", detail: "" };
let serverTrouble = "";
let sourceWaiting = ""; // health's source_status.message: why no liquidation has come yet

function showStatus() {
  const troubled = streamState.kind === "live" && serverTrouble;
  const kind = troubled ? "degraded" : streamState.kind;
  const detail = troubled ? `server says ${serverTrouble}` : streamState.detail;
  const node = $("status");
  node.className = `status status-${kind}`;
  node.textContent = detail ? `${kind}: ${detail}` : kind;
}

async function refreshHealth() {
  const health = await fetch("/v1/health").then((r) => (r.ok ? r.json() : null)).catch(() => null);
  // No answer: the stream's own state says the server is away.
  serverTrouble = health && health.status !== "ok" ? (health.reasons || []).join("; ") || health.status : "";
  showStatus();
  // Before the first liquidation, what the source is doing (a simulator's warm-up and how
  // far): the plain "Waiting for liquidations…" looked the same as a broken server.
  sourceWaiting = (health && health.source_status && health.source_status.message) || "";
  feed.waiting(sourceWaiting);
  return health;
}

function setStatus(kind, detail) {
  streamState = { kind, detail };
  showStatus();
  // Back after a drop (a server restart): the panels' last refresh likely failed; refresh
  // them now rather than on their next tick, up to a minute later.
  if (kind === "reconnecting") streamDropped = true;
  if (kind === "live" && streamDropped) {
    streamDropped = false;
    refreshHealth();
    refreshPanels();
  }
}

function showKeyPanel(message, isError) {
  const note = $("key-message");
  note.textContent = message;
  note.classList.toggle("error", Boolean(isError));
  $("key-panel").hidden = false;
  $("key-input").focus();
}

function keyRejected(message) {
  keyMissing = true;
  stream.stop();
  setStatus("error", "API key rejected");
  showKeyPanel(`That API key was rejected: ${message}`, true);
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("key-input").value.trim();
  if (!key) return;
  saveKey(key);
  $("key-input").value = "";
  start();
});

$("register-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const note = $("register-message");
  try {
    const created = await createKey($("register-account").value.trim());
    saveKey(created.key);
    note.textContent = `Your new key (saved in this browser; copy it now, it is shown once): ${created.key}`;
    note.classList.remove("error");
    start();
    // start() closes the panel; it stays open here so the key can be copied (the button
    // "API key" closes it).
    $("key-panel").hidden = false;
  } catch (error) {
    note.textContent = `Could not create a key: ${error.message}`;
    note.classList.add("error");
  }
});

$("change-key").addEventListener("click", () => {
  const panel = $("key-panel");
  if (panel.hidden) showKeyPanel("Enter another API key (it replaces the one in this browser).");
  else panel.hidden = true;
});

$("origin").textContent = location.origin;

// -- filters ---------------------------------------------------------------------------------

async function initFilters() {
  const exchange = $("f-exchange");
  // The list is the server's (its venue registry); without it only "all" can be chosen.
  const exchanges = await loadExchanges().catch(() => []);
  exchangeList = exchanges;
  for (const { id, name } of exchanges) {
    const option = document.createElement("option");
    option.value = id;
    option.textContent = id;
    option.title = name;
    exchange.append(option);
  }
  // A link's value no control offers is shown as it was written (the server refuses it, and
  // the feed says why), not replaced by "all", which followed an unfiltered feed silently.
  offer(exchange, state.exchange);
  offer($("f-side"), state.side);
  const min = $("f-min");
  if (![...min.options].some((o) => minUsdOf(o.value) === state.minUsd)) {
    const option = document.createElement("option");
    option.value = String(state.minUsd);
    option.textContent = typeof state.minUsd === "number" ? usd(state.minUsd) : state.minUsd;
    min.append(option);
  }
  min.value = String(state.minUsd);
  $("f-market").value = state.market;
  exchange.value = state.exchange;
  $("f-side").value = state.side;
  $("heatmap-market").value = state.heatmap;
}

/** Give `select` an option for `value` when it has none. */
function offer(select, value) {
  if ([...select.options].some((o) => o.value === value)) return;
  const option = document.createElement("option");
  option.value = value;
  option.textContent = value;
  select.append(option);
}

let filterTimer = 0;
function filtersChanged() {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    const next = {
      minUsd: minUsdOf($("f-min").value),
      market: $("f-market").value.trim().toUpperCase(),
      exchange: $("f-exchange").value,
      side: $("f-side").value,
    };
    const now = streamFilters(state);
    if (Object.keys(next).every((k) => next[k] === now[k])) return;
    Object.assign(state, next);
    $("f-market").value = state.market;
    writeState(state);
    start();
  }, 150);
}

$("filters").addEventListener("change", filtersChanged);
$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  filtersChanged();
});
$("f-clear").addEventListener("click", () => {
  $("f-min").value = "0";
  $("f-market").value = "";
  $("f-exchange").value = "";
  $("f-side").value = "";
  filtersChanged();
});

// -- data ------------------------------------------------------------------------------------

/** Load history and active cascades for the current filters, then follow the live stream. */
async function start() {
  const key = loadKey();
  const mine = ++session;
  stream.stop();
  keyMissing = !key;
  if (!key) {
    setStatus("error", "no API key");
    showKeyPanel("Enter your API key to start the live feed.");
    return;
  }
  $("key-panel").hidden = true;
  setStatus("connecting", "");
  feed.clear();
  banner.clear();
  shownSeq = 0;
  const filters = streamFilters(state);
  let since = null;
  try {
    // Resume point first: the stream replays everything after it, the feed drops repeats.
    const health = await refreshHealth();
    since = health && Number.isInteger(health.last_seq) ? health.last_seq : null;
    const [page, cascades] = await Promise.all([
      getJson("/v1/liquidations", {
        limit: HISTORY_ROWS,
        min_usd: filters.minUsd || "",
        market: filters.market,
        exchange: filters.exchange,
        side: filters.side,
      }),
      getJson("/v1/cascades", { status: "active", market: filters.market }),
    ]);
    if (mine !== session) return;
    const events = page.events.slice().sort((a, b) => a.seq - b.seq);
    if (events.length) {
      shownSeq = events[events.length - 1].seq;
      feed.push(...events);
    }
    for (const alert of cascades.cascades.slice().reverse()) banner.show(alert);
  } catch (error) {
    if (mine !== session) return;
    if (error instanceof ApiError && error.authProblem) {
      keyRejected(error.message);
      return;
    }
    // History is a nicety; the live feed can still work.
    setStatus("error", `could not load history: ${error.message}`);
  }
  if (mine !== session) return;
  streamDropped = false;
  stream.start(key, filters, since);
  refreshPanels();
}

function refreshPanels() {
  refreshMarkets();
  refreshTop();
  refreshHeatmap();
  refreshCoverage();
}

function reportAuth(error) {
  if (error instanceof ApiError && error.authProblem) keyRejected(error.message);
}

async function refreshMarkets() {
  try {
    const answer = await getJson("/v1/markets");
    const options = answer.markets.map((m) => {
      const option = document.createElement("option");
      option.value = String(m.market);
      return option;
    });
    $("market-list").replaceChildren(...options);
    const measured = new Set(answer.measured_heatmaps || []);
    const news = measured.has(state.heatmap) && !measuredMarkets.has(state.heatmap);
    measuredMarkets = measured;
    if (news) refreshHeatmap();
  } catch (error) {
    reportAuth(error);
  }
}

async function refreshHeatmap() {
  const market = state.heatmap;
  const box = $("heatmap");
  if (!market) {
    showMessage(box, "Choose a market to see where its liquidations are buried.");
    return;
  }
  try {
    const map = await getJson(`/v1/heatmap/${encodeURIComponent(market)}`);
    if (market === state.heatmap) drawHeatmap(box, map);
    refreshMeasured(market, map);
  } catch (error) {
    if (market !== state.heatmap) return;
    hideMeasured();
    if (error instanceof ApiError && error.status === 404) {
      showMessage(box, `No heatmap for ${market} yet.`, ` (server: ${error.message})`);
    } else if (error instanceof ApiError && error.authProblem) {
      reportAuth(error);
    } else {
      showMessage(box, `Heatmap of ${market} unavailable.`, ` (${error.message})`);
    }
  }
}

// The measured map (sampled accounts' own liquidation prices) beside the estimate, over the
// estimate's buckets so rows line up; hidden where the server measures none for the market.
async function refreshMeasured(market, estimate) {
  const prices = estimate.prices || [];
  if (!prices.length || !measuredMarkets.has(market)) return hideMeasured();
  const bucket = estimate.bucket_size;
  try {
    const map = await getJson(`/v1/heatmap/${encodeURIComponent(market)}`, {
      source: "measured",
      low: prices[0],
      high: prices[prices.length - 1] + bucket,
      bucket,
    });
    if (market !== state.heatmap) return;
    const box = $("heatmap-measured");
    box.hidden = false;
    drawHeatmap(box, map);
  } catch (error) {
    if (market !== state.heatmap) return;
    if (error instanceof ApiError && error.authProblem) reportAuth(error);
    hideMeasured();
  }
}

function hideMeasured() {
  const box = $("heatmap-measured");
  box.hidden = true;
  box.replaceChildren();
}

let topAsked = 0; // bumps on each question: only the latest answer is drawn

async function refreshTop() {
  const mine = ++topAsked;
  try {
    if (await loadTop($("top-markets"), state.top, pickHeatmap, topDetail, () => mine === topAsked)) topFresh.fresh();
  } catch (error) {
    if (mine === topAsked) topFresh.failed(error);
    reportAuth(error);
  }
}

async function refreshCoverage() {
  try {
    await loadCoverage($("coverage"), exchangeList, coverageDetail);
    coverageFresh.fresh();
  } catch (error) {
    coverageFresh.failed(error);
    reportAuth(error);
  }
}

function pickHeatmap(market) {
  state.heatmap = market;
  $("heatmap-market").value = market;
  writeState(state);
  refreshHeatmap();
}

$("heatmap-form").addEventListener("submit", (event) => {
  event.preventDefault();
  pickHeatmap($("heatmap-market").value.trim().toUpperCase());
});

for (const button of document.querySelectorAll(".toggle button")) {
  button.addEventListener("click", () => {
    state.top = button.dataset.range;
    for (const other of document.querySelectorAll(".toggle button")) {
      other.classList.toggle("on", other === button);
    }
    writeState(state);
    refreshTop();
  });
}

// -- clocks ----------------------------------------------------------------------------------

// The zone of every time shown (the feed's, the banners' "since", coverage hours); read again
// each second so a daylight-saving change shows without a reload.
function showZone() {
  const text = `times ${zone()}`;
  if ($("feed-zone").textContent !== text) $("feed-zone").textContent = text;
}
showZone();

// The local date the feed's times were chosen on: past midnight, its rows' bare times are
// yesterday's and are given their date.
let feedDay = new Date().toDateString();

setInterval(() => {
  $("rate").textContent = `${received} liq/s`; // says its unit: a phone has no hover for the title
  received = 0;
  showZone();
  const today = new Date().toDateString();
  if (today !== feedDay) {
    feedDay = today;
    feed.restamp();
  }
  // While the server says why nothing has come yet, its progress is read each second.
  if (sourceWaiting && feed.empty && !keyMissing) refreshHealth();
}, 1000);
setInterval(() => !keyMissing && refreshHeatmap(), HEATMAP_REFRESH_MS);
setInterval(() => !keyMissing && refreshTop(), TOP_REFRESH_MS);
setInterval(() => !keyMissing && refreshMarkets(), TOP_REFRESH_MS);
setInterval(() => !keyMissing && refreshCoverage(), COVERAGE_REFRESH_MS);
setInterval(() => !keyMissing && refreshHealth(), HEALTH_REFRESH_MS);

await initFilters();
for (const button of document.querySelectorAll(".toggle button")) {
  button.classList.toggle("on", button.dataset.range === state.top);
}
start();
