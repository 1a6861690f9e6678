"""The simulated market universe: real perpetual tickers with realistic scales.

Each market is a coin's perpetual (``BTC-PERP``) as all exchanges together trade it. Its scales
are set by its rank in the list below (ordered roughly by open interest, late 2025):

- ``price``: a realistic price level in real coin units (PEPE at ~1.5e-5 USD, not the
  ``1000PEPEUSDT`` contract's price);
- ``daily_vol``: daily standard deviation of log returns (BTC ~2.5%, meme coins ~8%);
- ``oi_usd``: the size of the market's leveraged cohort book in USD over all exchanges (BTC
  $30B ... tail ~$15M); the reported open interest, its larger side, is about two thirds of it;
- ``depth_usd``: USD of market orders that move the price by 1% (the impact scale);
- ``max_leverage`` and ``mmr`` (maintenance margin rate of the smallest tier).

Each market is listed on a subset of exchanges (the long tail is not on BitMEX or Deribit),
each with a native-looking symbol and a share of the market's liquidations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from purpleflea.venues import registry

#: Exchange ids and their share of liquidations where they list a market (renormalized per
#: market over the exchanges that list it).
EXCHANGE_SHARES: dict[str, float] = {e: s.share for e, s in registry.SIM_LISTINGS.items()}

#: The highest rank (0-based, exclusive) each exchange lists; absent means every market.
_LISTED_UP_TO: dict[str, int] = {
    e: s.listed_up_to for e, s in registry.SIM_LISTINGS.items() if s.listed_up_to is not None
}

#: Binance/Bybit trade these coins in bundles (``1000PEPEUSDT``); prices stay per real coin.
_BUNDLE_PREFIX: dict[str, str] = {
    "PEPE": "1000",
    "SHIB": "1000",
    "BONK": "1000",
    "FLOKI": "1000",
    "SATS": "1000",
    "RATS": "1000",
    "LUNC": "1000",
    "XEC": "1000",
    "CAT": "1000",
    "CHEEMS": "1000",
    "WHY": "1000",
    "MOG": "1000000",
    "BABYDOGE": "1M",
}

# Ticker:price, by open interest. "*" marks meme coins (higher volatility).
_TICKERS = """
BTC:95000 ETH:3300 SOL:180 XRP:2.3 DOGE:0.32* BNB:680 ADA:0.9 SUI:3.8 LINK:20 AVAX:32
TRX:0.24 LTC:110 DOT:6.5 BCH:420 TON:5 HYPE:25 NEAR:5 APT:9 UNI:12 PEPE:0.000015*
SHIB:0.000021* WIF:1.9* ARB:0.7 OP:1.8 FIL:5 ATOM:6.5 INJ:22 ETC:26 HBAR:0.28 XLM:0.4
TIA:5 SEI:0.4 RENDER:6.5 FET:1.3 TAO:450 WLD:2.2 ENA:0.9 ONDO:1.3 JUP:0.9 TRUMP:25*
BONK:0.000028* FLOKI:0.00015* AAVE:330 CRV:0.9 LDO:1.8 ENS:35 ORDI:30 STX:1.5 IMX:1.3
FARTCOIN:1.0* VIRTUAL:2.5 PENGU:0.03* POPCAT:0.7* GALA:0.035 SAND:0.55 MANA:0.5 AXS:6.5
APE:1.2 DYDX:1.4 ALGO:0.4 VET:0.045 ICP:10 EGLD:32 THETA:2.1 KAS:0.12 RUNE:4 S:0.6
JASMY:0.035 CHZ:0.09 PENDLE:5 JTO:3 W:0.3 STRK:0.45 ZK:0.17 ZRO:5 EIGEN:3 ETHFI:2
MOODENG:0.2* GOAT:0.4* PNUT:0.6* NEIRO:0.0015* BRETT:0.12* AI16Z:0.8 AIXBT:0.4 MOVE:0.6
BERA:6 KAITO:1.5 IP:5 LAYER:1.2 ME:3 USUAL:0.6 BIO:0.5 ANIME:0.04* XMR:180 ZEC:60
AR:20 GRT:0.25 POL:0.45 QNT:100 MKR:1600 SNX:2.5 COMP:80 GMX:25 BLUR:0.25 NOT:0.006*
BOME:0.008* MEW:0.008* TURBO:0.008* MOG:0.0000015* SATS:0.0000003* RATS:0.00008*
LUNC:0.00009 XEC:0.00003 CAT:0.00003* CHEEMS:0.0000015* WHY:0.0000001* BABYDOGE:0.000000002*
ACT:0.3* TST:0.08* BROCCOLI:0.05* MUBARAK:0.15* DOGS:0.0007* HMSTR:0.003* CATI:0.3 GRASS:2.5
DRIFT:1 AERO:1.2 MORPHO:2 VANA:10 SPX:0.8* CHILLGUY:0.15* ZEREBRO:0.3 GRIFFAIN:0.2
COOKIE:0.4 CGPT:0.2 DEEP:0.15 SONIC:0.5 VINE:0.1* BIGTIME:0.1 DASH:35 XTZ:1.1 EOS:0.8
NEO:14 IOTA:0.3 QTUM:3.5 ONT:0.25 ZIL:0.02 ICX:0.18 ONE:0.02 KSM:30 KAVA:0.5 ROSE:0.08
CELO:0.7 FLOW:0.8 MINA:0.6 ZEN:12 RVN:0.02 BAT:0.25 ENJ:0.25 CHR:0.25 YFI:8000 SUSHI:1.2
1INCH:0.4 BAL:2.5 ZRX:0.5 UMA:3 BAND:1.5 KNC:0.6 LRC:0.2 STORJ:0.5 SKL:0.05 ANKR:0.04
CELR:0.015 COTI:0.1 DENT:0.001 HOT:0.003 IOST:0.006 RSR:0.012 OGN:0.1 SXP:0.3 ALICE:1
C98:0.15 MASK:3 DODO:0.15 LPT:15 API3:1.5 AUDIO:0.15 ARPA:0.05 CTSI:0.15 MTL:1.2 NKN:0.1
WOO:0.2 GMT:0.2 ASTR:0.07 CFX:0.15 HOOK:0.5 MAGIC:0.5 HIGH:1.5 ID:0.4 RDNT:0.05 ARKM:1.8
CYBER:2.5 SSV:25 TRB:60 LQTY:1.2 PERP:0.9 TWT:1.1 GAS:4 ACH:0.03 SFP:0.7 SUPER:1.2
AGLD:1.5 MAV:0.2 EDU:0.5 BNT:0.7 BICO:0.3 FXS:3 RPL:10 JOE:0.4 XVS:8 PIXEL:0.2 PORTAL:0.3
AEVO:0.4 REZ:0.04 BB:0.3 IO:2.5 LISTA:0.4 ZETA:0.6 ALT:0.12 MANTA:0.8 DYM:1.5 XAI:0.25
AI:0.4 NFP:0.2 ACE:1.5 ORCA:4 CKB:0.012 SAGA:2 TNSR:0.5 OMNI:6 MEME:0.012* ONG:0.35
BANANA:40 RARE:0.12 SYN:0.5 BAKE:0.3 SCR:0.8 SWELL:0.03 COW:0.6 CETUS:0.25 HIPPO:0.008*
THE:1.5 SOLV:0.05 ARC:0.3 PHA:0.15 SUN:0.02 JST:0.035 FLUX:0.6 IOTX:0.04 LUMIA:1.2
MOVR:10 GLM:0.35 POWR:0.25 RLC:2 TLM:0.015 STG:0.4 PEOPLE:0.04* NMR:15 XVG:0.006 SLP:0.003
BSV:50 OXT:0.1 AXL:0.8 USTC:0.02 GHST:1 T:0.025 KDA:0.7 YGG:0.5 RON:2 NTRN:0.4 AKT:3
PRIME:10 ARK:0.6 VANRY:0.1 ILV:30 MBOX:0.2 STEEM:0.25 POLYX:0.3 SPELL:0.0008 GTC:0.6
FIDA:0.3 DUSK:0.2 BEL:0.8 ATA:0.1 DEGEN:0.01* BADGER:3 DIA:0.6 FORTH:3 SANTOS:3 VOXEL:0.15
"""


@dataclass(frozen=True, slots=True)
class Listing:
    """One exchange's instrument for a market and its share of the market's liquidations."""

    exchange: str
    symbol: str
    share: float


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One simulated perpetual market (see the module docstring for the units)."""

    index: int
    base: str
    price: float
    daily_vol: float
    oi_usd: float
    depth_usd: float
    max_leverage: int
    mmr: float
    listings: tuple[Listing, ...]

    @property
    def name(self) -> str:
        return f"{self.base}-PERP"


