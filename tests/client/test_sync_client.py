"""The blocking client where a builder calls it: a script, or a notebook whose thread already
runs an event loop."""

from __future__ import annotations

import gc

import pytest

from purpleflea.client import ServerUnreachableError, SyncLiquidationClient
from tests.server.test_process import _free_port


async def test_calls_work_where_an_event_loop_runs_already() -> None:
    # A Jupyter cell runs inside the kernel's event loop: every call raised "RuntimeError:
    # Cannot run the event loop while another loop is running" before reaching the server.
    url = f"http://127.0.0.1:{_free_port()}"
    with SyncLiquidationClient(api_key="pf_x", base_url=url) as liq:
        with pytest.raises(ServerUnreachableError, match=f"no Purple Flea server answers at {url}"):
            liq.markets()
        with pytest.raises(ServerUnreachableError):
            liq.history()


def test_close_twice_is_harmless() -> None:
    liq = SyncLiquidationClient(api_key="pf_x", base_url="http://127.0.0.1:9")
    liq.close()
    liq.close()


def test_a_client_dropped_unclosed_stops_its_thread() -> None:
    # A notebook cell run again makes a new client and drops the old one unclosed: each one's
    # event loop thread ran for the rest of the session.
    liq = SyncLiquidationClient(api_key="pf_x", base_url="http://127.0.0.1:9")
    thread = liq._thread
    assert thread.is_alive()
    del liq
    gc.collect()
    thread.join(5.0)
    assert not thread.is_alive()
