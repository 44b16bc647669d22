"""A worker that ends is logged and started again; a stopped one is not."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence

import pytest
import redis.asyncio

from bot.channels.base import InboundMessage, OutboundMessage
from bot.channels.inbox import Inbox, InboxWorker
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


async def test_a_restarted_inbox_worker_answers_what_it_held(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    await inbox.accept(
        [
            InboundMessage(
                channel="telegram",
                account="councilbot",
                sender="123456789",
                message_id="1",
                text="When is my bin day?",
                received_at=time.time(),
            )
        ]
    )
    calls = 0
    busy = asyncio.Event()

    async def rasa(message: InboundMessage) -> Sequence[OutboundMessage]:
        nonlocal calls
        calls += 1
        if calls == 1:
            busy.set()
            await asyncio.Event().wait()  # busy when its worker dies
        return [OutboundMessage("Tuesday")]

    worker = InboxWorker(async_redis, rasa, namespace, block_ms=10)
    keep_alive = worker.reader.keep_alive
    broken = False

    async def breaks_once(held: Iterable[str]) -> None:
        nonlocal broken
        if busy.is_set() and not broken:
            broken = True
            raise RuntimeError("a bug in the loop itself")
        await keep_alive(held)

    worker.reader.keep_alive = breaks_once  # type: ignore[method-assign]
    stop = asyncio.Event()
    supervisor = asyncio.create_task(
        supervise("inbox", lambda: worker.run(stop), stop, first_delay=0.01)
    )
    try:
        async with asyncio.timeout(5):
            while not await async_redis.xlen(f"{namespace}:outbox"):
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await supervisor
    [(_, reply)] = await async_redis.xrange(f"{namespace}:outbox")
    assert broken and reply["text"] == "Tuesday" and calls == 2
    assert await inbox.pending_count() == 0
