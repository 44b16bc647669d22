"""Shared helpers for the handoff tests: records and a queue in the test's namespace."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio

from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord
from bot.testing.handoff import handoff_record

T0 = datetime(2027, 3, 3, 10, 0, tzinfo=UTC)  # a Wednesday, contact centre open

MakeRecord = Callable[..., HandoffRecord]


def make_record(
    sender: str = "447700900123",
    *,
    minutes: float = 0,
    text: str = "can I talk to a person",
    **fields: Any,
) -> HandoffRecord:
    """A handoff record opened ``minutes`` after ``T0`` (other fields as ``handoff_record``'s)."""
    values: dict[str, Any] = {
        "display_name": "Sam Resident",
        "transcript": [{"role": "resident", "text": text, "at": T0.isoformat()}],
        "intents": [{"text": text, "name": "human_agent", "confidence": 0.93, "ranking": []}],
        "entities": {"postcode": ["AB1 2CD"]},
    }
    values.update(fields)
    return handoff_record(sender, opened=T0 + timedelta(minutes=minutes), **values)


class Clock:
    """A datetime clock that moves only when told."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def handoff_clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(async_redis: redis.asyncio.Redis, namespace: str, handoff_clock: Clock) -> HandoffQueue:
    return HandoffQueue(async_redis, namespace, clock=handoff_clock)
