"""Schemathesis against the served ``/openapi.json``: no generated request gets a 5xx.

Every operation of the spec is fuzzed with valid inputs (positive mode) and with inputs that
break the spec (negative mode), with a valid key, against a live loopback server holding
events. Examples are bounded and derandomized so the test is fast and repeatable.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from tests.reliability.conftest import SEEDED, Running, reliability_config, running_server
from tests.server.conftest import venue_event

EXAMPLES = 30
#: The SSE route answers and then streams forever: schemathesis reads it for this long (total).
SSE_READ_S = 0.3
SSE_EXAMPLES = 4


@contextmanager
def server_in_thread(tmp_path: Path) -> Iterator[Running]:
    """A seeded server on its own event loop thread (schemathesis calls it synchronously)."""
    ready = threading.Event()
    box: list[Running] = []
    failure: list[BaseException] = []
    stop: list[asyncio.Event] = []
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        stop.append(asyncio.Event())
        async with running_server(reliability_config(tmp_path)) as running:
            await running.push(
                *(venue_event(market=m, side=s, size_usd=u, exchange=x) for m, s, u, x in SEEDED)
            )
            box.append(running)
            ready.set()
            await stop[0].wait()

    def run() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(30)
    if failure:
        raise failure[0]
    try:
        yield box[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(30)
        loop.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with server_in_thread(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


def _operations(url: str) -> list[schemathesis.APIOperation]:  # type: ignore[name-defined]
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def fuzz(
    operation: schemathesis.APIOperation,  # type: ignore[name-defined]
    mode: GenerationMode,
    served: Running,
    headers: dict[str, str],
    calls: list[int],
) -> None:
    """Call ``operation`` with generated cases; fail on the first 5xx."""
    streaming = operation.path.endswith("/sse")
    timeout = SSE_READ_S if streaming else 10

    @settings(
        max_examples=SSE_EXAMPLES if streaming else EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=served.url, headers=headers, timeout=timeout)
        calls.append(response.status_code)
        assert response.status_code < 500, (
            f"{case.operation.label} -> {response.status_code}: {response.text[:300]}\n"
            f"{case.as_curl_command(headers=headers)}"
        )

    check()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_gets_a_server_error(served: Running, mode: GenerationMode) -> None:
    operations = _operations(served.url)
    labels = {op.label for op in operations}
    assert "GET /v1/liquidations" in labels  # the spec was read, not an empty document
    headers = {"Authorization": f"Bearer {served.key}"}
    calls: list[int] = []
    unsatisfiable: list[str] = []
    for operation in operations:
        try:
            fuzz(operation, mode, served, headers, calls)
        except Unsatisfiable:
            # Negative mode: an operation without parameters or body has no invalid input.
            assert mode is GenerationMode.NEGATIVE, operation.label
            unsatisfiable.append(operation.label)
    assert len(unsatisfiable) < len(operations) / 2, unsatisfiable
    assert len(calls) >= len(operations) - len(unsatisfiable)  # every operation was called
    assert 200 in calls or 201 in calls or mode is GenerationMode.NEGATIVE
