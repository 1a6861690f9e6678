"""What a venue is: the typed parts every ``venues/<name>/`` folder exposes as ``VENUE``.

A venue is one exchange operator (Binance, OKX, ...). It reports liquidations under one or
more exchange ids (Binance: ``binance_usdm`` and ``binance_coinm``), each an
:class:`Exchange` with its normalizer, connection spec, market naming and coverage class. The
venue's REST parts (instrument catalog, open interest and marks, recorded history) are
:class:`Venue` fields. Everything here is pure data and pure functions: the ``ingest`` layer
does the I/O, the registry (:mod:`purpleflea.venues.registry`) collects the folders.

A part a venue does not have is :class:`Absent` with the reason, never left out: the registry
test checks that every venue states every part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol, get_args

from purpleflea.model import Catalog, Coverage, Instrument, Side, VenueLiquidation
from purpleflea.positions import MarketContext, Position, SeenTrade

if TYPE_CHECKING:
    from purpleflea.sim.process import SimStep, Simulator

#: How complete a venue's liquidation feed is: :data:`purpleflea.model.Coverage`.
COVERAGES: tuple[Coverage, ...] = get_args(Coverage)

#: What an event's ``price`` is on a venue (shared/EXCHANGES.md trap 5): the SPEC's "average
#: fill price of the liquidation" holds only where the venue sends one.
#:
#: - ``fill``: what the liquidation traded at (its average fill, or the trade's price);
#: - ``bankruptcy``: the liquidated position's bankruptcy price, where its margin is gone, not
#:   a trade: it sits away from the market (OKX: 0.4-0.6 %, docs/cascade.md), in tracks;
#: - ``order``: the price of the liquidation order (its limit, or where it rests in the
#:   book), not what it filled at;
#: - ``liquidation``: what the venue calls the "liquidation price", with no word on whether
#:   it is a fill, the bankruptcy price or the trigger.
#:
#: Only ``fill`` prices are the market's; the others are for levels, not for "the price moved".
PriceKind = Literal["fill", "bankruptcy", "order", "liquidation"]
PRICE_KINDS: tuple[PriceKind, ...] = get_args(PriceKind)

#: One exchange's frames -> events, reading contract sizes from its instrument catalog.
Normalizer = Callable[[bytes | str, Catalog], list[VenueLiquidation]]
#: An exchange symbol -> its normalized market name (``BTC-PERP``); None if it is none of ours.
MarketOf = Callable[[str], str | None]
#: Answers an exchange's application-level ping frame (None: not a ping).
Answer = Callable[[bytes | str], str | None]
#: An exchange's refusal of a request (an error reply to a subscribe) -> what it says; None
#: for any other frame.
Refusal = Callable[[bytes | str], str | None]
#: A frame announcing that the venue will close this connection soon (OKX's service upgrade
#: notice) -> what it says; None for any other frame.
Closing = Callable[[bytes | str], str | None]
#: Whether a frame is the venue's answer to our subscribe: its ack, or its refusal.
Answered = Callable[[bytes | str], bool]
#: Messages computed when a connection opens (subscriptions from the current catalog, pings
#: that carry the current time).
Messages = Callable[[], tuple[str, ...]]
Message = Callable[[], str]


class Reply(NamedTuple):
    """A venue's answer to one batched subscribe: whether it ``refused`` it, the ``tag`` of the
    request it answers (None: the venue echoes none; the answer is then the batch's that
    holds ``topic``, else the oldest's), and the topic it names (for a refusal, the bad one;
    None: it names none)."""

    refused: bool
    tag: str | None = None
    topic: str | None = None
    #: The refusal says the named topic is subscribed already (Bybit's ``already
    #: subscribed``): the rest is sent again and nothing is given up.
    live: bool = False


@dataclass(frozen=True)
class Batching:
    """How a connection's subscribe messages that carry many topics (one a market) can be
    split, for a venue that refuses a whole message over one bad topic (a delisted or
    not-yet-live symbol still in the catalog): the runner then subscribes the rest again,
    without the topic the refusal names, or in halves until the bad one is alone
    (``ingest/resubscribe.py``)."""

    #: The topics a subscribe message carries; None for a message that is not a batch.
    topics: Callable[[str], tuple[str, ...] | None]
    #: A subscribe message of these topics, tagged (where the venue echoes a request id).
    message: Callable[[tuple[str, ...], str], str]
    #: A frame -> the venue's answer to a batched subscribe; None for any other frame.
    reply: Callable[[bytes | str], Reply | None]
    #: Whether the venue answers its subscribes in the order they were sent, so an answer
    #: that names no batch is the oldest's. False (dYdX: each answer comes when its market's
    #: fetch completes): a refusal naming nothing is placed once every other batch waiting
    #: has been answered, as the batch left (each batch of such a venue is one topic).
    ordered: bool = True


@dataclass(frozen=True)
class Absent:
    """A part this venue does not have; ``reason`` says why (for the next reader)."""

    reason: str


@dataclass(frozen=True)
class Connection:
    """One websocket connection of an exchange: where, what to send, how to keep it alive.

    ``name`` is unique across venues (``bybit_linear``); ``#n`` suffixes (``dydx_v4#2``) share
    the endpoint of the name before them. ``subscribe`` and ``keepalive`` may be fixed text or
    functions called each time they are needed (subscriptions rebuilt from the catalog on
    every reconnect). ``silence_timeout`` is the watchdog: seconds without any frame before
    the connection counts as dead.
    """

    name: str
    exchange: str
    url: str
    subscribe: tuple[str, ...] | Messages = ()
    keepalive: str | Message | None = None
    keepalive_interval: float = 20.0
    answer: Answer | None = None
    silence_timeout: float = 90.0
    subscribe_pause: float = 0.0
    #: One of many alike (a watched account's): its connects are logged at debug level and
    #: its owner logs what it watches, so they do not bury the server's banner.
    quiet: bool = False
    #: HTTP headers of the opening handshake, ``((name, value), ...)``, for an exchange that
    #: changes what it sends by them (Gate: decimal sizes).
    headers: tuple[tuple[str, str], ...] = ()
    #: Reads the exchange's error replies: a refused subscription leaves the socket open and
    #: quiet, so the runner counts and logs each refusal instead of reading it as calm.
    refusal: Refusal | None = None
    #: Reads a frame ``refusal`` read: True when asking again can succeed (a rate limit, the
    #: venue's internal error), and the connection is then replaced after the backoff; False
    #: when the request itself is wrong (an argument that does not exist), logged once as an
    #: ERROR and not asked again. None: refusals are counted and logged only (``batching``
    #: asks again by itself).
    retry_refused: Answered | None = None
    #: Seconds without a frame that carries a liquidation (or, with ``liveness``, a push of
    #: the liveness channel) before the connection counts as silent, beside
    #: ``silence_timeout`` (any frame): a gateway can answer the keepalive and the subscribe
    #: and send no data (EXCHANGES.md trap 3). Only for a connection whose data is never
    #: legitimately quiet that long (a whole market, measured:
    #: ``_connection.ALL_MARKET_DATA_TIMEOUT``; a liveness channel, a few of its pushes).
    #: None: not watched.
    data_timeout: float | None = None
    #: Whether a frame is a push of the connection's liveness channel: an always-busy public
    #: channel of the venue (a ticker, a periodic contract snapshot) subscribed on the same
    #: socket only to prove the gateway still sends data. Its pushes feed ``data_timeout``
    #: as a liquidation does (never pongs, acks or heartbeats: those a dead gateway still
    #: sends), so a venue whose liquidations are quiet for hours can have a data watchdog
    #: sized on the channel's cadence. None: only liquidations count as data.
    liveness: Answered | None = None
    #: How to split a refused subscribe message (None: its messages are not split).
    batching: Batching | None = None
    #: Seconds before a topic given up after its refusal is asked for again on the same
    #: connection (a symbol not live yet when we connected), doubling on each new refusal up
    #: to ``retry_cap``; only with ``batching``.
    retry_after: float = 60.0
    retry_cap: float = 1800.0
    #: Seconds between looks at ``subscribe`` (a function, rebuilt from the live catalog) for
    #: topics this connection has not asked for: a contract listed after it connected joins
    #: the catalog at its next refresh, and is then subscribed on the same socket, not at the
    #: next reconnect (days away on a venue that never closes a healthy connection). Only
    #: with ``batching`` (its ``topics`` read the messages).
    follow_catalog: float = 60.0
    #: The connections of this exchange its live catalog needs now past those built at the
    #: start, each ``follow_catalog`` seconds (dYdX: markets listed past every connection's 32
    #: places; Bybit: topics past a connection's 21,000 characters of args). The ingest starts
    #: each one whose name is not running yet. Only the first connection of each group has it
    #: (dYdX's first; Bybit's first linear and first inverse); None: the connections are fixed.
    more: Callable[[], tuple[Connection, ...]] | None = None
    #: Reads a push of the venue's instrument channel subscribed on the same socket, given
    #: the exchange's live catalog: the contracts it changes (OKX ``instruments``: a contract's
    #: new value, a new listing; BitMEX ``instrument:XBTUSD``: its quanto contracts' XBT
    #: price), which the runner merges into that catalog at once, so the next liquidation is
    #: sized with them, not with the hourly fetch's (no liquidation push carries them). None:
    #: for any other frame.
    contracts: Callable[[bytes | str, Catalog], list[Instrument] | None] | None = None
    #: Seconds the venue serves a connection before closing it on schedule (Binance: 24 h);
    #: the runner opens its replacement ``handover_lead`` seconds before, so the close loses
    #: nothing. None: no scheduled close.
    lifetime: float | None = None
    handover_lead: float = 60.0
    #: Reads the venue's notice that it will close this connection soon: the runner then
    #: opens the replacement at once, while this one still delivers.
    closing: Closing | None = None
    #: Reads the venue's answer to our subscribe (an ack or a refusal). With it, a connection
    #: whose subscribe gets no answer, and that delivers no data, within ``subscribe_timeout``
    #: seconds is replaced: a gateway that takes the socket and answers pings, but never the
    #: subscribe, looks alive to the silence watchdog. None: not watched.
    subscribed: Answered | None = None
    subscribe_timeout: float = 20.0


#: The connections of one exchange, given its live instrument catalog (a mapping whose
#: contents a refresh replaces, so subscriptions computed on connect see new instruments).
Connections = Callable[[Catalog], list[Connection]]


@dataclass(frozen=True)
class SimListing:
    """How the market simulator lists an exchange: the simulator's parameters, kept with the
    venue so the simulator names no exchange."""

    #: Place in the simulator's exchange order (its random draws follow this order).
    order: int
    #: Share of a market's liquidations where it lists the market (renormalized per market).
    share: float
    #: The highest market rank (0-based, exclusive) it lists; None: every market.
    listed_up_to: int | None
    #: ``(base coin, bundle prefix such as "1000" or "")`` -> its perpetual's symbol.
    symbol: Callable[[str, str], str]


@dataclass(frozen=True)
class Exchange:
    """One exchange id a venue reports liquidations under."""

    id: str
    display_name: str
    #: See :data:`Coverage`; the venue's constants cite shared/EXCHANGES.md for it.
    coverage: Coverage
    #: What its events' ``price`` is (:data:`PriceKind`); the constants cite the evidence.
    price: PriceKind
    normalize: Normalizer | Absent
    connections: Connections | Absent
    #: Names the symbols its REST endpoints (open interest, catalogs) list.
    market: MarketOf
    sim: SimListing | Absent


#: One page of a paged REST list, ``(its url, its body)`` -> the next page's URL, or None after
#: the last. Each page is parsed alone and the rows of all pages are kept.
NextPage = Callable[[str, bytes], "str | None"]
#: A REST body -> the venue's error it carries, in the venue's words (its code and message);
#: None for a body that is no error. Some venues answer an error with HTTP 200 and the error
#: inside (OKX ``code`` not ``"0"``, Bybit ``retCode`` not 0, HTX ``status: error``), often
#: beside an empty list that would otherwise read as a venue listing nothing.
ErrorAnswer = Callable[[bytes], "str | None"]


@dataclass(frozen=True)
class CatalogSource:
    """One public REST endpoint listing an exchange's contracts, and its parser.

    ``next_page`` is set for an endpoint that answers one page at a time (Bybit's cursor):
    without it only the first page would ever be read.
    """

    exchange: str
    url: str
    parse: Callable[[bytes], list[Instrument]]
    next_page: NextPage | None = None
    #: Reads the venue's error out of a page's body (None: its errors are HTTP errors).
    error: ErrorAnswer | None = None


class Reading(NamedTuple):
    """One instrument's mark price and one-side open interest in coins."""

    symbol: str
    mark_price: float
    open_interest: float


#: A bulk open-interest body (several endpoints' bodies merged) -> readings, contracts
#: converted to coins with the exchange's catalog.
ReadingsParser = Callable[[bytes, Catalog], list[Reading]]


@dataclass(frozen=True)
class PerSymbol:
    """Open interest read one symbol per request (``GET url?symbol=``), for exchanges with no
    bulk endpoint; ``parse`` reads one answer as ``(symbol, coins)``."""

    url: str
    parse: Callable[[bytes], tuple[str, float]]
    symbols: tuple[str, ...]
    #: Seconds between per-symbol requests, to stay inside the exchange's rate limit.
    pause: float = 0.05


@dataclass(frozen=True)
class PerScope:
    """Readings asked one part of the venue at a time, for a venue whose bulk endpoint answers
    for one part per request (Hyperliquid: one perp dex, named by ``dex``).

    ``listing`` asks the source's url for the parts, ``parse`` reads that answer as their
    scopes; each scope's ``request`` goes to the same url and its answer is read by the
    source's parse alone, keeping only readings whose symbol ``scope_of`` puts in that scope.
    A scope that fails is left out of the poll; while the list cannot be read the last one
    read is asked (at first ``known``). Requests are sent ``pause`` seconds apart."""

    listing: Mapping[str, str]
    parse: Callable[[bytes], tuple[str, ...]]
    request: Callable[[str], Mapping[str, str]]
    scope_of: Callable[[str], str]
    known: tuple[str, ...] = ("",)
    pause: float = 10.0


@dataclass(frozen=True)
class PollSource:
    """One exchange's open-interest and mark-price endpoint(s) and how to read them.

    The bodies of several ``urls`` are merged (OKX: open interest + marks). With
    ``per_symbol``, ``urls`` give the marks and open interest is fetched per symbol. With
    ``next_page``, each url is read page by page and every page parsed alone. With
    ``per_scope``, the first url is asked once per part of the venue.
    """

    exchange: str
    urls: tuple[str, ...]
    parse: ReadingsParser
    interval: float = 60.0
    method: str = "GET"
    payload: Mapping[str, str] | None = None
    per_symbol: PerSymbol | None = None
    next_page: NextPage | None = None
    per_scope: PerScope | None = None
    #: Reads the venue's error out of each body, before bodies are merged (merging keeps only
    #: their lists, so an error beside an empty list would pass for no rows).
    error: ErrorAnswer | None = None


PriceFallback = Literal["none", "order"]


class TardisRow(NamedTuple):
    """The fields of one Tardis normalized ``liquidations`` row every venue reads, checked."""

    symbol: str
    #: The liquidation *order* side, ``buy`` or ``sell``.
    order_side: str
    #: The liquidated position: the order side's opposite (a sell closes a long).
    side: Side
    price: float
    amount: float
    #: ``amount`` as written (ids use its canonical spelling).
    amount_text: str
    #: ``price`` as written.
    price_text: str
    ts: int
    #: Tardis's ``id`` column, or the timestamp text when it is empty.
    ref: str
    #: Tardis's ``id`` column as written: the exchange's trade id where it has one (Deribit's
    #: ``trade_id``), else empty.
    trade_id: str = ""


#: One Tardis row -> the event the venue's live normalizer would give (ts and sizes in our
#: units), or None for a row of which it gives none (a Deribit option); raises ``ValueError``
#: (a RowError or FrameError) naming the field.
TardisReader = Callable[[TardisRow], VenueLiquidation | None]
#: One row of a venue's own recorder CSV -> its event, or None for a row that is not a print.
RecorderRow = Callable[[list[str], PriceFallback], VenueLiquidation | None]


@dataclass(frozen=True)
class RecorderFormat:
    """A CSV format recorded from one venue's feed (no header), read row by row."""

    name: str
    read: RecorderRow
    #: Whether a file's first row (split on commas) looks like this format.
    detect: Callable[[list[str]], bool]


@dataclass(frozen=True)
class LiveIdMatch:
    """How to recognise the live copy of a recorded event whose live id carries a number the
    recorded row gives back only by value or not at all: Bybit pads a price to its tick
    (``"p":"82396.90"``) where Tardis writes ``82396.9``; a Tardis COIN-M row's amount was the
    order's last fill for a time, where the live id has its total. The importer looks among the
    stored ids that share the part the row does rebuild."""

    exchange: str
    #: The start of an id that the recorded row rebuilds exactly.
    prefix: Callable[[str], str]
    #: Whether two ids of one prefix name the same event.
    same: Callable[[str, str], bool]


@dataclass(frozen=True)
class History:
    """How recorded liquidation history of this venue becomes events with the live ids."""

    #: Tardis exchange id (``binance-futures``) -> reader of its rows.
    tardis: Mapping[str, TardisReader]
    recorders: tuple[RecorderFormat, ...] = ()
    live_id_matches: tuple[LiveIdMatch, ...] = ()


class RepairPage(NamedTuple):
    """One answer of a repair endpoint: its events and whether the window holds more."""

    events: list[VenueLiquidation]
    more: bool
    #: The time (ms) of the page's last row, liquidation or not: where the next page starts
    #: (a page of ordinary trades still advances). None: the last event's time.
    last_ms: int | None = None
    #: For a source that pages by id (``RepairSource.request_after``): the id the next page
    #: starts after. None: the source pages by time.
    cursor: str | None = None


@dataclass(frozen=True)
class RepairSource:
    """A public REST endpoint listing one instrument's past liquidations in a time window.

    After a reconnect, ``ingest/repair.py`` asks it for the gap's window, instrument by
    instrument, and publishes what the live feed missed. ``parse`` must give the ids the live
    normalizer gives, so what both saw deduplicates.
    """

    exchange: str
    #: Scheme and host (tests point it at loopback).
    base: str
    #: ``(instrument, start_ms, end_ms)`` -> the request's path and query of one page.
    request: Callable[[str, int, int], str]
    #: ``(answer, instrument, catalog)`` -> the answer's events (of the instrument asked for),
    #: sized with the exchange's live instrument catalog.
    parse: Callable[[bytes, str, Catalog], RepairPage]
    #: The instruments to ask, from the live catalog (the ones the feed subscribes to).
    instruments: Callable[[Catalog], list[str]]
    #: How far back the endpoint reaches (ms); None: no documented limit.
    reach_ms: int | None = None
    #: Seconds between requests, to stay inside the exchange's rate limit.
    pause: float = 0.05
    #: The endpoint lists newest first and pages backwards (``request``'s ``end_ms`` moves
    #: back to the last page's oldest row); otherwise oldest first, ``start_ms`` moving on.
    newest_first: bool = False
    #: ``(instrument, start_ms, end_ms, cursor)`` -> the request of the page after a page's
    #: ``cursor``, for an endpoint that pages by id; None: it pages by time.
    request_after: Callable[[str, int, int, str], str] | None = None
    #: The longest window (ms) one query may span; longer gaps are asked in parts.
    max_window_ms: int | None = None


class SimulatedVenue(Protocol):
    """A venue's share of the simulated market served on loopback in its own protocol, so
    the position sampler runs unchanged offline: ``start`` it, point the sampler at
    ``info_url`` / ``ws_url`` and ``observe`` the simulator after every step."""

    @property
    def info_url(self) -> str: ...

    @property
    def ws_url(self) -> str: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def observe(self, sim: Simulator, step: SimStep) -> None: ...

    def held_share(self, market: str) -> float:
        """The part of every simulated position of ``market`` this venue holds (0: none): the
        simulator's own events of that market carry only the rest, so each liquidated
        position's share here reaches the stream once, through the sampler."""
        ...


@dataclass(frozen=True)
class PositionSampling:
    """How to sample a venue that publishes every account's positions (the position
    sampler, :mod:`purpleflea.ingest.position_sampler`, does the I/O).

    Accounts are discovered from the public trade stream (``ws_url``, one
    ``trades_subscription`` per coin, ``parse_trades``, whose prices also tell how far
    the market moved between two polls of an account); each account's positions are
    polled with ``account_request`` at ``info_url``; marks and open interest with
    ``contexts_request``, both once per ``scope`` of the sampled coins (the part of the venue
    a coin's positions and contexts are asked from: Hyperliquid's perp dex, ``""`` for the
    first). ``weight_per_minute`` is the venue's documented REST allowance per IP and
    ``account_weight`` / ``contexts_weight`` what each request costs against it;
    ``max_user_subscriptions`` the documented cap on accounts watched by websocket;
    ``max_connections`` and ``max_new_connections_per_minute`` the documented per-IP caps on
    websocket connections held and opened (None: none documented).
    """

    exchange: str
    info_url: str
    ws_url: str
    #: (account, scope) -> the request of the account's positions there.
    account_request: Callable[[str, str], Mapping[str, str]]
    parse_account: Callable[[bytes, str], list[Position]]
    #: scope -> the request of its marks and open interest.
    contexts_request: Callable[[str], Mapping[str, str]]
    parse_contexts: Callable[[bytes], dict[str, MarketContext]]
    trades_subscription: Callable[[str], str]
    parse_trades: Callable[[bytes | str], list[SeenTrade]]
    user_subscription: Callable[[str], str]
    parse_user_liquidations: Callable[[bytes | str, str], list[VenueLiquidation]]
    weight_per_minute: int
    account_weight: int
    contexts_weight: int
    max_user_subscriptions: int
    #: The venue's share of the simulated market for these coins (None: not simulated).
    simulated: Callable[[tuple[str, ...]], SimulatedVenue] | None = None
    #: One line of the fill output of a node of the venue's own -> its liquidations (None:
    #: the venue has no such node).
    parse_node_line: Callable[[bytes | str], list[VenueLiquidation]] | None = None
    #: Reads the venue's error reply to a subscription (see :attr:`Connection.refusal`).
    refusal: Refusal | None = None
    #: Reads its answer to a subscription, ack or refusal (see :attr:`Connection.subscribed`).
    subscribed: Answered | None = None
    #: The scope a coin (or a position's or trade's symbol) belongs to; one scope, ``""``,
    #: when the venue has no parts.
    scope: Callable[[str], str] = lambda coin: ""
    #: Weight a minute the venue's other requests from the same process (its open-interest
    #: poller) spend against ``weight_per_minute``: the sampler's budget leaves it free.
    reserved_weight_per_minute: float = 0.0
    #: Websocket connections one IP may hold at once (None: no documented cap).
    max_connections: int | None = None
    #: New websocket connections one IP may open in a minute (None: no documented cap).
    max_new_connections_per_minute: int | None = None


@dataclass(frozen=True)
class Venue:
    """Everything the tracker knows about one venue; every part present or :class:`Absent`."""

    #: The folder name, ``venues/<name>/``.
    name: str
    display_name: str
    exchanges: tuple[Exchange, ...]
    catalog: tuple[CatalogSource, ...] | Absent
    open_interest: tuple[PollSource, ...] | Absent
    history: History | Absent
    #: Where a reconnect's missed window is fetched from (``Absent``: why it stays open).
    repair: RepairSource | Absent
    #: Every account's positions, for venues that publish them (``positions.py``).
    positions: PositionSampling | Absent = Absent("no public per-account positions")
