"""One bad topic in a batched subscribe costs that topic only, not its whole batch.

Bybit refuses a whole subscribe message over one bad topic and names it; Kraken Futures
answers a bad product id with an error that names none (ingest/resubscribe.py). The pure
core is checked on its own, then every batching venue against its fake exchange refusing a
batch that holds one bad topic: every good topic must still deliver its events.
"""

from __future__ import annotations

import json

import pytest

from purpleflea.ingest import feeds
from purpleflea.ingest.resubscribe import MAX_RESUBSCRIBES, Resubscriber
from purpleflea.venues._connection import compact_json
from purpleflea.venues.bybit import connection as bybit
from purpleflea.venues.dydx import connection as dydx
from purpleflea.venues.kraken import connection as kraken
from purpleflea.venues.venue import Batching, Reply
from tests.fakes.exchanges import Dydx, FakeExchange, Faults, dialect_for
from tests.fakes.harness import Feeds, catalogs_for_tests, expected_events, fast, recorded_frames


def _args(message: str) -> list[str]:
    return list(json.loads(message)["args"])


def _ack(message: str, refused_topic: str | None = None) -> str:
    """Bybit's answer to ``message``: success, or a refusal naming ``refused_topic``."""
    tag = json.loads(message)["req_id"]
    if refused_topic is None:
        return compact_json({"success": True, "ret_msg": "", "req_id": tag, "op": "subscribe"})
    text = f"error:handler not found,topic:{refused_topic}"
    return compact_json({"success": False, "ret_msg": text, "req_id": tag, "op": "subscribe"})


def test_a_refusal_naming_its_topic_subscribes_the_rest_of_the_batch_again() -> None:
    topics = [f"allLiquidation.C{i}USDT" for i in range(450)]
    resubscriber = Resubscriber(bybit.BATCHING)
    sent = resubscriber.start(bybit.subscribe([t.split(".")[1] for t in topics]))
    assert [len(_args(m)) for m in sent] == [200, 200, 50]
    assert resubscriber.answer(_ack(sent[0])) is None  # the first batch took
    step = resubscriber.answer(_ack(sent[1], "allLiquidation.C250USDT"))
    assert step is not None
    assert step.given_up == ("allLiquidation.C250USDT",)
    (again,) = step.send
    assert _args(again) == [t for t in topics[200:400] if t != "allLiquidation.C250USDT"]
    assert resubscriber.answer(_ack(again)) is None
    assert resubscriber.answer(_ack(sent[2])) is None
    # An answer to nothing pending (repeated, or another client's id) changes nothing.
    assert resubscriber.answer(_ack(sent[1], "allLiquidation.C1USDT")) is None


def test_bybit_s_invalid_symbol_refusals_cost_one_message_each() -> None:
    # Bybit names a symbol it does not list in brackets: "Invalid symbol :[orderbook.50.X]",
    # as public Bybit clients receive it. Before, only "topic:" was read, so each such
    # refusal halved its batch: about 16 messages a bad symbol, and with six delisted
    # symbols still in the catalog the session's bound of 64 ran out and good topics were
    # given up with them.
    topics = [f"allLiquidation.C{i}USDT" for i in range(450)]
    bad = {topics[i] for i in (3, 77, 150, 260, 333, 420)}
    resubscriber = Resubscriber(bybit.BATCHING)
    pending = list(resubscriber.start(bybit.subscribe([t.split(".")[1] for t in topics])))
    first = len(pending)
    given_up: list[str] = []
    sent = 0
    while pending:
        message = pending.pop(0)
        sent += 1
        tag, args = json.loads(message).get("req_id", ""), _args(message)
        named = [t for t in args if t in bad]
        if named:
            text = f"Invalid symbol :[{named[0]}]"
            answer = {"success": False, "ret_msg": text, "req_id": tag, "op": "subscribe"}
        else:
            answer = {"success": True, "ret_msg": "", "req_id": tag, "op": "subscribe"}
        step = resubscriber.answer(compact_json(answer))
        if step is not None:
            given_up += step.given_up
            pending += step.send
    assert sorted(given_up) == sorted(bad)
    assert sent - first == len(bad)


def test_a_topic_refused_as_already_subscribed_is_not_given_up() -> None:
    resubscriber = Resubscriber(bybit.BATCHING)
    (sent,) = resubscriber.start(bybit.subscribe(["BTCUSDT", "ETHUSDT"]))
    tag = json.loads(sent)["req_id"]
    text = "error:already subscribed,topic:allLiquidation.BTCUSDT"
    answer = {"success": False, "ret_msg": text, "req_id": tag, "op": "subscribe"}
    step = resubscriber.answer(compact_json(answer))
    assert step is not None
    assert step.given_up == ()
    assert [_args(m) for m in step.send] == [["allLiquidation.ETHUSDT"]]


