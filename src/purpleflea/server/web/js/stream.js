// The live WebSocket: subscribe with filters, resume from the last seq after any drop,
// reconnect with exponential backoff and jitter, and report the connection's state.

const AUTH_ERRORS = new Set(["missing_api_key", "invalid_api_key", "key_revoked"]);
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15_000;
// The server sends a heartbeat every 10 s by default; three missed ones mean a dead link
// that the browser has not noticed (e.g. a laptop waking from sleep).
const SILENCE_MS = 35_000;

/**
 * One logical stream that survives reconnects.
 *
 * handlers: onLiquidation(event), onCascade(alert), onStatus(state, detail) with state one of
 * "connecting" | "live" | "reconnecting" | "error", onAuthError(message) when the server
 * rejects the key (no reconnect: a new key is needed), and onRefused(message) when it refuses
 * the filters (no reconnect: they must change).
 */
export class LiveStream {
  constructor(handlers) {
    this.handlers = handlers;
    this.socket = null;
    this.generation = 0;
    this.lastSeq = null;
    this.attempt = 0;
    this.timer = null;
    this.watchdog = null;
    this.key = "";
    this.filters = {};
  }

  /** (Re)start with a key and filters; resume after `sinceSeq` when given. */
  start(key, filters, sinceSeq = null) {
    this.stop();
    this.key = key;
    this.filters = filters;
    this.lastSeq = sinceSeq;
    this.attempt = 0;
    this.connect();
  }

  stop() {
    this.generation += 1;
    clearTimeout(this.timer);
    clearTimeout(this.watchdog);
    if (this.socket) {
      this.socket.close(1000, "client restart");
      this.socket = null;
    }
  }

  connect() {
    const generation = this.generation;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/v1/stream?api_key=${encodeURIComponent(this.key)}`;
    this.handlers.onStatus(this.attempt === 0 ? "connecting" : "reconnecting", "");
    const socket = new WebSocket(url);
    this.socket = socket;
    let serverError = null;

    socket.onopen = () => {
      if (generation !== this.generation) return;
      socket.send(JSON.stringify(this.subscription()));
      this.feedWatchdog(socket);
    };
    socket.onmessage = (message) => {
      if (generation !== this.generation) return;
      this.feedWatchdog(socket);
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return; // not ours to crash on
      }
      if (frame.type === "error") serverError = frame;
      this.handle(frame);
    };
    socket.onclose = (event) => {
      if (generation !== this.generation) return;
      clearTimeout(this.watchdog);
      this.socket = null;
      if (serverError && AUTH_ERRORS.has(serverError.code)) {
        this.handlers.onStatus("error", serverError.message);
        this.handlers.onAuthError(serverError.message, serverError.code);
        return;
      }
      if (serverError && serverError.code === "resume_ahead") {
        // The server's store started anew: it never had the seqs after ours, and the same
        // filters are fine without since_seq. Follow its live feed, saying why.
        this.lastSeq = null;
        this.scheduleReconnect(`${serverError.message}; following the live feed`);
        return;
      }
      if (serverError && serverError.code === "bad_subscription") {
        // The same filters would be refused again: wait for the user to change them.
        this.handlers.onStatus("error", serverError.message);
        this.handlers.onRefused?.(serverError.message);
        return;
      }
      this.scheduleReconnect(serverError ? serverError.message : `connection closed (${event.code})`);
    };
  }

  subscription() {
    const wanted = { op: "subscribe", channels: ["liquidations", "cascades"] };
    const { minUsd, market, exchange, side } = this.filters;
    if (minUsd !== 0) wanted.min_usd = minUsd; // a link's text too, for the server to refuse
    if (market) wanted.markets = [market];
    if (exchange) wanted.exchanges = [exchange];
    if (side) wanted.sides = [side];
    if (this.lastSeq !== null) wanted.since_seq = this.lastSeq;
    return wanted;
  }

  handle(frame) {
    switch (frame.type) {
      case "subscribed":
        this.attempt = 0;
        // Without a resume point, the live feed starts after this seq: resume from there.
        if (this.lastSeq === null) this.lastSeq = frame.seq;
        this.handlers.onStatus("live", "");
        break;
      case "liquidation":
        this.seen(frame.data.seq);
        this.handlers.onLiquidation(frame.data);
        break;
      case "cascade":
        this.seen(frame.data.seq);
        this.handlers.onCascade(frame.data);
        break;
      case "heartbeat":
        // Every seq up to this one was sent or filtered out.
        this.seen(frame.seq);
        break;
      default:
        break;
    }
  }

  seen(seq) {
    if (Number.isInteger(seq) && (this.lastSeq === null || seq > this.lastSeq)) this.lastSeq = seq;
  }

  feedWatchdog(socket) {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => socket.close(4000, "silent"), SILENCE_MS);
  }

  scheduleReconnect(why) {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    const delay = Math.round(base * (0.5 + Math.random() / 2)); // jitter: no thundering herd
    this.attempt += 1;
    this.handlers.onStatus("reconnecting", `${why}; retrying in ${(delay / 1000).toFixed(1)} s`);
    const generation = this.generation;
    this.timer = setTimeout(() => {
      if (generation === this.generation) this.connect();
    }, delay);
  }
}
