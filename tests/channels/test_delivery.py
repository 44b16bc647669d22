"""Delivery receipts: a reply's state moves forward only, and a failed one reaches agents."""

from __future__ import annotations

import redis.asyncio

from bot.channels.base import DeliveryStatus, Receipt
from bot.channels.delivery import apply, delivery_key, failed_call, record, sent_call, states
from bot.channels.outbox import failed_sends

CID = "whatsapp:+441234567890:+447700900123"
T = 1732352400.0


def receipt(status: DeliveryStatus, *ids: str, at: float = T + 10, **extra: object) -> Receipt:
    return Receipt(
        "whatsapp",
        "+441234567890",
        "+447700900123",
        status,
        at,
        ids,
        **extra,  # type: ignore[arg-type]
    )


async def test_a_reply_moves_from_sent_to_read(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    await record(
        async_redis,
        sent_call(
            CID, "SM1", entry="1-0", text="Your bin day is Tuesday", at=T, namespace=namespace
        ),
    )
    assert await apply(async_redis, receipt("delivered", "SM1"), namespace=namespace) == ["SM1"]
    assert await apply(async_redis, receipt("read", "SM1", at=T + 20), namespace=namespace)
    [state] = await states(async_redis, CID, namespace=namespace)
    assert (state.provider_id, state.status, state.entry) == ("SM1", "read", "1-0")
    assert (state.sent_at, state.updated_at) == (T, T + 20)
    assert await async_redis.ttl(delivery_key(namespace, CID)) > 0


async def test_late_and_repeated_receipts_never_move_back(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    # Twilio's "delivered" can overtake our own record of the send
    assert await apply(async_redis, receipt("delivered", "SM2"), namespace=namespace)
    await record(async_redis, sent_call(CID, "SM2", entry="2-0", at=T, namespace=namespace))
    assert await apply(async_redis, receipt("sent", "SM2"), namespace=namespace) == []
    assert await apply(async_redis, receipt("delivered", "SM2"), namespace=namespace) == []
    [state] = await states(async_redis, CID, namespace=namespace)
    assert (state.status, state.entry, state.sent_at) == ("delivered", "2-0", T)


async def test_a_failed_receipt_reaches_agents_once(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    await record(
        async_redis,
        sent_call(CID, "SM3", entry="3-0", text="We have booked it", at=T, namespace=namespace),
    )
    bad = receipt("failed", "SM3", error="undelivered: unknown destination", code="30005")
    assert await apply(async_redis, bad, namespace=namespace) == ["SM3"]
    assert await apply(async_redis, bad, namespace=namespace) == []  # Twilio retried it
    assert await apply(async_redis, receipt("read", "SM3"), namespace=namespace) == []
    [row] = await failed_sends(async_redis, namespace)
    assert row["conversation_id"] == CID
    assert (row["provider_id"], row["entry"], row["code"]) == ("SM3", "3-0", "30005")
    assert row["text"] == "We have booked it"
    assert row["source"] == "receipt"
    [state] = await states(async_redis, CID, namespace=namespace)
    assert (state.status, state.error) == ("failed", "undelivered: unknown destination")


async def test_watermark_marks_every_earlier_reply(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    cid = "messenger:104857600000001:6789012345678901"
    for number, at in ((1, T), (2, T + 5), (3, T + 60)):
        await record(async_redis, sent_call(cid, f"m_{number}", at=at, namespace=namespace))
    read = Receipt(
        "messenger", "104857600000001", "6789012345678901", "read", T + 30, watermark=T + 30
    )
    assert sorted(await apply(async_redis, read, namespace=namespace)) == ["m_1", "m_2"]
    found = {s.provider_id: s.status for s in await states(async_redis, cid, namespace=namespace)}
    assert found == {"m_1": "read", "m_2": "read", "m_3": "sent"}


async def test_send_that_never_left_is_listed_by_its_entry(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    await record(async_redis, sent_call(CID, "SM4", at=T, namespace=namespace))
    await record(
        async_redis,
        failed_call(
            CID, entry="9-0", error="window closed", code="63016", at=T + 1, namespace=namespace
        ),
    )
    first, second = await states(async_redis, CID, namespace=namespace)
    assert (first.provider_id, first.status) == ("SM4", "sent")
    assert (second.provider_id, second.status, second.code) == ("entry:9-0", "failed", "63016")
    assert await failed_sends(async_redis, namespace) == []  # the outbox writes its own row
