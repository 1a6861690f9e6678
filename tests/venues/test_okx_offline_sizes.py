"""An offline start (only the bundled instrument snapshot) sizes OKX inverse swaps and dated
futures by OKX's documented face value (BTC 100 USD, others 10 USD), marked as such; a
contract no documented rule covers stays unsized and is counted, never guessed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from purpleflea.ingest import feeds
from purpleflea.ingest.catalog import Catalogs, load_snapshot
from purpleflea.model import Instrument, UnsizedLiquidation, to_liquidation
from purpleflea.venues import okx
from purpleflea.venues.okx.catalog import INVERSE_RULE, by_documented_rule
from tests.fakes.exchanges import FakeExchange, dialect_for
from tests.fakes.harness import Feeds, fast

FRAMES = Path(__file__).parent / "frames"
# A real FUTURES push (tardis-node's recording): the issue's XRP-USD-230929, 39 contracts.
XRP_FUTURE = (FRAMES / "okx__futures_inverse_recorded_tardis.json").read_bytes()


def _doc_frame(shared: Path, inst_id: str, inst_type: str) -> bytes:
    """OKX's documented push with another instrument in it."""
    frame = json.loads((shared / "fixtures/exchanges/okx_liquidation_orders_doc.json").read_text())
    frame["arg"]["instType"] = inst_type
    frame["data"][0].update(instId=inst_id, instType=inst_type)
    return json.dumps(frame).encode()


def test_the_bundled_snapshot_lacks_the_issue_s_future() -> None:
    # What makes this test meaningful: the listing itself does not know XRP-USD-230929.
    assert "XRP-USD-230929" not in {i.symbol for i in load_snapshot()["okx"]}


def test_an_offline_start_sizes_the_issue_s_inverse_future() -> None:
    [event] = okx.normalize(XRP_FUTURE, Catalogs().get("okx"))
    assert event.market == "XRP-20230929"
    assert event.size_usd == 390.0  # 39 contracts x 10 USD
    assert event.quantity == pytest.approx(390.0 / 0.55205)
    assert event.contracts == 39


@pytest.mark.parametrize(
    ("inst_id", "face_usd"),
    [
        ("BTC-USD-241227", 100.0),
        ("BTC-USD-SWAP", 100.0),
        ("XRP-USD-230929", 10.0),
        ("DOGE-USD-SWAP", 10.0),
        ("ETH-USD-250328", 10.0),
    ],
)
def test_the_documented_inverse_rule_is_marked(inst_id: str, face_usd: float) -> None:
    assert by_documented_rule(inst_id) == Instrument(
        exchange="okx", symbol=inst_id, kind="inverse", contract_size=face_usd, rule=INVERSE_RULE
    )


@pytest.mark.parametrize(
    "inst_id",
    [
        "BTC-USDT-230929",  # linear dated future: no documented rule
        "SOL-USDT-SWAP",  # linear swap: ctVal is set per coin
        "BTC-USDC-SWAP",
        "BTC-USD_UM-SWAP",  # USD-margined, linear
        "BTC-USD-250808-100000-C",  # an option
        "BTC-USD",  # margin
        "BTC-USD-2309",  # not a date
    ],
)
def test_no_rule_no_size(inst_id: str) -> None:
    assert by_documented_rule(inst_id) is None


def test_the_listing_wins_over_the_rule() -> None:
    listed = Instrument(exchange="okx", symbol="XRP-USD-230929", kind="inverse", contract_size=20)
    [event] = okx.normalize(XRP_FUTURE, {"XRP-USD-230929": listed})
    assert event.size_usd == 780.0


def test_a_linear_future_missing_from_the_snapshot_cannot_be_published(shared: Path) -> None:
    frame = _doc_frame(shared, "BTC-USDT-230929", "FUTURES")
    [event] = okx.normalize(frame, Catalogs().get("okx"))
    assert (event.quantity, event.size_usd, event.contracts) == (None, None, 13)
    with pytest.raises(UnsizedLiquidation, match="okx BTC-USDT-230929: size unknown"):
        to_liquidation(event, seq=1, received_at=1, coverage="snapshot")


async def test_offline_feed_delivers_rule_sized_events_and_counts_the_unsized(
    shared: Path,
) -> None:
    catalogs = Catalogs()  # no cache, no network: the bundled snapshot only
    frames = [
        XRP_FUTURE,  # inverse future, not listed: the documented rule
        _doc_frame(shared, "IOST-USDT-SWAP", "SWAP"),  # listed in the snapshot
        _doc_frame(shared, "BTC-USDT-230929", "FUTURES"),  # no rule: unsized, counted
        _doc_frame(shared, "SOL-USDT-SWAP", "SWAP"),  # no rule: unsized, counted
    ]
    (name,) = [spec.name for spec in feeds.build_feeds(catalogs, ["okx"])]
    async with FakeExchange(dialect_for(name), frames) as fake:
        specs = [fast(s) for s in feeds.build_feeds(catalogs, ["okx"], {name: fake.url})]
        async with Feeds(specs) as run:
            await fake.wait_drained()
            await run.wait_for(lambda: run.stats[name].events + run.stats[name].unsized >= 4)
    sized = {e.symbol: e.size_usd for e in run.received}
    assert sized == {"XRP-USD-230929": 390.0, "IOST-USDT-SWAP": pytest.approx(101.803)}
    assert run.stats[name].unsized == 2
    assert run.stats[name].snapshot()["unsized"] == 2  # what the health endpoint reports