def _halving_venue(bad: set[str]) -> tuple[Batching, list[list[str]]]:
    """A venue that names no topic and echoes no id (Kraken's shape), refusing any message
    holding one of ``bad``; records every message sent."""
    sent: list[list[str]] = []

    def message(topics: tuple[str, ...], tag: str) -> str:
        del tag
        sent.append(list(topics))
        return compact_json({"t": list(topics)})

    def topics(text: str) -> tuple[str, ...] | None:
        return tuple(json.loads(text)["t"])

    def reply(frame: bytes | str) -> Reply | None:
        return Reply(refused=json.loads(frame)["refused"])

    return Batching(topics=topics, message=message, reply=reply), sent


def _run(resubscriber: Resubscriber, sent: list[list[str]], bad: set[str]) -> list[str]:
    """Answer every message in order until none is pending; the topics given up."""
    given_up: list[str] = []
    answered = 0
    while answered < len(sent):
        refused = bool(bad.intersection(sent[answered]))
        answered += 1
        step = resubscriber.answer(compact_json({"refused": refused}))
        if step is not None:
            given_up += step.given_up
    return given_up


def test_a_refusal_naming_nothing_halves_the_batch_until_the_bad_topic_is_alone() -> None:
    topics = [f"P{i:03d}" for i in range(300)]
    batching, sent = _halving_venue({"P123"})
    resubscriber = Resubscriber(batching)
    resubscriber.start([compact_json({"t": topics})])
    assert _run(resubscriber, sent, {"P123"}) == ["P123"]
    accepted = {t for message in sent if "P123" not in message for t in message}
    assert accepted == set(topics) - {"P123"}
    # Two messages a halving: about 2 log2(300) = 18 sent again, not 300.
    assert len(sent) - 1 <= 2 * 9


def test_a_venue_refusing_everything_ends_within_the_bound() -> None:
    topics = [f"P{i:03d}" for i in range(300)]
    batching, sent = _halving_venue(set(topics))
    resubscriber = Resubscriber(batching)
    resubscriber.start([compact_json({"t": topics})])
    given_up = _run(resubscriber, sent, set(topics))
    assert len(sent) - 1 == MAX_RESUBSCRIBES
    assert sorted(given_up) == topics  # each given up once, none left pending
    assert resubscriber.left == 0


def test_bybit_answers_are_read_as_acks_and_refusals() -> None:
    # The refusal's text as a raw probe of v5/public/linear recorded it (ccxt issue 30284).
    refused = (
        '{"success":false,"ret_msg":"error:already subscribed,topic:publicTrade.BTCUSDT",'
        '"conn_id":"c","req_id":"2","op":"subscribe"}'
    )
    assert bybit.reply(refused) == Reply(True, "2", "publicTrade.BTCUSDT", live=True)
    # A symbol Bybit does not list, named in brackets.
    invalid = (
        '{"success":false,"ret_msg":"Invalid symbol :[allLiquidation.NOPEUSDT]",'
        '"conn_id":"c","req_id":"3","op":"subscribe"}'
    )
    assert bybit.reply(invalid) == Reply(True, "3", "allLiquidation.NOPEUSDT")
    # A refusal naming no topic (spot's "args size >10"), and one without an echoed id.
    unnamed = '{"success":false,"ret_msg":"args size >10","conn_id":"c","op":"subscribe"}'
    assert bybit.reply(unnamed) == Reply(refused=True)
    ack = '{"success":true,"ret_msg":"","conn_id":"c","req_id":"7","op":"subscribe"}'
    assert bybit.reply(ack) == Reply(False, "7")
    assert bybit.reply('{"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}') is None
    assert bybit.reply(recorded_frames()["bybit_linear"][0]) is None


