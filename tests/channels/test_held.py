"""Holding and releasing for closed messaging windows (:mod:`bot.channels.held`), on the test
Redis.

It lives in the channels' layer (reports use it, it uses nothing of theirs) and writes the keys
it always wrote: messages held before the move stay readable and releasable. Every process
that sends the outbox runs a releaser, so releasers race one another and the holds.
"""

from __future__ import annotations

import ast
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from bot.channels import held
from bot.channels.held import HeldMessages, Holder, pairs
from bot.channels.window import touch
from bot.keys import key
from bot.redis_conn import connect_async

CHANNELS = Path(__file__).resolve().parents[2] / "bot" / "channels"
CID = "whatsapp:+441234567890:+447700900123"
TTL = 3600
INVITE = {"conversation_id": CID, "channel": "whatsapp", "text": "", "template": "waiting"}


def _entry(text: str, conversation_id: str = CID) -> dict[str, str]:
    return {"conversation_id": conversation_id, "channel": "whatsapp", "text": text,
            "hold": str(TTL)}  # fmt: skip


async def test_a_channel_without_a_window_costs_no_round_trip() -> None:
    # a client with no server behind it: any Redis call would fail
    nowhere = redis.asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    releaser = HeldMessages(nowhere, "nowhere")
    try:
        assert await releaser.release("telegram:councilbot:42", opened=True) == 0
        assert await releaser.release("webchat:site:0123456789abcdef") == 0
        with pytest.raises(redis.ConnectionError):
            await releaser.release(CID, opened=True)
    finally:
        await nowhere.close()


