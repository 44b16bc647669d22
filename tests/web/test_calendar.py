from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
import redis
import redis.asyncio
from httpx import AsyncClient

from bot.bins.demo import DEMO_DIR, DEMO_FILES
from bot.bins.ics import IcsScheduleSource, calendar_url
from bot.bins.load import load_files
from bot.bins.store import BinStore

DEMO_PATHS = [DEMO_DIR / DEMO_FILES[kind] for kind in ("addresses", "rounds", "holidays")]


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.calendar",)


@pytest.fixture(autouse=True)
def demo_borough(
    redis_client: redis.Redis, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("COUNCIL_TODAY", "2026-12-20")
    assert load_files(redis_client, namespace, *DEMO_PATHS).loaded > 2000
    yield


async def test_calendar_feed_is_public_and_matches_the_schedule(
    client: AsyncClient, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    store = BinStore(async_redis, namespace)
    lookup = await store.lookup("AV1 2BX")
    uprn = lookup.addresses[0].uprn
    response = await client.get(f"/bins/calendar/{uprn}.ics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert "max-age" in response.headers["Cache-Control"]
    text = response.text
    source = await store.schedule(uprn)
    assert source is not None
    address = source.address(uprn)
    assert address is not None
    served = IcsScheduleSource.from_documents([address], {uprn: text})
    # Across Christmas and the year end the served feed keeps the holiday shifts.
    start, end = date(2026, 12, 20), date(2027, 1, 31)
    assert served.collections(uprn, start, end) == source.collections(uprn, start, end)
    assert served.collections(uprn, start, end)
    assert calendar_url(uprn, "http://127.0.0.1:8080").endswith(f"/bins/calendar/{uprn}.ics")


@pytest.mark.parametrize("path", ["/bins/calendar/999999999999.ics", "/bins/calendar/abc.ics"])
async def test_unknown_or_malformed_uprn_is_404(client: AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert "UPRN" in response.text
