from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
import redis.asyncio

from bot.bins.csv_source import read_schedule
from bot.bins.demo import DEMO_DIR, DEMO_FILES
from bot.bins.load import load_files
from bot.bins.missed import MissedReports
from bot.bins.schedule import RoundScheduleSource
from bot.bins.store import BinStore

DEMO_PATHS = [DEMO_DIR / DEMO_FILES[kind] for kind in ("addresses", "rounds", "holidays")]


@pytest.fixture(scope="session")
def demo_source() -> RoundScheduleSource:
    source, errors = read_schedule(*DEMO_PATHS)
    assert errors == []
    return source


@pytest.fixture
def demo_loaded(redis_client: redis.Redis, namespace: str) -> Iterator[str]:
    """The demo borough loaded into this test's namespace."""
    result = load_files(redis_client, namespace, *DEMO_PATHS)
    assert result.loaded > 2000
    yield namespace


@pytest.fixture
def store(demo_loaded: str, async_redis: redis.asyncio.Redis) -> BinStore:
    """The demo borough's bin store (tests/bins/test_load_ics.py has its own)."""
    return BinStore(async_redis, demo_loaded)


@pytest.fixture
def missed_reports(demo_loaded: str, async_redis: redis.asyncio.Redis) -> MissedReports:
    """Missed-bin reports of the demo borough, kept 30 days."""
    return MissedReports(async_redis, demo_loaded, retention=30)


@pytest.fixture
def uprn(demo_source: RoundScheduleSource) -> str:
    """The first demo address in AV1 2BX (a Monday general, Tuesday recycling round)."""
    return demo_source.addresses_at("AV1 2BX")[0].uprn
