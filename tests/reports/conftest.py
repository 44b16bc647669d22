"""Fixtures of the reports' tests: a report, the wording, the stand-in, a worker around it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio

from bot.channels.window import touch
from bot.keys import key
from bot.profile import CouncilProfile, current
from bot.reports.backoffice import BackOffice, Open311BackOffice
from bot.reports.cases import ReportCases
from bot.reports.model import ProblemReport
from bot.reports.notify import ResidentNotifier, Wording
from bot.reports.open311 import Open311Client
from bot.reports.outbox import ReportOutbox, ReportWorker
from bot.reports.store import ReportRecord, ReportStore
from bot.testing.open311 import Open311StandIn, serving

RESIDENT = "whatsapp:+441632960000:+447700900123"


def make_report(n: int = 1, **changes: Any) -> ProblemReport:
    """A confirmed pothole report of resident ``n``."""
    values: dict[str, Any] = {
        "report_id": f"r-{n:04d}",
        "conversation_id": f"whatsapp:+441632960000:+4477009{n:05d}",
        "channel": "whatsapp",
        "account": "+441632960000",
        "sender": f"+4477009{n:05d}",
        "service_code": "001",
        "service_name": "Pothole",
        "description": f"A deep pothole by the bus stop, number {n}",
        "created_at": 1_780_000_000.0,
        "lat": 52.2,
        "long": -1.5,
        "attributes": {"size": "large"},
        "media_url": "https://media.example/p/abc?sig=1",
    }
    values.update(changes)
    return ProblemReport(**values)


async def wrote(client: redis.asyncio.Redis, namespace: str, *conversation_ids: str) -> None:
    """The residents wrote just now: their messaging windows are open (bot.channels.window)."""
    for conversation_id in conversation_ids:
        await touch(client, conversation_id, time.time(), namespace)


@pytest.fixture(scope="session")
def wording() -> Wording:
    """The responses as the Rasa server renders them (loading Rasa once per session)."""
    return Wording(current())


@dataclass
class FakeTime:
    """A clock whose sleeps advance it at once (and run what a test hooks on them)."""

    now: float = 1_780_000_100.0
    slept: list[float] = field(default_factory=list)
    on_sleep: Callable[[float], None] | None = None

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(seconds, 0.0)
        if self.on_sleep is not None:
            self.on_sleep(self.now)


@dataclass
class Rig:
    """A worker delivering to the stand-in, on a fake clock."""

    standin: Open311StandIn
    url: str
    outbox: ReportOutbox
    worker: ReportWorker
    store: ReportStore
    redis: redis.asyncio.Redis
    namespace: str
    time: FakeTime
    started: list[Any] = field(default_factory=list, repr=False)

    def open311(self) -> Open311Client:
        """Another client of the stand-in, closed with the rig."""
        client = Open311Client(self.url)
        self.started.append(client)
        return client

    async def run(self, *reports: ProblemReport) -> None:
        """Queue the reports (their residents just confirmed them) and work until done."""
        await self.worker.ensure_group()
        for report in reports:
            await wrote(self.redis, self.namespace, report.conversation_id)
            await self.outbox.enqueue(report)
        await self.worker.run_once(block=False)

    async def record(self, report_id: str = "r-0001") -> ReportRecord:
        """A report's record, which must exist."""
        found = await self.store.get(report_id)
        assert found is not None, f"no record of {report_id}"
        return found

    async def told(self) -> list[dict[str, str]]:
        """The channels' outbox: what residents will read."""
        rows = await self.redis.xrange(key(self.namespace, "outbox"))
        return [fields for _, fields in rows]


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def rig(
    async_redis: redis.asyncio.Redis, namespace: str, wording: Wording
) -> AsyncIterator[RigFactory]:
    """Builds a :class:`Rig` (stand-in options as keywords)."""
    started: list[Any] = []

    async def build(
        back_office: BackOffice | None = None,
        profile: CouncilProfile | None = None,
        **standin_options: Any,
    ) -> Rig:
        standin = Open311StandIn(api_key="k", **standin_options)
        context = serving(standin)
        url = await context.__aenter__()
        started.append(context)
        clock = FakeTime()
        store = ReportStore(async_redis, namespace)
        if back_office is None:
            client = Open311Client(url, "", "k", timeout=2.0)
            back_office = Open311BackOffice(client, store, clock=clock)
        started.append(back_office)
        worker = ReportWorker(
            async_redis,
            back_office,
            ResidentNotifier(async_redis, namespace, wording),
            ReportCases(async_redis, namespace, profile or current()),
            namespace,
            sleep=clock.sleep,
            clock=clock,
            block_ms=10,
        )
        return Rig(
            standin, url, ReportOutbox(async_redis, namespace), worker, store,
            async_redis, namespace, clock, started,
        )  # fmt: skip

    yield build
    for thing in reversed(started):
        if isinstance(thing, BackOffice | Open311Client):
            await thing.aclose()
        else:
            await thing.__aexit__(None, None, None)