def test_kraken_answers_are_read_as_acks_and_refusals() -> None:
    ack = '{"event":"subscribed","feed":"trade","product_ids":["PF_XBTUSD","PF_ETHUSD"]}'
    assert kraken.reply(ack) == Reply(refused=False, topic="PF_XBTUSD")
    assert kraken.reply('{"event":"error","message":"Invalid product id"}') == Reply(True)
    failed = '{"event":"subscribed_failed","feed":"trade","product_ids":["PF_NOPEUSD"]}'
    assert kraken.reply(failed) == Reply(refused=True, topic="PF_NOPEUSD")
    # The shape a public Go client's tests give Kraken's refusal: no product_ids at all.
    bare = '{"event":"subscribed_failed","feed":"trade","message":"Invalid product id"}'
    assert kraken.reply(bare) == Reply(refused=True)
    assert kraken.reply('{"event":"subscribed","feed":"heartbeat"}') is None
    assert kraken.reply('{"feed":"heartbeat","time":1}') is None


BAD_CASES = ["bybit_linear", "kraken_futures", "dydx_v4"]


def _movable(frame: str | bytes) -> bool:
    if not isinstance(frame, str):
        return False
    value = json.loads(frame)
    return (
        str(value.get("topic")).startswith("allLiquidation.")
        or value.get("feed") == "trade"
        or (value.get("channel") == "v4_trades" and value.get("type") == "channel_data")
    )


def _moved(frame: str, topic: str) -> str:
    """A recorded Bybit ``allLiquidation``, Kraken Futures ``trade`` or dYdX ``v4_trades``
    frame, moved to ``topic`` (``allLiquidation.SYMBOL``, a product id, a market); its ids
    change with it."""
    value = json.loads(frame)
    if "topic" in value:
        value["topic"] = topic
        for row in value["data"]:
            row["s"] = topic.split(".", 1)[1]
    elif value.get("channel") == "v4_trades":
        value["id"] = topic
        for trade in value["contents"]["trades"]:
            trade["id"] = f"{trade['id']}-{topic}"
    else:
        value["product_id"] = topic
        value["uid"] = f"{value['uid']}-{topic}"
    return compact_json(value)


