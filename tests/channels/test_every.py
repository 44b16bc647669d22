"""The loop of periodic workers (:func:`bot.channels.supervisor.every`): held messages' release,
the reports' update poller and pushed updates."""

from __future__ import annotations

import asyncio

from bot.channels.supervisor import every


async def test_the_step_runs_again_after_each_wait_until_stopped() -> None:
    stop = asyncio.Event()
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            stop.set()

    await asyncio.wait_for(every(stop, 0.01, step), 5)
    assert calls == 3


async def test_a_stop_ends_the_wait_at_once() -> None:
    stop = asyncio.Event()
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1
        asyncio.get_running_loop().call_later(0.05, stop.set)

    await asyncio.wait_for(every(stop, 3600, step), 5)  # not an hour
    assert calls == 1


async def test_nothing_runs_once_stopped() -> None:
    stop = asyncio.Event()
    stop.set()

    async def step() -> None:
        raise AssertionError("ran after the stop")

    await every(stop, 0.01, step)