def _parse_tickers() -> list[tuple[str, float, bool]]:
    parsed: list[tuple[str, float, bool]] = []
    for token in _TICKERS.split():
        base, _, price = token.partition(":")
        meme = price.endswith("*")
        parsed.append((base, float(price.rstrip("*")), meme))
    return parsed


TICKERS: tuple[tuple[str, float, bool], ...] = tuple(_parse_tickers())

# Open interest of the top markets (USD, one side, all exchanges); the rest follow a power law.
_TOP_OI = {"BTC": 30e9, "ETH": 18e9, "SOL": 5e9, "XRP": 3e9, "DOGE": 2.2e9}
_TOP_VOL = {"BTC": 0.025, "ETH": 0.035, "SOL": 0.045, "XRP": 0.045, "DOGE": 0.045, "BNB": 0.03}


def native_symbol(exchange: str, base: str) -> str:
    """The exchange's own instrument id for ``base``'s perpetual (``BTC-USDT-SWAP``)."""
    bundle = _BUNDLE_PREFIX.get(base, "")
    listing = registry.SIM_LISTINGS.get(exchange)
    if listing is not None:
        return listing.symbol(base, bundle)
    raise ValueError(f"native_symbol: unknown exchange {exchange!r}")


def _listings(rank: int, base: str) -> tuple[Listing, ...]:
    chosen = [
        (exchange, share)
        for exchange, share in EXCHANGE_SHARES.items()
        if rank < _LISTED_UP_TO.get(exchange, len(TICKERS))
    ]
    total = sum(share for _, share in chosen)
    return tuple(
        Listing(exchange, native_symbol(exchange, base), share / total)
        for exchange, share in chosen
    )