@pytest.mark.parametrize("name", BAD_CASES)
async def test_one_bad_topic_costs_only_itself(name: str) -> None:
    """The fake refuses the whole message holding the bad topic, as the venue does, and plays
    a frame only once its topic is subscribed: every good topic's events must arrive."""
    catalogs = catalogs_for_tests()
    (spec,) = [s for s in feeds.build_feeds(catalogs) if s.name == name]
    assert spec.batching is not None
    subscribed = [t for m in spec.subscribe_messages() for t in spec.batching.topics(m) or ()]
    dialect = dialect_for(name)
    # Recorded frames moved onto the first, middle and last subscribed topic (their symbol
    # rewritten), so good topics on both sides of the bad one must deliver.
    good = [subscribed[0], subscribed[len(subscribed) // 2], subscribed[-1]]
    recorded = [f for f in recorded_frames()[name] if _movable(f)]
    frames = [_moved(recorded[i % len(recorded)], topic) for i, topic in enumerate(good * 2)]
    bad = subscribed[len(subscribed) // 4]
    assert bad not in good
    faults = Faults(bad_topics=frozenset({bad}))
    async with FakeExchange(dialect, frames, faults) as fake:
        specs = feeds.build_feeds(catalogs, urls={name: fake.url})
        (spec,) = [fast(s) for s in specs if s.name == name]
        expected = expected_events(spec, frames)
        async with Feeds([spec]) as run:
            await fake.wait_drained()
            await run.wait_for(lambda: len(run.received) >= len(expected))
    stats = run.stats[name]
    assert sorted(e.id for e in run.received) == sorted(e.id for e in expected)
    assert stats.errors["refused"] >= 1
    assert stats.given_up == [bad]
    assert stats.errors["given_up"] == 1
    assert fake.connections == 1  # recovered on the same connection, no reconnect
    assert set(fake.sessions[0].topics) >= set(subscribed) - {bad}
    assert bad not in fake.sessions[0].topics


def test_a_given_up_topic_is_asked_again_on_a_doubling_timer_until_accepted() -> None:
    resubscriber = Resubscriber(bybit.BATCHING, retry_first=60.0, retry_cap=300.0)
    (sent,) = resubscriber.start(bybit.subscribe(["BTCUSDT", "NEWUSDT", "ETHUSDT"]))
    assert resubscriber.next_retry() is None
    step = resubscriber.answer(_ack(sent, "allLiquidation.NEWUSDT"), now=10.0)
    assert step is not None
    assert step.given_up == ("allLiquidation.NEWUSDT",)
    (rest,) = step.send
    # The good topics, once accepted, are never asked for again.
    assert resubscriber.answer(_ack(rest), now=10.5) is None
    waits = []
    now = 10.0
    for _ in range(4):
        due = resubscriber.next_retry()
        assert due is not None
        waits.append(due - now)
        assert resubscriber.retry(due - 0.001) == ((), ())  # not before its time
        topics, (again,) = resubscriber.retry(due)
        assert topics == ("allLiquidation.NEWUSDT",) == tuple(_args(again))
        assert resubscriber.next_retry() is None  # out for retry: nothing else is due
        now = due + 0.5
        step = resubscriber.answer(_ack(again, "allLiquidation.NEWUSDT"), now=now)
        assert step is not None
        assert step.given_up == topics
        assert step.send == ()
    assert waits == [60.0, 120.0, 240.0, 300.0]  # doubling, capped
    due = resubscriber.next_retry()
    assert due is not None
    _, (again,) = resubscriber.retry(due)
    step = resubscriber.answer(_ack(again), now=due + 0.5)
    assert step is not None
    assert step.accepted == ("allLiquidation.NEWUSDT",)
    assert step.send == step.given_up == ()
    assert resubscriber.next_retry() is None
    assert resubscriber.left == MAX_RESUBSCRIBES - 1  # retries spend none of the bound


def test_retries_go_in_messages_no_larger_than_the_batches_started() -> None:
    batching, _ = _halving_venue(set())
    resubscriber = Resubscriber(batching, retry_first=1.0)
    resubscriber.start([compact_json({"t": ["A", "B"]}), compact_json({"t": ["C", "D"]})])
    # Every message refused, halves too, until each topic is alone and given up.
    while resubscriber.answer(compact_json({"refused": True}), now=0.0) is not None:
        pass
    topics, messages = resubscriber.retry(1.0)
    assert sorted(topics) == ["A", "B", "C", "D"]
    assert [len(json.loads(m)["t"]) for m in messages] == [2, 2]


@pytest.mark.parametrize("name", BAD_CASES)
async def test_a_topic_refused_at_first_is_asked_again_and_delivers(name: str) -> None:
    """A symbol not live when we connected goes live later in the session: the fake refuses
    the bad topic until the runner gave it up, then takes it; the retry (scaled down from
    60 s) must subscribe it on the same connection and its events arrive."""
    catalogs = catalogs_for_tests()
    (spec,) = [s for s in feeds.build_feeds(catalogs) if s.name == name]
    assert spec.batching is not None
    subscribed = [t for m in spec.subscribe_messages() for t in spec.batching.topics(m) or ()]
    good, bad = subscribed[0], subscribed[len(subscribed) // 4]
    recorded = [f for f in recorded_frames()[name] if _movable(f)]
    # The good topic's frames first: the fake plays in order, the bad one's wait for it.
    frames = [_moved(recorded[i % len(recorded)], t) for i, t in enumerate([good, bad, bad])]
    faults = Faults(bad_topics=frozenset({bad}))
    async with FakeExchange(dialect_for(name), frames, faults) as fake:
        specs = feeds.build_feeds(catalogs, urls={name: fake.url})
        (spec,) = [fast(s, retry_after=0.2, retry_cap=0.4) for s in specs if s.name == name]
        expected = expected_events(spec, frames)
        async with Feeds([spec]) as run:
            stats = run.stats[name]
            await run.wait_for(lambda: stats.given_up == [bad] and len(run.received) >= 1)
            assert stats.errors["resubscribed"] == 0
            faults.bad_refusals = fake.bad_refused  # the symbol goes live
            await fake.wait_drained()
            await run.wait_for(lambda: len(run.received) >= len(expected))
            await run.wait_for(lambda: stats.given_up == [])
    assert sorted(e.id for e in run.received) == sorted(e.id for e in expected)
    assert stats.errors["resubscribed"] == 1
    assert stats.errors["given_up"] == 1
    assert fake.connections == 1  # the same connection, no reconnect
    assert fake.sessions[0].topics.count(bad) == 1
    assert fake.sessions[0].topics.count(good) == 1  # a topic that delivers is asked once


def test_a_retried_topic_found_already_subscribed_is_accepted() -> None:
    resubscriber = Resubscriber(bybit.BATCHING, retry_first=5.0)
    (sent,) = resubscriber.start(bybit.subscribe(["NEWUSDT"]))
    step = resubscriber.answer(_ack(sent, "allLiquidation.NEWUSDT"), now=0.0)
    assert step is not None
    assert step.given_up == ("allLiquidation.NEWUSDT",)
    _, (again,) = resubscriber.retry(5.0)
    tag = json.loads(again)["req_id"]
    text = "error:already subscribed,topic:allLiquidation.NEWUSDT"
    answer = {"success": False, "ret_msg": text, "req_id": tag, "op": "subscribe"}
    step = resubscriber.answer(compact_json(answer), now=6.0)
    assert step is not None
    assert step.accepted == ("allLiquidation.NEWUSDT",)
    assert step.given_up == step.send == ()
    assert resubscriber.next_retry() is None


@pytest.mark.parametrize("names_failed", [True, False])
async def test_a_dydx_market_whose_subscribe_failed_is_asked_again_and_delivers(
    names_failed: bool,
) -> None:
    """The indexer answers a subscribe whose fetch of the market's recent trades failed with
    an error and leaves the market unsubscribed (socks subscription.ts): a market that exists
    stayed dark until the next reconnect. Asked again (the timer scaled down from 60 s), its
    liquidations arrive on the same connection, whether the error names the market or not
    (the one left unanswered)."""
    catalogs = catalogs_for_tests()
    name = "dydx_v4"
    (spec,) = [s for s in feeds.build_feeds(catalogs) if s.name == name]
    markets = [json.loads(m).get("id") for m in spec.subscribe_messages()][1:]
    good, failed = markets[0], markets[len(markets) // 2]
    recorded = [f for f in recorded_frames()[name] if _movable(f)]
    frames = [_moved(recorded[0], good), _moved(recorded[0], failed)]
    faults = Faults(bad_topics=frozenset({failed}), bad_refusals=1)  # fails once
    async with FakeExchange(Dydx(names_failed), frames, faults) as fake:
        specs = feeds.build_feeds(catalogs, urls={name: fake.url})
        (spec,) = [fast(s, retry_after=0.2, retry_cap=0.4) for s in specs if s.name == name]
        expected = expected_events(spec, frames)
        async with Feeds([spec]) as run:
            try:
                await fake.wait_drained(timeout=3)
                await run.wait_for(lambda: len(run.received) >= len(expected), timeout=3)
            except TimeoutError:
                pass  # the assertions say what is missing
    assert fake.bad_refused == 1
    assert sorted(e.id for e in run.received) == sorted(e.id for e in expected)
    assert fake.connections == 1
    assert fake.sessions[0].topics.count(failed) == 1


def test_dydx_answers_are_read_for_the_market_they_name() -> None:
    subscribed = (
        '{"type":"subscribed","connection_id":"c","message_id":3,"channel":"v4_trades",'
        '"id":"ETH-USD","contents":{"trades":[]}}'
    )
    assert dydx.reply(subscribed) == Reply(refused=False, topic="ETH-USD")
    # A failed initial fetch, as newer indexers send it (channel and id named).
    failed = (
        '{"type":"error","message":"Internal error, could not fetch data for subscription: '
        'v4_trades.","connection_id":"c","message_id":4,"channel":"v4_trades","id":"SOL-USD"}'
    )
    assert dydx.reply(failed) == Reply(refused=True, topic="SOL-USD")
    unknown = (
        '{"type":"error","message":"Invalid subscription id for channel: (v4_trades-XYZ-USD)",'
        '"connection_id":"c","message_id":1}'
    )
    assert dydx.reply(unknown) == Reply(refused=True, topic="XYZ-USD")
    again = (
        '{"type":"error","message":"Invalid subscribe message: already subscribed '
        '(v4_trades-BTC-USD)","connection_id":"c","message_id":5,"channel":"v4_trades",'
        '"id":"BTC-USD"}'
    )
    assert dydx.reply(again) == Reply(refused=True, topic="BTC-USD", live=True)
    # Older indexers' failed fetch names no market (their helpers/message.ts error carries
    # only the text): a refusal of the one market left once the others are answered
    # (test_dydx_failed_fetch_naming_no_market_is_the_market_left_unanswered).
    unnamed = failed.replace(',"channel":"v4_trades","id":"SOL-USD"', "")
    assert dydx.reply(unnamed) == Reply(refused=True)
    # The per-connection limit names no market and is counted as a refusal only (asking again
    # there gets a connection dropped).
    limit = (
        '{"type":"error","message":"Per-connection subscription limit reached for v4_trades '
        '(limit=32).","connection_id":"c","message_id":6}'
    )
    assert dydx.reply(limit) is None
    block = (
        '{"type":"subscribed","connection_id":"c","message_id":1,"channel":"v4_block_height",'
        '"id":"v4_block_height","contents":{"height":"1"}}'
    )
    assert dydx.reply(block) is None
    trades = [f for f in recorded_frames()["dydx_v4"] if _movable(f)]
    assert trades
    assert all(dydx.reply(frame) is None for frame in trades)


def _dydx_answer(market: str | None) -> str:
    """The indexer's ``subscribed`` for ``market``, or (None) its failed fetch as the
    indexers whose error names no market send it (v4-chain socks subscription.ts)."""
    if market is None:
        text = "Internal error, could not fetch data for subscription: v4_trades."
        return compact_json({"type": "error", "message": text, "connection_id": "c"})
    answer = {"type": "subscribed", "channel": "v4_trades", "id": market, "contents": {}}
    return compact_json({**answer, "connection_id": "c"})


def test_dydx_failed_fetch_naming_no_market_is_the_market_left_unanswered() -> None:
    # The indexer answers each market when its fetch completes, in no set order, and a failed
    # fetch names no market. Before, such a refusal was only counted: the market stayed
    # unsubscribed on that connection, never asked again, until a reconnect.
    resubscriber = Resubscriber(dydx.BATCHING, retry_first=60.0)
    markets = ["BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD"]
    sent = resubscriber.start(dydx.subscribe(markets))
    assert len(sent) == 5  # the block height, then one message a market
    assert resubscriber.answer(_dydx_answer("ETH-USD"), now=1.0) is None
    assert resubscriber.answer(_dydx_answer(None), now=1.0) is None  # which one: not yet known
    assert resubscriber.answer(_dydx_answer("DOGE-USD"), now=1.0) is None
    step = resubscriber.answer(_dydx_answer("SOL-USD"), now=2.0)
    assert step is not None
    assert step.given_up == ("BTC-USD",)
    assert step.send == ()
    # The market left is asked for again on the retry timer, and accepted this time.
    assert resubscriber.next_retry() == 62.0
    due, again = resubscriber.retry(now=62.0)
    assert due == ("BTC-USD",)
    assert [json.loads(m)["id"] for m in again] == ["BTC-USD"]
    step = resubscriber.answer(_dydx_answer("BTC-USD"), now=63.0)
    assert step is not None
    assert step.accepted == ("BTC-USD",)


def test_dydx_failed_fetches_of_several_markets_are_placed_once_the_rest_answered() -> None:
    resubscriber = Resubscriber(dydx.BATCHING)
    resubscriber.start(dydx.subscribe(["BTC-USD", "ETH-USD", "SOL-USD"]))
    assert resubscriber.answer(_dydx_answer(None)) is None
    assert resubscriber.answer(_dydx_answer(None)) is None
    step = resubscriber.answer(_dydx_answer("ETH-USD"))
    assert step is not None
    assert sorted(step.given_up) == ["BTC-USD", "SOL-USD"]


def test_dydx_subscribes_and_retries_one_market_a_message() -> None:
    resubscriber = Resubscriber(dydx.BATCHING, retry_first=1.0)
    sent = resubscriber.start(dydx.subscribe(["BTC-USD", "ETH-USD"]))
    assert sent == list(dydx.subscribe(["BTC-USD", "ETH-USD"]))
    # Answers come in the order the indexer's fetches end: ETH's first.
    failed = (
        '{"type":"error","message":"Internal error, could not fetch data for subscription: '
        'v4_trades.","connection_id":"c","message_id":4,"channel":"v4_trades","id":"ETH-USD"}'
    )
    step = resubscriber.answer(failed, now=0.0)
    assert step is not None
    assert step.given_up == ("ETH-USD",)
    assert step.send == ()
    topics, (message,) = resubscriber.retry(1.0)
    assert topics == ("ETH-USD",)
    assert json.loads(message) == {"type": "subscribe", "channel": "v4_trades", "id": "ETH-USD"}


def test_an_answer_naming_a_topic_not_waited_for_is_no_other_batch_s() -> None:
    # dYdX answers markets in no set order: an error naming a market nothing waits for (asked
    # on another connection, or answered already) must not be taken for the oldest batch's.
    resubscriber = Resubscriber(dydx.BATCHING)
    resubscriber.start(dydx.subscribe(["BTC-USD", "ETH-USD"]))
    stray = (
        '{"type":"error","message":"Invalid subscription id for channel: (v4_trades-SOL-USD)",'
        '"connection_id":"c","message_id":1}'
    )
    assert resubscriber.answer(stray) is None
    failed = stray.replace("SOL-USD", "ETH-USD")
    step = resubscriber.answer(failed)
    assert step is not None
    assert step.given_up == ("ETH-USD",)
