from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "webhooks"


def load(channel: str, name: str) -> bytes:
    """A recorded webhook body (trailing newline of the file removed)."""
    return (DATA / channel / name).read_bytes().strip()


class Sleeps:
    """A fake ``asyncio.sleep`` that records the delays asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
