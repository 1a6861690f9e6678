"""The blocking client where a builder calls it: a script, or a notebook whose thread already
runs an event loop."""

from __future__ import annotations

import concurrent.futures
import gc
from collections.abc import Coroutine
from typing import Any

import pytest

from purpleflea.client import ServerUnreachableError, SyncLiquidationClient, sync
from tests.ports import refused_url


async def test_calls_work_where_an_event_loop_runs_already() -> None:
    # A Jupyter cell runs inside the kernel's event loop: every call raised "RuntimeError:
    # Cannot run the event loop while another loop is running" before reaching the server.
    with refused_url() as url, SyncLiquidationClient(api_key="pf_x", base_url=url) as liq:
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


#: The child: a blocking call or stream on a server that accepts and never answers; once the
#: parent says the server holds the connection, Ctrl-C's SIGINT lands on one of the client's
#: own threads. POSIX lets the kernel hand a process's signal to any thread that does not
#: block it (Linux tries the main thread first; macOS does not), and then the caller, blocked
#: without a timeout, never ran the KeyboardInterrupt: the script hung until killed.
_INTERRUPTED = """
import signal, sys, threading
import purpleflea

liq = purpleflea.SyncLiquidationClient(api_key="pf_x", base_url=sys.argv[1], timeout=120)
main = threading.current_thread()


def ctrl_c() -> None:
    sys.stdin.readline()  # the parent: the server holds our connection
    others = [t for t in threading.enumerate() if t not in (main, threading.current_thread())]
    signal.pthread_kill(others[-1].ident, signal.SIGINT)


threading.Thread(target=ctrl_c, daemon=True).start()
try:
    if sys.argv[2] == "call":
        liq.markets()
    else:
        next(iter(liq.stream()))
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.mark.parametrize("how", ["call", "stream"])
async def test_ctrl_c_stops_a_blocking_call_or_stream_whichever_thread_it_lands_on(
    how: str,
) -> None:
    import asyncio
    import sys

    held: list[asyncio.StreamWriter] = []
    accepted = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # never answered
        accepted.set()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _INTERRUPTED,
        url,
        how,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            await accepted.wait()
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        try:
            async with asyncio.timeout(15):  # the fix answers within a fraction of a second
                out, _ = await child.communicate()
        except TimeoutError:
            pytest.fail(f"the {how} ignored Ctrl-C that landed on the client's thread")
        assert out.decode().strip() == "interrupted"
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        for writer in held:
            writer.close()
        server.close()


def test_a_calls_own_timeout_error_is_raised_not_waited_on_for_ever() -> None:
    # The caller waits in slices of WAKE_S: a TimeoutError the call itself raised must come
    # out, not read as "not done yet" (future.result raises it again at once, for ever).
    async def times_out() -> None:
        raise TimeoutError("the call's own")

    with (
        SyncLiquidationClient(api_key="pf_x", base_url="http://127.0.0.1:9") as liq,
        pytest.raises(TimeoutError, match="the call's own"),
    ):
        liq._run(times_out())


def test_a_call_done_just_after_a_wait_slice_gives_its_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The call completes between the end of a WAKE_S slice and the caller's look at it (the
    # caller's thread waits for the GIL the client's loop thread holds while it finishes the
    # call): the answer is the call's, not the slice's TimeoutError.
    class DoneLate(concurrent.futures.Future[str]):
        def result(self, timeout: float | None = None) -> str:
            try:
                return super().result(timeout)
            except TimeoutError:
                if not self.done():
                    self.set_result("the answer")  # done now, just after this slice
                raise

    def submit(work: Coroutine[Any, Any, str], loop: object) -> DoneLate:
        work.close()
        return DoneLate()

    async def answer() -> str:
        return "the answer"

    monkeypatch.setattr(sync, "WAKE_S", 0.001)
    with SyncLiquidationClient(api_key="pf_x", base_url="http://127.0.0.1:9") as liq:
        with monkeypatch.context() as patched:  # not for the close, which submits its own
            patched.setattr(sync.asyncio, "run_coroutine_threadsafe", submit)
            got = liq._run(answer())
        assert got == "the answer"
