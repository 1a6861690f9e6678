"""OKX's instrument list: contract sizes of its swaps and dated futures, and the documented
face value of the inverse ones the list (or the bundled snapshot) lacks."""

from __future__ import annotations

import logging
from functools import lru_cache

from purpleflea.model import NO_INSTRUMENTS, Catalog, Instrument
from purpleflea.venues import symbols
from purpleflea.venues._catalog import coded_error, json_body, rows, size
from purpleflea.venues._connection import containing
from purpleflea.venues.okx.constants import EXCHANGE
from purpleflea.venues.venue import CatalogSource

log = logging.getLogger(__name__)

#: What :func:`by_documented_rule` marks its instruments with (``Instrument.rule``).
INVERSE_RULE = "OKX inverse contracts: 100 USD per BTC contract, 10 USD per other coin's"


def parse(body: bytes) -> list[Instrument]:
    """``GET api/v5/public/instruments``: one contract is ``ctVal * ctMult`` of ``ctValCcy``.

    ``ctType`` linear means ``ctValCcy`` is the base coin; inverse means it is USD.
    """
    return instruments(rows(EXCHANGE, json_body(EXCHANGE, body).get("data"), "data"))


#: OKX's public channel of its instruments, on the liquidation connection's socket.
INSTRUMENTS_CHANNEL = "instruments"


def pushed(frame: bytes | str, catalog: Catalog = NO_INSTRUMENTS) -> list[Instrument] | None:
    """The contracts of a push of OKX's ``instruments`` channel; None for any other frame.

    OKX v5 docs, WebSocket public channels, "Instruments Channel" (``/ws/v5/public``,
    ``instType`` SWAP or FUTURES): "The full instrument list will be pushed for the first time
    after subscription. Subsequently, the instruments will be pushed if there's any change to
    the instrument's state (such as delivery of FUTURES, exercise of OPTION, listing of new
    contracts / trading pairs, trading suspension, etc.)"; "When there is system/instrument
    upgrade or failure, instrument status will be changed to suspend. When trading resumes,
    the instrument status will be changed to live." Its rows are the REST list's (``instId``,
    ``ctVal``, ``ctMult``, ``ctType``, ``state``). OKX changes a contract's value while its
    trading is suspended ("Adjustment of Face Value for USDT-margined Perpetual Swap & Futures
    Trading", okx.com help, 2020-03-04: ETHUSDT 0.001 -> 0.1 ETH, "we will suspend the
    corresponding trading services" for about 30 minutes), so the push of its return to
    ``live`` carries the new ``ctVal`` before any liquidation at it.
    """
    del catalog  # each push lists its contracts whole
    message = containing(frame, f'"{INSTRUMENTS_CHANNEL}"')
    if message is None or "event" in message:
        return None  # not the channel; or its subscribe ack
    arg = message.get("arg")
    if not isinstance(arg, dict) or arg.get("channel") != INSTRUMENTS_CHANNEL:
        return None
    return instruments(rows(EXCHANGE, message.get("data"), "instruments push data"))


def instruments(listed: list[dict[str, object]]) -> list[Instrument]:
    """Instrument rows of OKX's list (REST, or the channel's push) as contracts."""
    found = []
    for row in listed:
        symbol = str(row.get("instId"))
        kind = row.get("ctType")
        contract = size(EXCHANGE, symbol, row.get("ctVal"))
        multiplier = size(EXCHANGE, symbol, row.get("ctMult") or 1)
        if kind not in ("linear", "inverse") or contract is None or multiplier is None:
            continue
        found.append(
            Instrument(
                exchange=EXCHANGE, symbol=symbol, kind=kind, contract_size=contract * multiplier
            )
        )
    return found


@lru_cache(maxsize=1024)
def by_documented_rule(inst_id: str) -> Instrument | None:
    """The contract of ``inst_id``, missing from the catalog, by a rule OKX documents; None
    when no documented rule covers it (its liquidations then stay unsized).

    Crypto-margined (inverse) swaps and futures, ``<COIN>-USD-SWAP`` and
    ``<COIN>-USD-<YYMMDD>``, have a fixed USD face value: 100 USD for BTC, 10 USD for every
    other coin. OKX's Expiry Futures Guide (https://www.okx.com/help/i-future-contracts):
    BTCUSD face value 100 USD, LTCUSD 10 USD; its Perpetual Futures Guide
    (https://www.okx.com/help/i-perpetual-swaps): crypto-margined perpetuals "with a contract
    size of 100 USD" (BTCUSD); the OKEx futures introduction states the rule itself: "Contract
    value BTC: USD100; LTC & others: USD10". The recorded catalog agrees (BTC-USD-SWAP 100,
    XRP-USD-SWAP 10; shared/EXCHANGES.md trap 6).

    Linear contracts (``-USDT-``, ``-USDC-``, ``-USD_UM-``) have no such rule: their ``ctVal``
    is set per coin (0.01 BTC, 0.1 ETH, 1000 IOST). A dated future's matched its swap's in the
    one example the guides give (BTCUSDT, 0.01 BTC), but no OKX document says it always does,
    so they are not sized from it.
    """
    parts = inst_id.split("-")
    if len(parts) != 3 or not parts[0] or parts[1] != "USD":
        return None
    if parts[2] != "SWAP" and symbols.from_yymmdd(parts[2]) is None:
        return None
    face_usd = 100.0 if parts[0] == "BTC" else 10.0
    log.info(
        "%s %s is not in the instrument catalog: sized by the documented rule (%s): %g USD",
        EXCHANGE,
        inst_id,
        INVERSE_RULE,
        face_usd,
    )
    return Instrument(
        exchange=EXCHANGE,
        symbol=inst_id,
        kind="inverse",
        contract_size=face_usd,
        rule=INVERSE_RULE,
    )


def error_answer(body: bytes) -> str | None:
    """OKX's error inside a REST answer: every answer is ``{"code":..,"msg":..,"data":[..]}``
    and ``code`` "0" is success (okx.com/docs-v5, "Error Code": each code with the HTTP
    status it comes with; 0 with 200, and errors too are answered with 200, such as 80000
    "Repeated request", beside the 429 of 50011 "Rate limit reached"). An error comes with
    ``"data":[]``, which parsed alone is a list of no instrument or no reading."""
    return coded_error(body, "code", "msg")


_INSTRUMENTS = "https://www.okx.com/api/v5/public/instruments?instType="
SOURCES = tuple(
    CatalogSource(EXCHANGE, f"{_INSTRUMENTS}{kind}", parse, error=error_answer)
    for kind in ("SWAP", "FUTURES")
)
