// When a periodically refreshed panel last got an answer, said under it, and marked stale when
// a refresh fails: the panel keeps its last answer (better than a blank in a crash), but never
// silently, and the note says since when and why.

import { clock } from "./format.js";

export class Freshness {
  constructor(node) {
    this.node = node;
    this.at = 0; // when the shown answer came (ms); 0 before the first
  }

  /** The panel now shows the server's answer of `at` (ms since the epoch). */
  fresh(at = Date.now()) {
    this.at = at;
    this.node.textContent = `updated ${clock(at)}`;
    this.node.classList.remove("stale");
  }

  /** A refresh failed: what the panel shows (if anything) is the answer of before. */
  failed(error) {
    const why = error instanceof Error ? error.message : String(error);
    this.node.textContent = this.at
      ? `not updated since ${clock(this.at)}: ${why}`
      : `could not load: ${why}`;
    this.node.classList.add("stale");
  }
}
