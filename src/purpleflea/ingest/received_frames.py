"""What the connection runner does with one received frame: answer it, deliver its
events, or read it as a refusal, a closing notice or a subscribe answer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from purpleflea.ingest.connection_stats import MAX_UNSIZED_SYMBOLS, ConnectionStats
from purpleflea.ingest.dedupe import Deduper
from purpleflea.ingest.feed_spec import FeedSpec, Sink
from purpleflea.ingest.handover import Link
from purpleflea.ingest.resubscribe import Resubscriber, Step
from purpleflea.model import VenueLiquidation
from purpleflea.venues import FrameError, PartialFrame

log = logging.getLogger("purpleflea.ingest")

_T = TypeVar("_T")


def resubscribe_step(
    spec: FeedSpec,
    resubscriber: Resubscriber,
    frame: bytes | str,
    now: float,
    stats: ConnectionStats,
) -> Step | None:
    """What to send again after ``frame`` if it refuses a batch (counted and logged)."""
    step = checked(
        lambda f: resubscriber.answer(f, now), frame, spec, stats, "resubscribe_check_error"
    )
    if step is None:
        return None
    if step.send:
        log.info(
            "%s: %s refused a subscribe of %d topics; subscribing them again in %d message(s)%s",
            spec.name,
            spec.exchange,
            len(step.refused),
            len(step.send),
            f" without {', '.join(step.given_up)}" if step.given_up else "",
        )
    # A topic refused again on its retry is already listed and was logged loudly once.
    new = [topic for topic in step.given_up if topic not in stats.given_up]
    if new:
        stats.errors["given_up"] += len(new)
        stats.given_up.extend(new)
        log.warning(
            "%s: %s refused %s; not subscribed on this connection, asked again in %g s",
            spec.name,
            spec.exchange,
            ", ".join(new),
            spec.retry_after,
        )
    if len(new) < len(step.given_up):
        log.debug("%s: %s still refuses %s", spec.name, spec.exchange, ", ".join(step.given_up))
    if step.accepted:
        stats.given_up[:] = [topic for topic in stats.given_up if topic not in step.accepted]
        log.info(
            "%s: %s accepted %s on asking again",
            spec.name,
            spec.exchange,
            ", ".join(step.accepted),
        )
    return step


def checked(
    check: Callable[[bytes | str], _T],
    frame: bytes | str,
    spec: FeedSpec,
    stats: ConnectionStats,
    error: str,
) -> _T | None:
    """``check(frame)``, a venue's reading of a frame that is not data (a ping, a refusal, a
    subscribe answer), read as None when it fails: a bad frame must not end the session, and
    the normalizer judges it. A FrameError (a frame it cannot read: HTX's corrupt gzip) is
    the normalizer's to count, as malformed; any other exception is the reader's bug, counted
    as ``errors[error]``."""
    try:
        return check(frame)
    except FrameError:
        return None
    except Exception as exc:
        stats.errors[error] += 1
        log.debug("%s: %s on a frame: %r", spec.name, error.replace("_", " "), exc)
        return None


def reply_to(spec: FeedSpec, frame: bytes | str, stats: ConnectionStats) -> str | None:
    """``spec.answer``'s reply to ``frame`` (the venue's application ping); None for any
    other frame, and for one it fails on (counted as ``errors["answer_error"]``)."""
    assert spec.answer is not None
    return checked(spec.answer, frame, spec, stats, "answer_error")


def deliver(
    frame: bytes | str,
    received_at: int,
    now: float,
    spec: FeedSpec,
    sink: Sink,
    stats: ConnectionStats,
    deduper: Deduper,
) -> bool:
    """Normalize one frame and hand its new, sized events to ``sink``, counting the rest.
    ``received_at``: wall ms of the wakeup that took the frame; ``now``: its monotonic time
    (the dedupe's clock). True when the frame carried events (new or not): the venue is
    sending data, which is what the data watchdog waits for."""
    try:
        events = spec.normalize(frame)
    except PartialFrame as exc:  # some rows unreadable: count the frame, keep the others
        stats.malformed += 1
        stats.errors["malformed_rows"] += 1
        stats.last_error = str(exc)
        log.debug("%s: skipped rows: %s", spec.name, exc)
        events = exc.events
    except FrameError as exc:
        stats.malformed += 1
        stats.errors["malformed_frame"] += 1
        stats.last_error = str(exc)
        log.debug("%s: skipped frame: %s", spec.name, exc)
        return False
    except Exception as exc:  # a normalizer bug: count it loudly, keep the connection
        stats.malformed += 1
        stats.errors["normalizer_error"] += 1
        stats.last_error = f"normalizer_error: {exc!r}"
        log.exception("%s: normalizer failed on a frame: %.200r", spec.name, frame)
        return False
    if not events:
        # Acks, pongs and heartbeats give no events; so does a refusal, which is the one
        # that must not pass as calm. Asked only here: event frames never pay for it.
        _refused(spec, frame, stats)
        return False
    for event in events:
        if event.quantity is None or event.size_usd is None:
            # Never publish a guessed size: the catalog lacks this contract (yet).
            _count_unsized(spec, event, stats)
            continue
        if deduper.seen(event.id, now):
            stats.duplicates += 1
            continue
        if event.replay:
            stats.replays += 1
        stats.events += 1
        try:
            sink(event, received_at)
        except Exception as exc:  # a consumer bug must not kill the connection
            stats.errors["sink_error"] += 1
            stats.last_error = f"sink_error: {exc!r}"
            log.exception("%s: event sink failed", spec.name)
    return True


def _count_unsized(spec: FeedSpec, event: VenueLiquidation, stats: ConnectionStats) -> None:
    """Count a dropped event of unknown size under its symbol; the first of a symbol is
    logged as a warning naming it (its id need not: BitMEX's is the order id). Past
    :data:`MAX_UNSIZED_SYMBOLS` symbols a new one cannot be remembered, so only the first drop
    past the bound warns (else every drop of such a symbol would)."""
    stats.unsized += 1
    known = event.symbol in stats.unsized_symbols
    if not known and len(stats.unsized_symbols) >= MAX_UNSIZED_SYMBOLS:
        if stats.unsized - sum(stats.unsized_symbols.values()) == 1:
            log.warning(
                "%s: dropping liquidations of more than %d %s symbols of unknown size; from %s "
                "(%s) on, they are counted in unsized, not named",
                spec.name,
                MAX_UNSIZED_SYMBOLS,
                spec.exchange,
                event.symbol,
                event.market,
            )
        else:
            log.debug("%s: dropped %s, size unknown", spec.name, event.id)
        return
    stats.unsized_symbols[event.symbol] += 1
    if known:
        log.debug("%s: dropped %s, size unknown", spec.name, event.id)
        return
    log.warning(
        "%s: dropping %s liquidations of %s (%s): no size in coins and USD (its contract size"
        " is not in the instrument catalog, or it is not quoted in USD); first: %s",
        spec.name,
        spec.exchange,
        event.symbol,
        event.market,
        event.id,
    )


class RetryableRefusal(Exception):
    """The venue refused our request for now (a rate limit, its own error): the connection
    is replaced after the backoff, and the new one asks again."""


def _refused(spec: FeedSpec, frame: bytes | str, stats: ConnectionStats) -> None:
    """Count and log ``frame`` if it is the exchange refusing a request (a bad topic, a
    subscription limit): the socket stays open and quiet, so nothing else would show it.
    With ``spec.retry_refused``, a refusal worth asking again raises :class:`RetryableRefusal`
    and any other is logged as an ERROR, once per feed: reconnecting cannot fix it."""
    if spec.refusal is None:
        return
    refusal = checked(spec.refusal, frame, spec, stats, "refusal_check_error")
    if refusal is None:
        return
    stats.errors["refused"] += 1
    stats.last_error = f"refused: {refusal}"
    if spec.retry_refused is None or _closing(spec, frame, stats):
        # A refusal that is also the venue's notice that this connection is done (Binance's
        # LIST_SUBSCRIPTIONS answer without our stream) is handed over, not sorted.
        log.warning("%s: %s refused a request: %.300s", spec.name, spec.exchange, refusal)
        return
    if checked(spec.retry_refused, frame, spec, stats, "refusal_check_error"):
        raise RetryableRefusal(f"{spec.exchange} refused the subscribe for now: {refusal:.300}")
    if refusal in stats.rejected:
        log.debug("%s: %s refused again: %.300s", spec.name, spec.exchange, refusal)
        return
    stats.rejected.append(refusal)
    batched = (
        checked(spec.batching.reply, frame, spec, stats, "refusal_check_error")
        if spec.batching is not None
        else None
    )
    if batched is not None:
        # One topic of many (HTX's delivery coins): the resubscriber gives it up alone and
        # asks for it again on its timer (listed in given_up), the others stay subscribed.
        # Not a message outside the batches (HTX's contract_info liveness sub): that one is
        # not asked again.
        log.error(
            "%s: %s refused a topic of our subscribe as wrong: %.300s; it is given up on this "
            "connection and asked again after %g s, then less often",
            spec.name,
            spec.exchange,
            refusal,
            spec.retry_after,
        )
        return
    log.error(
        "%s: %s refused our subscribe as wrong, so it is not asked again: %.300s "
        "(sent: %.300s); nothing it names is received until the request is fixed",
        spec.name,
        spec.exchange,
        refusal,
        " ".join(spec.subscribe_messages()),
    )


def _closing(spec: FeedSpec, frame: bytes | str, stats: ConnectionStats) -> bool:
    """Whether ``spec.closing`` reads ``frame`` as the venue's notice of a close."""
    if spec.closing is None:
        return False
    return checked(spec.closing, frame, spec, stats, "closing_check_error") is not None


def replace_if_closing(
    spec: FeedSpec, frame: bytes | str, stats: ConnectionStats, link: Link
) -> None:
    """Ask for ``link``'s replacement if ``frame`` is the venue's notice that it will close
    this connection soon."""
    assert spec.closing is not None
    notice = checked(spec.closing, frame, spec, stats, "closing_check_error")
    if notice is not None:
        link.replace(f"{spec.exchange} will close the connection: {notice:.200}")
