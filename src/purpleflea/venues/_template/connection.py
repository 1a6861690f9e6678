"""Connection spec: where the liquidation channel is and how to stay subscribed.

Fill in (the facts come from shared/EXCHANGES.md and the exchange's docs):

- the websocket URL(s) and ``subscribe(...) -> tuple[str, ...]`` building the messages with
  ``venues/_connection.py``'s ``compact_json`` (and ``chunks`` if requests have a size cap);
- keep-alive: a text or a function sending the exchange's application ping, its interval,
  and ``answer(frame) -> str | None`` if the exchange pings us;
- ``refusal(frame) -> str | None`` reading the exchange's error reply to a subscribe (a bad
  topic leaves the socket open and quiet; the runner counts and logs what this reads), with
  ``json_object``/``as_text`` (or ``event_error`` for the OKX/Bitget shape); with
  ``retry_refused(frame) -> bool`` if its error codes tell a refusal worth asking again (a rate
  limit: the runner reconnects after the backoff) from a wrong request (one ERROR; example:
  ``venues/okx/connection.py``);
- ``batching``, if one message lists many instruments and the exchange refuses it whole over
  one bad instrument: a ``Batching`` (the topics of a message, a tagged message of topics,
  the exchange's answer as a ``Reply``) lets the runner subscribe the good ones again
  (``ingest/resubscribe.py``; examples: Bybit names the bad topic, Kraken Futures does not;
  ``ordered=False`` for an exchange answering subscribes in no set order, as dYdX does);
- a close the exchange announces or schedules: ``closing(frame) -> str | None`` reading its
  notice (OKX's 64008), or ``lifetime`` in seconds (Binance: 24 h); the runner then connects
  the replacement before the close (``ingest/handover.py``);
- a data watchdog (EXCHANGES.md trap 3: a gateway that acks and answers pings but sends no
  data): ``data_timeout`` if the liquidation feed of a socket is never quiet that long (a
  whole market, measured); otherwise subscribe one always-busy public channel on the same
  socket (a BTC ticker, a periodic contract snapshot) and give ``liveness(frame) -> bool``
  reading its pushes (not its ack), with a ``data_timeout`` of several of its documented
  pushes (examples: ``venues/htx/connection.py``, ``venues/gate/connection.py``);
- ``connections(instruments) -> list[Connection]``: one ``Connection`` per socket, named
  ``<exchange>`` or ``<exchange>_<part>``, with a ``silence_timeout`` longer than the quietest
  normal gap. Subscriptions that list instruments are a function of the live catalog, so a
  refresh reaches them on the next connect.

Pure: no sockets (``ingest/`` runs the connection). Example: ``venues/bybit/connection.py``.
"""
