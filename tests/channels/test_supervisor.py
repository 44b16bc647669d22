"""A worker that ends is logged and started again; a stopped one is not."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.channels.supervisor import supervise


async def test_a_worker_that_dies_is_logged_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    runs = 0

    async def worker() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise OverflowError("timestamp out of range for platform time_t")
        if runs == 2:
            return  # ended without being asked to
        stop.set()

    with caplog.at_level(logging.ERROR, "bot.channels.supervisor"):
        await asyncio.wait_for(supervise("outbox", worker, stop, first_delay=0.01), 5)
    assert runs == 3
    first, second = caplog.records
    assert first.getMessage().startswith("outbox stopped with an error; restarting in 0 s")
    assert "OverflowError: timestamp out of range" in caplog.text  # with its traceback
    assert second.getMessage() == "outbox ended without being stopped; restarting in 0 s"


async def test_a_stop_ends_the_wait_before_a_restart() -> None:
    stop = asyncio.Event()

    async def worker() -> None:
        stop.set()
        raise RuntimeError("dies as the server stops")

    await asyncio.wait_for(supervise("inbox", worker, stop, first_delay=3600), 5)
