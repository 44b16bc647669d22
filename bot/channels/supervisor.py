"""Keeping the workers running: a worker task that ends is logged and started again.

A worker's loop only ends when it is stopped; anything else (a bug, an error nothing foresaw)
would silently leave residents without replies. :func:`supervise` runs the loop again after a
backoff (doubling up to ``max_delay``, back to ``first_delay`` after a run that lasted
``healthy_after`` seconds), logging each end with its reason. :func:`every` is the loop of a
periodic worker (the release of held messages, the reports' update poller and pushed
updates): a step, then a wait that a stop ends at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

__all__ = ["every", "supervise", "supervised"]

_log = logging.getLogger(__name__)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):  # a stop ends the wait at once
        await asyncio.wait_for(stop.wait(), seconds)


async def every(stop: asyncio.Event, idle: float, step: Callable[[], Awaitable[object]]) -> None:
    """Run ``step`` until ``stop`` is set, waiting ``idle`` seconds (or for ``stop``) after each."""
    while not stop.is_set():
        await step()
        await _pause(stop, idle)


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    *,
    first_delay: float = 1.0,
    max_delay: float = 30.0,
    healthy_after: float = 60.0,
) -> None:
    """Run ``run()`` until ``stop`` is set, starting it again whenever it ends.

    Args:
        name: The worker's name in the log.
        run: Starts one run of the worker (``lambda: worker.run(stop)``).
        stop: Set when the server stops; the worker is then not restarted.
        first_delay: Seconds before the first restart.
        max_delay: Longest wait between restarts.
        healthy_after: A run that lasted this long resets the wait to ``first_delay``.
    """
    delay = first_delay
    while not stop.is_set():
        started = time.monotonic()
        try:
            await run()
        except Exception:
            _log.exception("%s stopped with an error; restarting in %.0f s", name, delay)
        else:
            if stop.is_set():
                return
            _log.error("%s ended without being stopped; restarting in %.0f s", name, delay)
        if time.monotonic() - started >= healthy_after:
            delay = first_delay
        await _pause(stop, delay)
        delay = min(max_delay, delay * 2)


def supervised(
    name: str, run: Callable[[], Awaitable[None]], stop: asyncio.Event
) -> asyncio.Task[None]:
    """Start :func:`supervise` as a task named ``name``."""
    return asyncio.create_task(supervise(name, run, stop), name=name)
