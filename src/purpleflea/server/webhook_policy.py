"""The webhook rules, pure: which targets are allowed, and what to do after an attempt.

The dispatcher (:mod:`purpleflea.server.webhook_dispatch`) performs; this module decides, so
every rule is tested without a socket.

Retries: a 2xx is delivered. A 5xx, a timeout or a connection error is retried with
exponential backoff and jitter, up to ``attempts`` tries in all. A 4xx is the receiver saying
the request is wrong and sending it again will not help: not retried, except 408 (request
timeout) and 429 (too many requests), whose ``Retry-After`` is honoured (up to the backoff
ceiling, so one receiver cannot park its queue for a day). A 3xx is not followed (a redirect
could point anywhere, including inside our network) and counts as a failure.

Targets (server-side request forgery): a webhook makes *this server* send requests to a URL a
user chose. Pointed at ``127.0.0.1``, ``10.x``, ``169.254.169.254`` (cloud metadata) and the
like, it would let anyone with a free key probe the operator's private network. With
``allow_private`` false, a target must be ``http``/``https`` and every address its host
resolves to must be public; the dispatcher checks the resolved addresses before each attempt.
"""

from __future__ import annotations

import ipaddress
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from purpleflea.addresses import carried_ipv4
from purpleflea.server.host_check import loopback_bind, loopback_name
from purpleflea.server.webhook_budget import BudgetLimits

MAX_URL = 2_000


class BadWebhookUrl(ValueError):
    """A webhook URL that may not be used; the message says why."""


