from __future__ import annotations

from datetime import date

import pytest
import redis
import redis.asyncio

from bot.bins.model import BinType
from bot.bins.schedule import RoundScheduleSource
from bot.bins.store import BinStore, PostcodeStatus


@pytest.mark.parametrize(
    ("text", "status", "postcode"),
    [
        ("my postcode is av1 2bx", PostcodeStatus.FOUND, "AV1 2BX"),
        ("AV5 1QA", PostcodeStatus.FOUND, "AV5 1QA"),
        ("AV6 9ZZ", PostcodeStatus.NO_ADDRESSES, "AV6 9ZZ"),
        ("AV3 9ZZ", PostcodeStatus.UNKNOWN, "AV3 9ZZ"),
        ("SW1A 1AA", PostcodeStatus.OUTSIDE, "SW1A 1AA"),
        ("ZZ99 9ZZZ", PostcodeStatus.MALFORMED, "ZZ99 9ZZZ"),
        ("I don't know", PostcodeStatus.MISSING, "I don't know"),
    ],
)
async def test_postcode_lookup(
    demo_loaded: str,
    async_redis: redis.asyncio.Redis,
    text: str,
    status: PostcodeStatus,
    postcode: str,
) -> None:
    found = await BinStore(async_redis, demo_loaded).lookup(text)
    assert (found.status, found.postcode) == (status, postcode)
    assert bool(found.addresses) == (status is PostcodeStatus.FOUND)


async def test_addresses_and_schedule_match_the_files(
    demo_loaded: str, async_redis: redis.asyncio.Redis, demo_source: RoundScheduleSource
) -> None:
    store = BinStore(async_redis, demo_loaded)
    found = await store.lookup("AV1 2BX")
    assert [a.line for a in found.addresses] == [
        "2 Mill Lane",
        "4 Mill Lane",
        "6 Mill Lane",
        "8 Mill Lane",
    ]
    today = date(2026, 11, 23)
    for address in found.addresses:
        source = await store.schedule(address.uprn)
        assert source is not None
        assert source.next_collections(address.uprn, today) == demo_source.next_collections(
            address.uprn, today
        )
        kinds = {c.bin_type for c in source.next_collections(address.uprn, today)}
        assert {BinType.GENERAL, BinType.RECYCLING, BinType.FOOD} <= kinds
    assert await store.schedule("0") is None


async def test_nothing_loaded_means_unknown_not_a_crash(
    namespace: str, async_redis: redis.asyncio.Redis
) -> None:
    found = await BinStore(async_redis, namespace).lookup("AV1 2BX")
    assert found.status is PostcodeStatus.OUTSIDE


def test_store_keys_stay_in_the_namespace(demo_loaded: str, redis_client: redis.Redis) -> None:
    keys = list(redis_client.scan_iter(match=f"{demo_loaded}:*", count=1000))
    assert len(keys) == 2128 + 47 + 3  # uprns, postcodes, then rounds, holidays and outcodes
    assert all(k.startswith(f"{demo_loaded}:bins:") for k in keys)