def _market(rank: int, base: str, price: float, meme: bool) -> MarketSpec:
    oi = _TOP_OI.get(base, 2.0e9 * (max(rank, 5) / 5.0) ** -1.2)
    vol = _TOP_VOL.get(base, 0.085 if meme else 0.05 + 0.015 * min(1.0, rank / 150))
    # Deep books relative to OI on majors, thinner on the tail.
    depth = oi * (0.03 if rank < 2 else 0.015 if rank < 20 else 0.01)
    max_leverage = 125 if rank < 2 else 75 if rank < 20 else 50 if rank < 100 else 25
    mmr = 0.004 if rank < 2 else 0.005 if rank < 20 else 0.01 if rank < 100 else 0.015
    return MarketSpec(
        index=rank,
        base=base,
        price=price,
        daily_vol=vol,
        oi_usd=oi,
        depth_usd=depth,
        max_leverage=max_leverage,
        mmr=mmr,
        listings=_listings(rank, base),
    )


def universe(n_markets: int = 275) -> tuple[MarketSpec, ...]:
    """The first ``n_markets`` markets by open interest (1 <= n_markets <= len(TICKERS))."""
    if not 1 <= n_markets <= len(TICKERS):
        raise ValueError(f"n_markets must be between 1 and {len(TICKERS)}, got {n_markets}")
    return tuple(
        _market(rank, base, price, meme)
        for rank, (base, price, meme) in enumerate(TICKERS[:n_markets])
    )


#: Every market's slot count is this multiple of its base count (200 on the tail, 18,000 for
#: BTC): the same open interest in 5x smaller cohorts liquidates at 5x as many distinct
#: moments. At 1x a liquidated cohort was a burst of up to 200 events on one symbol and
#: Binance's thinned stream was a streak of that symbol (71 % of consecutive events the same
#: symbol, real 11-27 %; docs/simulator.md, "Realism scorecard").
SLOT_FACTOR = 5


def slots_for(spec: MarketSpec) -> int:
    """How many position cohorts the simulator keeps for a market (more for deep markets)."""
    # Growing faster on the deepest markets (BTC 3,600 base slots, not 1,500), so their open
    # interest is smooth and their liquidation prices a continuum.
    ratio = spec.oi_usd / 5e6
    scaled: float = max(30 * ratio**0.45, 5 * ratio**0.8)
    return SLOT_FACTOR * max(40, min(3600, round(scaled)))


def tick_decimals(price: float) -> int:
    """Significant decimals to round prices of a coin at ``price`` to (5 significant digits)."""
    return max(0, 4 - math.floor(math.log10(price)))
