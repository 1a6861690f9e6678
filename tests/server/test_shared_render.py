"""server/shared_render.py: one render shared by the requests waiting for it, none stale."""

from __future__ import annotations

import asyncio

from purpleflea.server.shared_render import BudgetedRender


async def test_beyond_the_budget_waiting_requests_share_one_render_made_after_they_asked() -> None:
    state = [0]  # what an action changes; the render reports it
    cpu = [0.0]

    def render() -> int:
        cpu[0] += 0.010  # each render costs 10 ms of (this test's) CPU
        return state[0]

    now = [0.0]  # the budget's clock: still while the reads come in
    shared = BudgetedRender(
        render, share=0.1, burst_s=0.05, clock=lambda: now[0], cpu=lambda: cpu[0]
    )

    async def ask() -> tuple[int, int]:
        asked = state[0]
        return asked, await shared.get()

    asks = []
    for n in range(50):
        state[0] = n  # an action, then a read
        asks.append(asyncio.ensure_future(ask()))
        await asyncio.sleep(0)  # the read begins before the next action
    now[0] += 1.0  # the budget refills: the waiting render, asleep on the real clock, goes
    answers = await asyncio.gather(*asks)
    assert all(got >= asked for asked, got in answers)  # none stale
    # The burst (50 ms of CPU) renders five at once; the other 45 waited for one render.
    assert shared.renders == 6
    assert shared.shared == 45
    assert [got for _, got in answers[5:]] == [49] * 45
