"""The loop of the reports' background tasks (update poller, pushed updates, held messages)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

__all__ = ["every"]


async def every(stop: asyncio.Event, idle: float, step: Callable[[], Awaitable[object]]) -> None:
    """Run ``step`` until ``stop`` is set, waiting ``idle`` seconds (or for ``stop``) after each."""
    while not stop.is_set():
        await step()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), idle)
