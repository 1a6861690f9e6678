"""The stream registry on its own: caps per account whatever the key, revocation by key."""

from __future__ import annotations

import pytest

from purpleflea.server.auth import AuthError, StreamRegistry
from purpleflea.server.keys import KeyInfo


def _key(key_id: str, account: str) -> KeyInfo:
    return KeyInfo(key_id=key_id, account=account, name="test", created_at=0)


class _Stream:
    """A stream's kick callback that remembers why it was kicked."""

    def __init__(self) -> None:
        self.kicked: list[str] = []

    def __call__(self, why: str) -> None:
        self.kicked.append(why)


def test_open_streams_are_capped_per_account_across_its_keys() -> None:
    registry = StreamRegistry(max_per_account=2, opens_per_min=100)
    first, second, other = _key("k1", "acme"), _key("k2", "acme"), _key("k3", "else")
    streams = [_Stream(), _Stream()]
    registry.add(first, streams[0])
    registry.add(second, streams[1])
    with pytest.raises(AuthError) as refused:
        registry.add(second, _Stream())
    assert (refused.value.status, refused.value.code) == (429, "too_many_streams")
    assert refused.value.retry_after is not None
    registry.add(other, _Stream())  # another account has its own cap
    registry.remove(streams[0])
    registry.add(second, _Stream())  # a closed stream frees its slot
    assert (registry.open_for("acme"), registry.open_for("else"), len(registry)) == (2, 1, 3)


def test_opens_per_minute_are_limited_per_account() -> None:
    now = [0.0]
    registry = StreamRegistry(max_per_account=100, opens_per_min=3, clock=lambda: now[0])
    streams = [_Stream() for _ in range(4)]
    for n, stream in enumerate(streams[:3]):
        registry.add(_key(f"k{n}", "acme"), stream)
        registry.remove(stream)  # closing does not give the open back
    with pytest.raises(AuthError) as refused:
        registry.add(_key("k9", "acme"), streams[3])
    assert refused.value.code == "rate_limited"
    assert refused.value.retry_after == "20"  # one open per 20 s at 3 a minute
    now[0] = 20.0
    registry.add(_key("k9", "acme"), streams[3])


def test_revoking_kicks_that_keys_streams_which_count_until_they_close() -> None:
    registry = StreamRegistry(max_per_account=3)
    revoked, kept = _Stream(), _Stream()
    registry.add(_key("k1", "acme"), revoked)
    registry.add(_key("k2", "acme"), kept)
    assert registry.kick("k1", "key_revoked") == 1
    assert (revoked.kicked, kept.kicked) == (["key_revoked"], [])
    assert registry.open_for("acme") == 2  # still open until the stream has closed
    registry.remove(revoked)
    registry.remove(revoked)  # closing twice is harmless
    assert registry.open_for("acme") == 1
    assert registry.kick("k1", "key_revoked") == 0
    assert registry.kick_all("server_shutdown") == 1
    assert kept.kicked == ["server_shutdown"]


def test_a_short_wait_to_open_reads_as_a_tenth_of_a_second_not_zero() -> None:
    # A wait under 0.05 s read "retry after 0.0 s": as if there were none.
    now = [0.0]
    registry = StreamRegistry(max_per_account=100, opens_per_min=60, clock=lambda: now[0])
    for n in range(60):  # the minute's burst
        registry.add(_key(f"k{n}", "acme"), _Stream())
    now[0] = 0.98  # 0.02 s before the next open is allowed
    with pytest.raises(AuthError) as refused:
        registry.add(_key("k60", "acme"), _Stream())
    assert refused.value.message.endswith("; retry after 0.1 s")
