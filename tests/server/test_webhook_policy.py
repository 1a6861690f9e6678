"""The webhook rules without a socket: retry decisions, backoff, Retry-After, targets."""

from __future__ import annotations

import email.utils

import pytest

from purpleflea.clock import retry_after_seconds
from purpleflea.server.webhook_policy import (
    BadWebhookUrl,
    Outcome,
    WebhookSettings,
    backoff,
    check_url,
    decide,
    public_address,
)

SETTINGS = WebhookSettings(attempts=5, backoff_s=1.0, backoff_max_s=10.0)


def _top() -> float:
    return 1.0  # the jitter's upper end: the full ceiling


def _bottom() -> float:
    return 0.0


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_any_2xx_is_delivered(status: int) -> None:
    assert decide(SETTINGS, 1, Outcome(status=status)).delivered


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome(status=500),
        Outcome(status=502),
        Outcome(status=503),
        Outcome(error="timeout (ReadTimeout)"),
        Outcome(error="ConnectError: refused"),
        Outcome(status=408),
        Outcome(status=429),
    ],
)
def test_server_errors_timeouts_connection_errors_408_and_429_are_retried(
    outcome: Outcome,
) -> None:
    decision = decide(SETTINGS, 1, outcome, _top)
    assert not decision.delivered
    assert decision.retry_in == 1.0


@pytest.mark.parametrize("status", [301, 302, 400, 401, 403, 404, 410, 413, 422])
def test_other_4xx_and_redirects_are_not_retried(status: int) -> None:
    decision = decide(SETTINGS, 1, Outcome(status=status), _top)
    assert not decision.delivered
    assert decision.retry_in is None


def test_a_refused_target_is_not_retried() -> None:
    assert decide(SETTINGS, 1, Outcome(error="refused: private", refused=True)).retry_in is None


def test_the_last_attempt_gives_up() -> None:
    assert decide(SETTINGS, 4, Outcome(status=500), _top).retry_in is not None
    assert decide(SETTINGS, 5, Outcome(status=500), _top).retry_in is None
    assert decide(WebhookSettings(attempts=1), 1, Outcome(status=500)).retry_in is None


def test_backoff_doubles_up_to_the_ceiling_with_jitter_over_its_upper_half() -> None:
    ceilings = [backoff(SETTINGS, retry, _top) for retry in range(1, 8)]
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    floors = [backoff(SETTINGS, retry, _bottom) for retry in range(1, 5)]
    assert floors == [0.5, 1.0, 2.0, 4.0]
    assert backoff(SETTINGS, 10_000, _top) == 10.0  # no overflow on a huge retry count


def test_retry_after_is_honoured_up_to_the_ceiling() -> None:
    later = decide(SETTINGS, 1, Outcome(status=429, retry_after=7.0), _bottom)
    assert later.retry_in == 7.0
    sooner = decide(SETTINGS, 3, Outcome(status=429, retry_after=0.0), _top)
    assert sooner.retry_in == 4.0  # the backoff is still the floor
    capped = decide(SETTINGS, 1, Outcome(status=408, retry_after=86_400.0), _top)
    assert capped.retry_in == 10.0


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = 1_760_000_000.0
    assert retry_after_seconds("30", now=now) == 30.0
    date = email.utils.formatdate(now + 90, usegmt=True)
    assert retry_after_seconds(date, now=now) == pytest.approx(90.0)
    assert retry_after_seconds(email.utils.formatdate(now - 90, usegmt=True), now=now) == 0.0
    assert retry_after_seconds(None, now=now) is None
    assert retry_after_seconds("soon", now=now) is None


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("224.0.0.1", False),
        # IPv6 forms that carry an IPv4 address (a NAT64 gateway, common on IPv6-only cloud
        # networks, translates 64:ff9b::10.0.0.5 to 10.0.0.5): judged by that address.
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b::a00:5", False),  # NAT64 of 10.0.0.5
        ("64:ff9b::7f00:1", False),
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8: an IPv6-only server's way out
        ("64:ff9b:1::a00:5", False),  # local-use NAT64 prefix (RFC 8215)
        ("::ffff:0:a9fe:a9fe", False),  # IPv4-translated (SIIT)
        ("::a9fe:a9fe", False),  # IPv4-compatible (deprecated)
        ("::7f00:1", False),
        ("2002:a9fe:a9fe::1", False),  # 6to4 of 169.254.169.254
        ("2002:0a00:0005::1", False),
        ("2002:808:808::1", True),
        # Site-local (deprecated by RFC 3879, still routed inside some networks): Python's
        # is_global says True.
        ("fec0::1", False),
        ("feff:ffff::1", False),
    ],
)
def test_public_address(address: str, public: bool) -> None:
    assert public_address(address) is public


def test_urls_must_be_http_or_https_with_a_host() -> None:
    assert check_url(" https://hooks.example.com/pf ", allow_private=False) == (
        "https://hooks.example.com/pf"
    )
    for bad, why in [
        ("ftp://example.com/x", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        # No scheme: "not ''" (or "not 'localhost'" for localhost:8080/x) named none.
        ("example.com/x", r"has no scheme: give it as https://example\.com/x or http://"),
        ("localhost:8080/x", r"has no scheme: give it as https://localhost:8080/x or http://"),
        ("mailto:ops@example.com", "only http and https are allowed, not 'mailto'"),
        ("http:///path", "names no host"),
        ("http://example.com:port/", "not a valid URL"),
        ("", "must be an http"),
        (None, "must be an http"),
        (42, "must be an http"),
        ("https://example.com/" + "x" * 2_000, "longer than"),
        # Names the delivering client or the resolver cannot encode: they were accepted
        # (201), and the webhook's delivery task died on its first event, silently.
        ("http://xn--/", "not a valid URL"),
        ("http://a..b/", "not a valid URL"),
        ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "not a valid URL"),  # fullwidth
        ("http://" + "a" * 64 + ".com/", "not a valid URL"),  # a label over 63
    ]:
        with pytest.raises(BadWebhookUrl, match=why):
            check_url(bad, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "http://api.localhost/hook",
        "http://LOCALHOST./hook",  # the fully qualified name, in capitals
        "http://api.localhost./hook",
        "http://[::1]/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data",
    ],
)
def test_private_literal_targets_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(BadWebhookUrl, match="refused"):
        check_url(url, allow_private=False)
    assert check_url(url, allow_private=True) == url


def test_private_targets_default_to_allowed_only_on_a_loopback_server() -> None:
    auto = WebhookSettings()
    assert auto.private_allowed("127.0.0.1")
    assert auto.private_allowed("localhost")
    assert not auto.private_allowed("0.0.0.0")
    assert not auto.private_allowed("203.0.113.7")
    assert WebhookSettings(allow_private=False).private_allowed("127.0.0.1") is False
    assert WebhookSettings(allow_private=True).private_allowed("0.0.0.0") is True
    # Behind a reverse proxy on this machine, other machines' requests come in on loopback.
    assert not auto.private_allowed("127.0.0.1", proxied=True)
    assert WebhookSettings(allow_private=True).private_allowed("127.0.0.1", proxied=True)


@pytest.mark.parametrize(
    ("field", "value"),
    [("attempts", 0), ("backoff_s", 0.0), ("timeout_s", float("nan")), ("queue", 0)],
)
def test_settings_refuse_values_that_would_stop_delivery(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        WebhookSettings(**{field: value})  # type: ignore[arg-type]
