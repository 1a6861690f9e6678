"""The webhook routes: create, list and delete an account's webhooks, read and replay their
dead letters. An account sees and touches only its own (another's id answers 404, as an
unknown one does). Delivery itself is :mod:`purpleflea.server.webhook_dispatch`."""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from purpleflea.clock import now_ms
from purpleflea.model import MARKET_PATTERN
from purpleflea.server import http
from purpleflea.server.filters import BadSubscription
from purpleflea.server.keys import KeyInfo
from purpleflea.server.webhook_dispatch import Dispatcher, webhook_filter
from purpleflea.server.webhook_policy import MAX_URL, BadWebhookUrl, WebhookSettings, check_url
from purpleflea.server.webhook_sender import REPLAY_BUDGET_S, Sender, replay_dead_letters
from purpleflea.store.webhooks import Refusal, Webhook, WebhookStore, target_host
from purpleflea.venues.venue import COVERAGES

Handler = Callable[[Request], Awaitable[Response]]
AuthedHandler = Callable[[Request, KeyInfo], Awaitable[Response]]

_SECRET_MIN, _SECRET_MAX = 16, 200
#: A replay's lease lasts its longest run (the budget plus one attempt) and this much more: a
#: slow store adds time (on PostgreSQL the lease runs by the database's clock, so the nodes'
#: clocks need not agree). A node that dies while replaying holds that webhook's replays up
#: this long at most.
REPLAY_LEASE_SLACK_S = 30.0

log = logging.getLogger("purpleflea.webhooks")


