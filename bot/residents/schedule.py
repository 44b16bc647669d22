"""The scheduled retention sweep: :func:`bot.residents.sweep` once a day, one replica at a time.

A long-running process (the console, ``python -m bot.web``) runs :meth:`SweepSchedule.running`
for as long as it serves. Every ``check_seconds`` (an hour) each replica asks whether a sweep is
due; one takes the lock ``{ns}:residents:sweep:lock`` (``SET NX`` with a lease, released only by
its holder), reads when the last sweep ran (``{ns}:residents:sweep:last``) and sweeps when that
was at least ``every`` (a day) ago. So however many consoles run, the sweep runs once a day, and
a replica that restarts does not delay it. Each sweep is logged with what it removed; a failure
is logged and tried again at the next check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import redis.asyncio

from bot.profile import Retention
from bot.residents.rights import Layout, sweep

__all__ = ["SweepSchedule"]

logger = logging.getLogger(__name__)

# delete the lock only while it still holds our token (the lease may have passed to another)
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SweepSchedule:
    """Runs the retention sweep when it is due, at most one runner at a time across replicas.

    Args:
        client: Asyncio Redis client (decoded strings).
        layout: Where the stores keep their keys.
        retention: The periods in force (:meth:`bot.profile.CouncilProfile.retention_in_force`).
        every: How often a sweep runs (a day).
        check_seconds: How often :meth:`run_forever` asks whether one is due.
        lease_seconds: How long the lock is held at most (a crashed runner's lock lapses).
        clock: Returns the current time (tests inject one).
        sleep: Waits a number of seconds (tests inject one).
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        layout: Layout,
        retention: Retention,
        *,
        every: timedelta = timedelta(days=1),
        check_seconds: float = 3600.0,
        lease_seconds: int = 3600,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.layout = layout
        self.retention = retention
        self.every = every
        self.check_seconds = check_seconds
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.sleep = sleep
        self.lock_key = layout.key("residents", "sweep", "lock")
        self.last_key = layout.key("residents", "sweep", "last")

    async def run_if_due(self) -> dict[str, int] | None:
        """Sweep when due and nobody else is sweeping; return what was removed (None: not run)."""
        token = uuid.uuid4().hex
        if not await self.client.set(self.lock_key, token, nx=True, ex=self.lease_seconds):
            logger.debug("retention sweep: another process is sweeping")
            return None
        try:
            now = self.clock()
            last = await self.client.get(self.last_key)
            if last and now - datetime.fromisoformat(last) < self.every:
                return None
            logger.info("retention sweep: started")
            removed = await sweep(self.client, self.layout, self.retention, now)
            await self.client.set(self.last_key, now.isoformat())
            logger.info(
                "retention sweep: removed %s",
                ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in removed.items()),
            )
            return removed
        finally:
            await self.client.eval(_RELEASE, 1, self.lock_key, token)

    async def run_forever(self) -> None:
        """Check every ``check_seconds`` and sweep when due, until cancelled."""
        while True:
            try:
                await self.run_if_due()
            except (redis.RedisError, OSError) as error:
                logger.warning(
                    "retention sweep failed (%s); trying again in %.0f s", error, self.check_seconds
                )
            except Exception:  # a bug must not stop the sweeps, nor the console serving
                logger.exception(
                    "retention sweep failed; trying again in %.0f s", self.check_seconds
                )
            await self.sleep(self.check_seconds)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run :meth:`run_forever` in the background while the context is open."""
        task = asyncio.create_task(self.run_forever(), name="retention-sweep")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