def _imported(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_the_channels_layer_imports_nothing_of_reports() -> None:
    found = {
        f"{path.name}: {module}"
        for path in CHANNELS.glob("*.py")
        for module in _imported(path)
        if module == "bot.reports" or module.startswith("bot.reports.")
    }
    assert found == set()


def test_pairs_are_flat_in_order() -> None:
    assert pairs({"a": "1", "b": "2"}) == ["a", "1", "b", "2"]
    assert pairs({}) == []


async def test_the_first_held_message_queues_the_invite_later_ones_only_wait(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    holder = Holder(async_redis, namespace)
    assert await holder.hold(_entry("one"), marker="m1", ttl=TTL, now=100.0, invite=INVITE)
    assert await holder.hold(_entry("two"), marker="m2", ttl=TTL, now=200.0, invite=INVITE)
    # the same marker again (a retried worker, a redelivered entry): not held twice
    assert not await holder.hold(_entry("one"), marker="m1", ttl=TTL, now=300.0, invite=INVITE)

    # the key names of the stored data, unchanged by the move to bot.channels
    raw = await async_redis.lrange(key(namespace, "reports", "held", CID), 0, -1)
    held = [json.loads(item) for item in raw]
    assert [dict(zip(p[::2], p[1::2], strict=True))["text"] for p in held] == ["one", "two"]
    # the conversation's score: when its first message was held
    assert await async_redis.zscore(key(namespace, "reports", "held"), CID) == 100.0
    told = key(namespace, "reports", "told", CID)
    assert await async_redis.smembers(told) == {"m1", "m2"}
    assert 0 < await async_redis.ttl(told) <= TTL
    assert 0 < await async_redis.ttl(key(namespace, "reports", "held", CID)) <= TTL
    (queued,) = await async_redis.xrange(key(namespace, "outbox"))
    assert queued[1] == INVITE


async def test_without_an_invite_the_message_only_waits(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    holder = Holder(async_redis, namespace)
    assert await holder.hold(_entry("one"), marker="m1", ttl=TTL, now=100.0, invite=None)
    assert await async_redis.llen(key(namespace, "reports", "held", CID)) == 1
    assert await async_redis.exists(key(namespace, "outbox")) == 0


async def test_a_message_held_before_the_move_is_released_once_the_window_opens(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    now = time.time()
    await touch(async_redis, CID, now - 30 * 3600, namespace, now=now)  # closed
    # written as the reports' hold step wrote it: the stored format, not this module's code
    await async_redis.rpush(
        key(namespace, "reports", "held", CID), json.dumps(pairs(_entry("before")))
    )
    await async_redis.zadd(key(namespace, "reports", "held"), {CID: now - 3600})
    releaser = HeldMessages(async_redis, namespace)
    assert await releaser.release_once() == 0  # still closed
    await touch(async_redis, CID, now, namespace, now=now)  # the resident wrote
    assert await releaser.release_once() == 1
    ((_, sent),) = await async_redis.xrange(key(namespace, "outbox"))
    assert sent == _entry("before")
    assert await async_redis.zcard(key(namespace, "reports", "held")) == 0


async def _expire(client: redis.asyncio.Redis, namespace: str, conversation_id: str) -> None:
    """The held list's and the marker's time is up (their TTL), as for a resident who never
    answered."""
    for name in ("held", "told"):
        await client.pexpire(key(namespace, "reports", name, conversation_id), 1)
    await asyncio.sleep(0.05)


async def test_no_conversation_waits_behind_residents_who_never_answer(
    async_redis: redis.asyncio.Redis, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """600 conversations held first stay closed; the one held after them opens."""
    holder = Holder(async_redis, namespace)
    for n in range(600):
        await holder.hold(_entry("waits", f"whatsapp:+441234567890:+4477008{n:05d}"),
                          marker="m", ttl=TTL, now=float(n), invite=None)  # fmt: skip
    await holder.hold(_entry("goes"), marker="m", ttl=TTL, now=1000.0, invite=None)
    await touch(async_redis, CID, time.time(), namespace)  # this resident answered
    checked: list[int] = []
    state = held.window_state

    async def counted(*args: Any, **kwargs: Any) -> dict[str, Any] | None:
        checked[-1] += 1
        return await state(*args, **kwargs)

    monkeypatch.setattr(held, "window_state", counted)
    releaser = HeldMessages(async_redis, namespace)
    released = 0
    while not released and len(checked) < 20:
        checked.append(0)
        released = await releaser.release_once()
    assert released == 1
    ((_, sent),) = await async_redis.xrange(key(namespace, "outbox"))
    assert sent == _entry("goes")
    # each pass looks at a page of the set, not all of it
    assert max(checked) <= 200


async def test_conversations_whose_held_messages_expired_leave_the_set(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    holder = Holder(async_redis, namespace)
    waiting = "whatsapp:+441234567890:+447700900999"
    for conversation_id in (CID, waiting):  # neither resident answers
        await holder.hold(_entry("x", conversation_id), marker="m", ttl=TTL, now=100.0,
                          invite=None)  # fmt: skip
    await _expire(async_redis, namespace, CID)
    assert await HeldMessages(async_redis, namespace).release_once() == 0
    assert await async_redis.zrange(key(namespace, "reports", "held"), 0, -1) == [waiting]
    assert await async_redis.llen(key(namespace, "reports", "held", waiting)) == 1


async def test_a_hold_after_the_held_messages_expired_queues_the_invite_again(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    holder = Holder(async_redis, namespace)
    assert await holder.hold(_entry("one"), marker="m1", ttl=TTL, now=100.0, invite=INVITE)
    await _expire(async_redis, namespace, CID)
    # still in the held set (no releaser's pass yet): a new hold is a first one all the same
    assert await holder.hold(_entry("two"), marker="m2", ttl=TTL, now=200.0, invite=INVITE)
    assert [fields for _, fields in await async_redis.xrange(key(namespace, "outbox"))] == [
        INVITE,
        INVITE,
    ]
    assert await async_redis.zscore(key(namespace, "reports", "held"), CID) == 200.0
    # a pass keeps it: its list exists again
    assert await HeldMessages(async_redis, namespace).release_once() == 0
    assert await async_redis.zscore(key(namespace, "reports", "held"), CID) == 200.0
    assert await async_redis.llen(key(namespace, "reports", "held", CID)) == 1


async def test_releasers_racing_each_other_and_the_holds_send_each_message_once_in_order(
    redis_url: str, namespace: str
) -> None:
    """Two releasers (two workers' connections) against holds going on meanwhile."""
    conversations = [f"whatsapp:+441234567890:+4477009001{n:02d}" for n in range(20)]
    clients = [await connect_async(redis_url) for _ in range(3)]
    try:
        for conversation_id in conversations:  # the residents wrote: the windows are open
            await touch(clients[0], conversation_id, time.time(), namespace)
        holder = Holder(clients[0], namespace)
        releasers = [HeldMessages(client, namespace) for client in clients[1:]]
        holding = True
        released = [0, 0]

        async def hold_all() -> None:
            nonlocal holding
            for n in range(5):
                for conversation_id in conversations:
                    assert await holder.hold(
                        _entry(str(n), conversation_id), marker=f"m{n}", ttl=TTL,
                        now=time.time(), invite=None,
                    )  # fmt: skip
                await asyncio.sleep(0)
            holding = False

        async def release(index: int) -> None:
            while holding:
                released[index] += await releasers[index].release_once()
            released[index] += await releasers[index].release_once()  # what the last hold left

        await asyncio.gather(hold_all(), release(0), release(1))

        assert sum(released) == 5 * len(conversations)
        sent: dict[str, list[str]] = {}
        for _, fields in await clients[0].xrange(key(namespace, "outbox")):
            sent.setdefault(fields["conversation_id"], []).append(fields["text"])
        assert sent == {
            conversation_id: ["0", "1", "2", "3", "4"] for conversation_id in conversations
        }
        assert await clients[0].zcard(key(namespace, "reports", "held")) == 0
        for conversation_id in conversations:
            assert not await clients[0].exists(key(namespace, "reports", "held", conversation_id))
        # both at once on the same conversation: one gets all of it, the other nothing
        for n in range(3):
            await holder.hold(_entry(str(n)), marker=f"again{n}", ttl=TTL, now=time.time(),
                              invite=None)  # fmt: skip
        await touch(clients[0], CID, time.time(), namespace)
        both = await asyncio.gather(*(releaser.release_once() for releaser in releasers))
        assert sorted(both) == [0, 3]
    finally:
        for client in clients:
            await client.close()