@dataclass
class WebhookService:
    """Webhooks on one node: the shared store, a sender (replays go out from the node that
    was asked), and the dispatcher when this node is the one that delivers."""

    store: WebhookStore
    sender: Sender
    settings: WebhookSettings
    known_exchanges: tuple[str, ...]
    #: The highest seq published (as this node knows it): a new webhook gets what follows.
    position: Callable[[], int]
    dispatcher: Dispatcher | None = None
    #: Replay leases this node could not give back (each then runs out by itself).
    lease_release_failures: int = 0
    #: Webhooks refused at creation, by the limit they hit.
    refused: Counter[Refusal] = field(default_factory=Counter)

    async def release_replay(self, webhook_id: str, holder: str, *, lease_s: float) -> None:
        """Give a replay's lease back after the replay ran (or failed). A store error here
        (gone, or SQLite's "database is locked" past its busy wait) must not turn the
        replay's answer into a 500: its letters went out and were removed. The lease then
        holds that webhook's replays up until it expires; logged once and counted."""
        try:
            await self.store.release_replay(webhook_id, holder)
        except Exception as exc:
            self.lease_release_failures += 1
            log.warning(
                "webhook %s: replay lease not given back (%s: %s); the next replay waits until "
                "it expires, at most %.0f s",
                webhook_id,
                type(exc).__name__,
                exc,
                lease_s,
            )

    def metrics(self) -> list[tuple[str, str, str, list[tuple[str, float]]]]:
        """``(name, kind, help, samples)`` for ``/v1/metrics`` (on every node: replays run
        on the node asked)."""
        return [
            (
                "webhook_replay_lease_release_failures_total",
                "counter",
                "Webhook replay leases not given back (each expires by itself).",
                [("", float(self.lease_release_failures))],
            ),
            (
                "webhook_budget_waits_total",
                "counter",
                "Webhook deliveries that waited for their destination's budget (all "
                "webhooks aimed at one address share it).",
                [("", float(self.sender.budget_counters["waits"]))],
            ),
            (
                "webhook_budget_wait_seconds_total",
                "counter",
                "Seconds webhook deliveries waited for their destination's budget.",
                [("", self.sender.budget_wait_s)],
            ),
            (
                "webhook_budget_refused_total",
                "counter",
                "Replayed dead letters not sent: their destination's budget was spent.",
                [("", float(self.sender.budget_counters["refused"]))],
            ),
            (
                "webhook_destinations_throttled",
                "gauge",
                "Destinations whose webhook deliveries wait for their budget now.",
                [("", float(self.sender.budget.throttled()))],
            ),
            (
                "webhook_create_refused_total",
                "counter",
                "Webhooks refused at creation by the limit they hit (per account, per host).",
                [(f'{{limit="{k}"}}', float(self.refused[k])) for k in ("account", "host")],
            ),
        ]

    async def changed(self) -> None:
        """A webhook was made or deleted here: deliver by it (or stop) right away."""
        if self.dispatcher is not None:
            await self.dispatcher.reload()

    async def close(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.close()  # closes the sender
        else:
            await self.sender.close()
        await self.store.close()


def _view(webhook: Webhook) -> dict[str, Any]:
    """A webhook as its owner sees it (never the secret after creation)."""
    return {
        "id": webhook.id,
        "url": webhook.url,
        "filters": webhook.filters,
        "created_at": webhook.created_at,
        "dead_letters": webhook.dead_letters,
        "dead_letters_dropped": webhook.dead_letters_dropped,
    }


def _secret(value: object) -> str:
    if value is None:
        return "whsec_" + secrets.token_urlsafe(24)
    if not isinstance(value, str) or not _SECRET_MIN <= len(value) <= _SECRET_MAX:
        raise http.BadRequest(
            f"secret must be a string of {_SECRET_MIN} to {_SECRET_MAX} characters (or left out: "
            "one is generated)"
        )
    return value


class WebhookRoutes:
    """Route handlers over a :class:`WebhookService`; ``authed`` is the API's key check."""

    def __init__(
        self,
        service: WebhookService,
        *,
        authed: Callable[[AuthedHandler], Handler],
        allow_private: bool,
    ) -> None:
        self.service = service
        self.authed = authed
        self.allow_private = allow_private

    async def _owned(self, request: Request, info: KeyInfo) -> Webhook | Response:
        webhook_id = request.path_params["webhook_id"]
        webhook = await self.service.store.get(webhook_id, info.account)
        if webhook is None:
            return http.error_response(
                404, "not_found", f"no webhook {webhook_id!r} in account {info.account!r}"
            )
        return webhook

    async def create(self, request: Request, info: KeyInfo) -> Response:
        body = await http.json_body(request)
        try:
            if "since_seq" in body:
                raise BadSubscription(
                    "since_seq has no meaning for a webhook: it receives what is published "
                    "from its creation on"
                )
            for name in ("channels", "markets", "exchanges", "sides", "coverages"):
                if body.get(name) is not None and not isinstance(body[name], list):
                    raise BadSubscription(f"{name} must be a JSON array of strings")
            url = check_url(body.pop("url", None), allow_private=self.allow_private)
            secret = _secret(body.pop("secret", None))
            wanted = webhook_filter(body, self.service.known_exchanges)
        except (BadWebhookUrl, BadSubscription) as exc:
            raise http.BadRequest(str(exc)) from None
        filters = wanted.describe()
        filters.pop("since_seq")
        webhook = Webhook(
            id="wh_" + secrets.token_hex(8),
            account=info.account,
            url=url,
            secret=secret,
            filters=filters,
            created_at=now_ms(),
            settled_seq=self.service.position(),
        )
        settings = self.service.settings
        refused = await self.service.store.add(
            webhook, per_account=settings.max_per_account, per_host=settings.max_per_host
        )
        if refused is not None:
            self.service.refused[refused] += 1
        if refused == "account":
            return http.error_response(
                409,
                "too_many_webhooks",
                f"account {info.account!r} already has {settings.max_per_account} webhooks: "
                "delete one first",
            )
        if refused == "host":
            return http.error_response(
                409,
                "too_many_webhooks_for_host",
                f"{settings.max_per_host} webhooks (of all accounts together) are aimed at "
                f"host {target_host(url)!r} already, the most this server allows for one "
                "host (the operator's --webhooks-per-host)",
            )
        await self.service.changed()
        return http.json_response(
            {
                **_view(webhook),
                "secret": secret,
                "note": "store the secret now: it is shown once; verify deliveries with it "
                "(purpleflea.verify_webhook)",
            },
            201,
        )

    async def listing(self, request: Request, info: KeyInfo) -> Response:
        webhooks = await self.service.store.webhooks(info.account)
        return http.json_response({"webhooks": [_view(w) for w in webhooks]})

    async def delete(self, request: Request, info: KeyInfo) -> Response:
        webhook_id = request.path_params["webhook_id"]
        if not await self.service.store.delete(webhook_id, info.account):
            return http.error_response(
                404, "not_found", f"no webhook {webhook_id!r} in account {info.account!r}"
            )
        await self.service.changed()
        return http.json_response({"deleted": webhook_id})

    async def dead_letters(self, request: Request, info: KeyInfo) -> Response:
        webhook = await self._owned(request, info)
        if isinstance(webhook, Response):
            return webhook
        limit = http.integer(request.query_params, "limit", 100, low=1, high=1_000) or 100
        letters = await self.service.store.dead_letters(webhook.id, limit=limit)
        return http.json_response(
            {
                "webhook_id": webhook.id,
                "total": webhook.dead_letters,
                "dropped": webhook.dead_letters_dropped,
                "dead_letters": [
                    {
                        "event_id": str(letter.seq),
                        "attempts": letter.attempts,
                        "error": letter.error,
                        "failed_at": letter.failed_at,
                        "frame": msgspec.Raw(letter.body),
                    }
                    for letter in letters
                ],
            }
        )

    async def replay(self, request: Request, info: KeyInfo) -> Response:
        webhook = await self._owned(request, info)
        if isinstance(webhook, Response):
            return webhook
        limit = http.integer(request.query_params, "limit", 100, low=1, high=1_000) or 100
        # One replay of a webhook at a time, on every node sharing the store: a second one
        # would send the same letters again (both read them before either removed one).
        store, holder = self.service.store, secrets.token_hex(8)
        lease_s = REPLAY_BUDGET_S + self.service.settings.timeout_s + REPLAY_LEASE_SLACK_S
        if not await store.take_replay(
            webhook.id, holder, now_ms=now_ms(), lease_ms=int(lease_s * 1000)
        ):
            return http.error_response(
                409,
                "replay_in_progress",
                f"webhook {webhook.id!r} is being replayed already; ask again when it answers",
            )
        try:
            result = await replay_dead_letters(store, self.service.sender, webhook, limit=limit)
        finally:
            # Its failure is logged, never raised: this request's own answer (or error) is
            # what the caller needs to see.
            await self.service.release_replay(webhook.id, holder, lease_s=lease_s)
        return http.json_response({"webhook_id": webhook.id, **result})

    async def collection(self, request: Request, info: KeyInfo) -> Response:
        """``/v1/webhooks``: POST creates, GET lists (one route, so a 405 or OPTIONS names
        both methods in ``Allow``)."""
        if request.method == "POST":
            return await self.create(request, info)
        return await self.listing(request, info)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/webhooks", self.authed(self.collection), methods=["GET", "POST"]),
            Route("/v1/webhooks/{webhook_id}", self.authed(self.delete), methods=["DELETE"]),
            Route(
                "/v1/webhooks/{webhook_id}/dead-letters",
                self.authed(self.dead_letters),
                methods=["GET"],
            ),
            Route(
                "/v1/webhooks/{webhook_id}/dead-letters/replay",
                self.authed(self.replay),
                methods=["POST"],
            ),
        ]


