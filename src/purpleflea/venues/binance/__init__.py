"""Binance futures: USD-M (``binance_usdm``) and COIN-M (``binance_coinm``) forced orders."""

from __future__ import annotations

from purpleflea.venues.binance import catalog, connection, history, open_interest
from purpleflea.venues.binance.constants import (
    COINM,
    COINM_DISPLAY_NAME,
    COINM_SIM,
    COVERAGE,
    DISPLAY_NAME,
    PRICE,
    USDM,
    USDM_DISPLAY_NAME,
    USDM_SIM,
)
from purpleflea.venues.binance.normalizer import (
    _coinm_market,
    coinm_contract_usd,
    normalize_coinm,
    normalize_usdm,
)
from purpleflea.venues.venue import Absent, Exchange, Venue


def coinm_market_name(symbol: str) -> str:
    return _coinm_market(symbol).name


VENUE = Venue(
    name="binance",
    display_name=DISPLAY_NAME,
    exchanges=(
        Exchange(
            id=USDM,
            display_name=USDM_DISPLAY_NAME,
            coverage=COVERAGE,
            price=PRICE,
            normalize=normalize_usdm,
            connections=connection.usdm_connections,
            market=open_interest.market_name,
            sim=USDM_SIM,
        ),
        Exchange(
            id=COINM,
            display_name=COINM_DISPLAY_NAME,
            coverage=COVERAGE,
            price=PRICE,
            normalize=normalize_coinm,
            connections=connection.coinm_connections,
            market=coinm_market_name,
            sim=COINM_SIM,
        ),
    ),
    catalog=catalog.SOURCES,
    open_interest=open_interest.SOURCES,
    history=history.HISTORY,
    repair=Absent(
        "no public REST history of other accounts' liquidations: GET /fapi/v1/allForceOrders "
        "and GET /dapi/v1/allForceOrders 'stop being maintained and no longer accept "
        "request' (Binance derivatives change log, 2021-04); /fapi/v1/forceOrders lists only "
        "the signed caller's own"
    ),
)

__all__ = ["COINM", "USDM", "VENUE", "coinm_contract_usd", "normalize_coinm", "normalize_usdm"]