@dataclass(frozen=True)
class WebhookSettings:
    """How webhooks are delivered (``ServerConfig.webhooks``)."""

    #: Attempts per delivery in all (the first plus the retries).
    attempts: int = 8
    #: Backoff before the first retry; it doubles per retry up to ``backoff_max_s``.
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    #: One attempt's timeout (connect, send and response headers).
    timeout_s: float = 5.0
    #: Deliveries waiting per webhook; beyond it they go straight to the dead letters.
    queue: int = 1_000
    #: Dead letters kept per webhook (the oldest are dropped, and counted, beyond it).
    dead_letters: int = 1_000
    max_per_account: int = 10
    #: Webhooks aimed at one host (their URLs' host, normalized: :func:`target_host`), all
    #: accounts together; 0: no cap. Accounts are free: without it, N accounts made 10 N
    #: deliveries of every item to one target (docs/security.md).
    max_per_host: int = 20
    #: Deliveries a second to one destination address, all webhooks together (0: no
    #: budget), beyond a burst of ``destination_burst``; and bytes a second (0: no budget).
    #: See :mod:`purpleflea.server.webhook_budget`.
    #: 100/s: ~0.56 of a core of this server's delivery work at the ~5.6 ms of CPU a
    #: delivery costs on the loaded 2-core test VM, ~70 KB/s of frames at the victim; one
    #: webhook over the internet (one delivery in flight, 20-100 ms a round trip) gets
    #: 10-50/s anyway (bench/results/attack.md).
    destination_rate: float = 100.0
    destination_burst: int = 200
    #: A backstop for large frames: 100 frames of ~0.7-1.5 KB a second stay under it.
    destination_bytes_per_s: float = 262_144.0
    #: Private, loopback and link-local targets: None allows them only when the server
    #: listens on loopback alone (then only this machine's users can register webhooks).
    allow_private: bool | None = None
    #: How often the delivering node re-reads the list (webhooks made on other API nodes)
    #: and saves how far each webhook is settled (where a restart resumes).
    reload_s: float = 2.0
    #: Bytes of frames the delivering node's one bus subscription may hold while its event
    #: loop is busy (it only copies them into the webhooks' queues): about 100,000 frames of
    #: ~320 bytes. Past it the bus cuts the subscription; what was published meanwhile is
    #: then read back from the history store (docs/webhooks.md). It was 100_000, meant as
    #: items and read by the bus as bytes: 317 frames, which a crash's burst overflowed.
    bus_buffer_bytes: int = 32 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"webhook attempts must be at least 1, got {self.attempts}")
        for name in ("backoff_s", "backoff_max_s", "timeout_s", "reload_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"webhook {name} must be a positive number, got {value!r}")
        for name in ("queue", "dead_letters", "max_per_account", "bus_buffer_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"webhook {name} must be at least 1, got {getattr(self, name)}")
        if self.max_per_host < 0:
            raise ValueError(f"webhook max_per_host must be 0 or more, got {self.max_per_host}")
        self.budget  # noqa: B018 - raises on a bad rate, burst or byte rate

    @property
    def budget(self) -> BudgetLimits:
        """The per-destination delivery budget these settings give."""
        return BudgetLimits(
            rate=self.destination_rate,
            burst=self.destination_burst,
            bytes_per_s=self.destination_bytes_per_s,
        )

    def private_allowed(self, host: str, *, proxied: bool = False) -> bool:
        """Whether targets on private addresses are allowed for a server bound to ``host``;
        ``proxied``: a reverse proxy on this machine brings other machines' requests to it
        (``--allowed-host``, ``--trusted-proxy``), so a loopback bind no longer means that
        only this machine's users create webhooks."""
        if self.allow_private is not None:
            return self.allow_private
        return loopback_bind(host) and not proxied


#: The local-use NAT64 prefix (RFC 8215): a site's own translator, never a public address.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
#: Site-local addresses (RFC 3879 deprecated them; networks that still route them route them
#: inside): Python's ``is_global`` calls them global.
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")


def public_address(address: str) -> bool:
    """Whether ``address`` (an IP) is on the public internet: not loopback, private,
    link-local (cloud metadata), multicast, reserved or unspecified. An IPv6 address that
    carries an IPv4 address (mapped, translated, NAT64, 6to4) is judged by that address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _LOCAL_NAT64 or ip in _SITE_LOCAL:
            return False
        carried = carried_ipv4(ip)
        if carried is not None:
            return carried.is_global and not carried.is_multicast
    return ip.is_global and not ip.is_multicast


def check_url(url: object, *, allow_private: bool) -> str:
    """``url`` if it may be a webhook target; raises :class:`BadWebhookUrl` naming why not.

    Host names are resolved only when delivering (their addresses can change); here a literal
    address or ``localhost`` is refused when private targets are not allowed.
    """
    if not isinstance(url, str) or not url.strip():
        raise BadWebhookUrl("url must be an http:// or https:// URL")
    url = url.strip()
    if len(url) > MAX_URL:
        raise BadWebhookUrl(f"url is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise BadWebhookUrl(f"url {url!r} is not a valid URL: {exc}") from None
    if "://" not in url and (not parts.scheme or url[len(parts.scheme) + 1 :][:1].isdigit()):
        # `example.com/x` has no scheme and `localhost:8080/x` reads as the scheme "localhost":
        # "not ''" and "not 'localhost'" named none.
        raise BadWebhookUrl(f"url {url!r} has no scheme: give it as https://{url} or http://{url}")
    if parts.scheme not in ("http", "https"):
        raise BadWebhookUrl(f"url {url!r}: only http and https are allowed, not {parts.scheme!r}")
    if not host:
        raise BadWebhookUrl(f"url {url!r} names no host")
    try:  # as the delivering client and the resolver read it: such a name never goes out
        parsed = httpx.URL(url)
        parsed.host  # noqa: B018 - decodes an IDNA name ("xn--" alone is none)
        parsed.raw_host.decode("ascii").encode("idna")
    except (httpx.InvalidURL, ValueError) as exc:
        raise BadWebhookUrl(f"url {url!r} is not a valid URL: {exc}") from None
    if allow_private:
        return url
    if loopback_name(host):  # localhost, *.localhost, with the trailing dot of a full name
        raise BadWebhookUrl(f"url {url!r}: loopback targets are refused on this server")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return url  # a name: checked when it is resolved, before each attempt
    if not public_address(str(literal)):
        raise BadWebhookUrl(f"url {url!r}: private, loopback and link-local targets are refused")
    return url


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got: an HTTP status, or ``error`` (timeout, connection refused, ...);
    ``refused`` when the target was not even tried (a private address): never retried."""

    status: int | None = None
    error: str = ""
    retry_after: float | None = None
    refused: bool = False

    def describe(self) -> str:
        return f"HTTP {self.status}" if self.status is not None else self.error


@dataclass(frozen=True, slots=True)
class Decision:
    """``delivered``; or ``retry_in`` seconds; or neither: give up (dead letter)."""

    delivered: bool = False
    retry_in: float | None = None


def backoff(settings: WebhookSettings, retry: int, rand: Callable[[], float]) -> float:
    """Seconds before retry number ``retry`` (1 = the first): ``backoff_s * 2**(retry-1)``,
    capped, with jitter over its upper half so receivers that failed together do not all come
    back in the same instant."""
    ceiling = min(settings.backoff_max_s, settings.backoff_s * 2.0 ** min(retry - 1, 30))
    return ceiling / 2 + rand() * ceiling / 2


def decide(
    settings: WebhookSettings,
    attempt: int,
    outcome: Outcome,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """What to do after attempt number ``attempt`` (1 = the first) got ``outcome``."""
    status = outcome.status
    if status is not None and 200 <= status < 300:
        return Decision(delivered=True)
    retryable = not outcome.refused and (status is None or status >= 500 or status in (408, 429))
    if not retryable or attempt >= settings.attempts:
        return Decision()
    wait = backoff(settings, attempt, rand)
    if outcome.retry_after is not None:
        wait = max(wait, min(outcome.retry_after, settings.backoff_max_s))
    return Decision(retry_in=wait)