_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _links() -> dict[str, Any]:
    """A created webhook's id reaches its other operations (stateful fuzzing follows them)."""
    return {
        name: {
            "operationId": operation,
            "parameters": {"webhook_id": "$response.body#/id"},
            "description": f"The new webhook's id: {what}.",
        }
        for name, operation, what in (
            ("deadLetters", "deadLetters", "its dead letters"),
            ("replay", "replayDeadLetters", "replay them"),
            ("delete", "deleteWebhook", "delete it"),
        )
    }


def webhook_paths(exchanges: Sequence[str]) -> dict[str, Any]:
    """The OpenAPI entries of the webhook routes (merged into ``openapi.document``);
    ``exchanges`` are the ids filters take."""
    secured: list[dict[str, list[str]]] = [
        {"bearer": []},
        {"apiKeyHeader": []},
        {"apiKeyQuery": []},
    ]

    def listed(items: dict[str, Any]) -> dict[str, Any]:
        # null is taken as "not given", as the stream's subscribe message takes it.
        return {"type": ["array", "null"], "items": items, "maxItems": 500}

    markets = listed({"type": "string", "minLength": 1, "maxLength": 64, "pattern": MARKET_PATTERN})
    errors = {
        "400": _json("Bad request", _ERROR_REF),
        "401": _json("Missing or invalid API key", _ERROR_REF),
        "429": _json("Rate limited (see Retry-After)", _ERROR_REF),
    }
    webhook_id = {
        "name": "webhook_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "The webhook's id (wh_...).",
    }
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
        "description": "At most this many dead letters (default 100), oldest first.",
    }
    not_found = {"404": _json("No such webhook in the caller's account", _ERROR_REF)}
    names = {"type": "array", "items": {"type": "string"}}
    webhook: dict[str, Any] = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "wh_..."},
            "url": {"type": "string"},
            "filters": {
                "type": "object",
                "description": "The stream's filters it was made with (an empty list: any).",
                "properties": {
                    "channels": names,
                    "min_usd": {"type": "number"},
                    "markets": names,
                    "exchanges": names,
                    "sides": names,
                    "coverages": names,
                },
            },
            "created_at": {"type": "integer", "description": "ms since the epoch"},
            "dead_letters": {"type": "integer", "description": "Dead letters held."},
            "dead_letters_dropped": {
                "type": "integer",
                "description": "Dead letters dropped: the list keeps the newest.",
            },
        },
        "required": ["id", "url", "filters", "created_at", "dead_letters", "dead_letters_dropped"],
    }
    created = {
        "type": "object",
        "properties": {
            **webhook["properties"],
            "secret": {"type": "string", "description": "The HMAC key: shown this once."},
            "note": {"type": "string"},
        },
        "required": [*webhook["required"], "secret"],
    }
    listing = {
        "type": "object",
        "properties": {"webhooks": {"type": "array", "items": webhook}},
        "required": ["webhooks"],
    }
    deleted = {
        "type": "object",
        "properties": {"deleted": {"type": "string", "description": "The webhook's id."}},
        "required": ["deleted"],
    }
    letters = {
        "type": "object",
        "properties": {
            "webhook_id": {"type": "string"},
            "total": {"type": "integer", "description": "Dead letters held."},
            "dropped": {"type": "integer", "description": "Dead letters dropped."},
            "dead_letters": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "event_id": {
                            "type": "string",
                            "description": "The item's seq (X-Purpleflea-Event-Id).",
                        },
                        "attempts": {"type": "integer"},
                        "error": {"type": "string", "description": "The last attempt's."},
                        "failed_at": {"type": "integer", "description": "ms since the epoch"},
                        "frame": {
                            "type": "object",
                            "description": "The body that was sent: a stream frame.",
                        },
                    },
                    "required": ["event_id", "attempts", "error", "failed_at", "frame"],
                },
            },
        },
        "required": ["webhook_id", "total", "dropped", "dead_letters"],
    }
    replayed = {
        "type": "object",
        "properties": {
            "webhook_id": {"type": "string"},
            "delivered": {"type": "integer"},
            "failed": {
                "type": ["object", "null"],
                "description": "The letter whose delivery failed (the replay stopped there).",
                "properties": {"seq": {"type": "integer"}, "error": {"type": "string"}},
                "required": ["seq", "error"],
            },
            "remaining": {"type": "integer", "description": "Dead letters still held."},
            "more": {
                "type": "boolean",
                "description": "The answer came after ~3 s with letters left: ask again.",
            },
        },
        "required": ["webhook_id", "delivered", "failed", "remaining", "more"],
    }
    return {
        "/v1/webhooks": {
            "post": {
                "operationId": "createWebhook",
                "summary": "Create a webhook: signed POSTs of the stream's frames to a URL, "
                "with the stream's filters (docs/webhooks.md).",
                "security": secured,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["url"],
                                "additionalProperties": False,
                                "properties": {
                                    "url": {
                                        "type": "string",
                                        "maxLength": MAX_URL,
                                        "pattern": r"^https?://([A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}\.?(:[0-9]{1,4})?(/\S*)?$",
                                        "description": "http(s) target; private, loopback "
                                        "and link-local hosts are refused unless the "
                                        "operator allows them (docs/webhooks.md)",
                                    },
                                    "secret": {
                                        "type": ["string", "null"],
                                        "minLength": _SECRET_MIN,
                                        "maxLength": _SECRET_MAX,
                                        "description": "HMAC key (generated when left out or null)",
                                    },
                                    "channels": listed(
                                        {"type": "string", "enum": ["liquidations", "cascades"]}
                                    ),
                                    "min_usd": {"type": "number", "minimum": 0},
                                    "markets": markets,
                                    "exchanges": listed({"type": "string", "enum": exchanges}),
                                    "sides": listed({"type": "string", "enum": ["long", "short"]}),
                                    "coverages": listed(
                                        {"type": "string", "enum": list(COVERAGES)}
                                    ),
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json("Created: the secret is shown once.", created)
                    | {"links": _links()},
                    "409": _json(
                        "The account's webhook limit is reached (too_many_webhooks), or the "
                        "server's for the URL's host (too_many_webhooks_for_host)",
                        _ERROR_REF,
                    ),
                    **errors,
                },
            },
            "get": {
                "operationId": "listWebhooks",
                "summary": "The caller's webhooks (without secrets), with dead-letter counts.",
                "security": secured,
                "responses": {"200": _json("OK", listing), **errors},
            },
        },
        "/v1/webhooks/{webhook_id}": {
            "delete": {
                "operationId": "deleteWebhook",
                "summary": "Delete a webhook and its dead letters.",
                "security": secured,
                "parameters": [webhook_id],
                "responses": {"200": _json("OK", deleted), **errors, **not_found},
            }
        },
        "/v1/webhooks/{webhook_id}/dead-letters": {
            "get": {
                "operationId": "deadLetters",
                "summary": "Deliveries that failed every attempt, oldest first.",
                "security": secured,
                "parameters": [webhook_id, limit],
                "responses": {"200": _json("OK", letters), **errors, **not_found},
            }
        },
        "/v1/webhooks/{webhook_id}/dead-letters/replay": {
            "post": {
                "operationId": "replayDeadLetters",
                "summary": "Send dead letters again, oldest first, until one fails; the "
                "delivered ones are removed.",
                "security": secured,
                "parameters": [webhook_id, limit],
                "responses": {
                    "200": _json("OK", replayed),
                    **errors,
                    **not_found,
                    "409": _json("A replay of this webhook is running", _ERROR_REF),
                },
            }
        },
    }
