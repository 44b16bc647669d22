from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest
import redis.asyncio

from bot.channels.base import InboundMessage, OutboundMessage
from bot.channels.inbox import GROUP, Inbox, InboxWorker
from bot.channels.window import window_state

from .conftest import Sleeps


def message(message_id: str = "m1", *, account: str = "+441234567890") -> InboundMessage:
    return InboundMessage(
        channel="whatsapp",
        account=account,
        sender="+447700900123",
        message_id=message_id,
        text=f"text of {message_id}",
        received_at=time.time(),
    )


class Bot:
    """A handler standing in for Rasa: one reply per message, optionally failing or hanging."""

    def __init__(self, fail: int = 0, hang: bool = False, only: str = "") -> None:
        self.seen: list[str] = []
        self.fail = fail
        self.only = only  # fail only on this message
        self.hang = hang
        self.started = asyncio.Event()

    async def __call__(self, incoming: InboundMessage) -> Sequence[OutboundMessage]:
        self.started.set()
        if self.hang:
            await asyncio.Event().wait()
        self.seen.append(incoming.message_id)
        if self.fail and incoming.message_id.startswith(self.only):
            self.fail -= 1
            raise RuntimeError("rasa blew up")
        return [OutboundMessage(f"reply to {incoming.text}")]


async def outbox_texts(client: redis.asyncio.Redis, namespace: str) -> list[str]:
    rows = await client.xrange(f"{namespace}:outbox")
    return [fields["text"] for _, fields in rows]


async def test_accept_dedupes_replayed_ids(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    assert len(await inbox.accept([message("m1"), message("m2")])) == 2
    assert await inbox.accept([message("m1")]) == []  # provider retry
    # the same id on another account is another message (Telegram update ids are per bot)
    assert len(await inbox.accept([message("m1", account="+441234567891")])) == 1
    assert await async_redis.xlen(f"{namespace}:inbox") == 3
    assert await async_redis.ttl(inbox.seen_key(message("m1"))) > 6 * 24 * 3600
    state = await window_state(
        async_redis, message().conversation_id, namespace=namespace, now=time.time() + 60
    )
    assert state is not None and state["open"]


async def test_worker_processes_acks_and_queues_replies(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    await inbox.accept([message("m1"), message("m2")])
    bot = Bot()
    worker = InboxWorker(async_redis, bot, namespace, consumer="w1", block_ms=10)
    assert await worker.run_once() == 2
    assert bot.seen == ["m1", "m2"]
    assert await outbox_texts(async_redis, namespace) == [
        "reply to text of m1",
        "reply to text of m2",
    ]
    assert await inbox.pending_count() == 0
    assert await async_redis.xlen(f"{namespace}:inbox") == 0
    [_, fields] = (await async_redis.xrange(f"{namespace}:outbox"))[0]
    assert fields["conversation_id"] == "whatsapp:+441234567890:+447700900123"
    assert fields["recipient"] == "+447700900123"
    assert await worker.run_once(block=False) == 0


async def test_worker_killed_before_processing_loses_nothing(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    await inbox.accept([message("m1")])  # the provider already has its 200
    hanging = Bot(hang=True)
    first = InboxWorker(async_redis, hanging, namespace, consumer="rasa-1", block_ms=10)
    task = asyncio.create_task(first.run(asyncio.Event()))
    await asyncio.wait_for(hanging.started.wait(), 5)
    task.cancel()  # the server dies mid-message
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await inbox.pending_count() == 1
    assert await outbox_texts(async_redis, namespace) == []

    # restarted under the same name: its own pending entry comes first
    bot = Bot()
    restarted = InboxWorker(async_redis, bot, namespace, consumer="rasa-1", block_ms=10)
    assert await restarted.run_once() == 1
    assert bot.seen == ["m1"]
    assert await outbox_texts(async_redis, namespace) == ["reply to text of m1"]
    assert await inbox.pending_count() == 0


async def test_another_worker_claims_stale_entries(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    await inbox.accept([message("m1")])
    # a consumer that read the entry and vanished for good
    await async_redis.xreadgroup(GROUP, "gone", {inbox.stream: ">"}, count=1)
    bot = Bot()
    other = InboxWorker(
        async_redis, bot, namespace, consumer="rasa-2", claim_idle_ms=0, block_ms=10
    )
    assert await other.run_once() == 1
    assert bot.seen == ["m1"]
    assert await inbox.pending_count() == 0


async def test_a_replayed_id_after_processing_gets_no_second_reply(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    bot = Bot()
    worker = InboxWorker(async_redis, bot, namespace, block_ms=10)
    await inbox.accept([message("m1")])
    await worker.run_once()
    await inbox.accept([message("m1")])  # Twilio retried after a slow 200
    assert await worker.run_once(block=False) == 0
    assert await outbox_texts(async_redis, namespace) == ["reply to text of m1"]


async def test_failing_handler_is_retried_in_its_lane_then_dead_lettered(
    async_redis: redis.asyncio.Redis, namespace: str, sleeps: Sleeps
) -> None:
    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    await inbox.accept([message("m1")])
    bot = Bot(fail=1)
    worker = InboxWorker(async_redis, bot, namespace, block_ms=10, max_failures=3, sleep=sleeps)
    assert await worker.run_once() == 1  # failed once, tried again after a backoff
    assert bot.seen == ["m1", "m1"]
    assert len(sleeps.delays) == 1 and 0.8 <= sleeps.delays[0] <= 1.0
    assert await outbox_texts(async_redis, namespace) == ["reply to text of m1"]
    assert await async_redis.zcard(f"{namespace}:inbox:due") == 0
    assert await async_redis.hlen(f"{namespace}:inbox:retries") == 0

    await inbox.accept([message("m2")])
    always = Bot(fail=99)
    stubborn = InboxWorker(
        async_redis, always, namespace, block_ms=10, max_failures=3, sleep=sleeps
    )
    assert await stubborn.run_once() == 1
    assert always.seen == ["m2", "m2", "m2"]
    assert await inbox.pending_count() == 0
    [(_, dead)] = await async_redis.xrange(f"{namespace}:inbox:dead")
    assert "m2" in dead["message"]
    assert dead["reason"] == "failed 3 time(s): RuntimeError: rasa blew up"


async def test_unreadable_entry_is_dead_lettered_and_the_worker_goes_on(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    await async_redis.xadd(inbox.stream, {"conversation": "x", "message": "{not json"})
    await async_redis.xadd(inbox.stream, {"conversation": "y", "message": '{"channel": 1e308}'})
    await inbox.accept([message("m1")])
    bot = Bot()
    worker = InboxWorker(async_redis, bot, namespace, block_ms=10)
    assert await worker.run_once() == 3
    assert bot.seen == ["m1"]
    dead = [fields for _, fields in await async_redis.xrange(f"{namespace}:inbox:dead")]
    assert [d["message"] for d in dead] == ["{not json", '{"channel": 1e308}']
    assert all(d["reason"].startswith("unreadable entry: ") for d in dead)
    assert await inbox.pending_count() == 0


async def test_conversations_run_concurrently_but_each_stays_in_order(
    async_redis: redis.asyncio.Redis, namespace: str, sleeps: Sleeps
) -> None:
    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    await inbox.accept([message("a1"), message("a2"), message("b1", account="+441234567891")])
    bot = Bot(fail=1, only="a1")  # the first message of conversation a fails once
    worker = InboxWorker(async_redis, bot, namespace, block_ms=10, sleep=sleeps)
    assert await worker.run_once() == 3
    assert [seen for seen in bot.seen if seen.startswith("a")] == ["a1", "a1", "a2"]
    assert bot.seen.count("b1") == 1
    texts = await outbox_texts(async_redis, namespace)
    assert [t for t in texts if "of a" in t] == ["reply to text of a1", "reply to text of a2"]
    assert "reply to text of b1" in texts
    assert await inbox.pending_count() == 0


async def test_a_stopped_consumer_is_taken_over_and_removed(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    await inbox.accept([message("m1")])
    hanging = Bot(hang=True)
    first = InboxWorker(async_redis, hanging, namespace, consumer="host-1-aaaaaa", block_ms=10)
    task = asyncio.create_task(first.run(asyncio.Event()))
    await asyncio.wait_for(hanging.started.wait(), 5)
    task.cancel()  # stopped mid-message
    with pytest.raises(asyncio.CancelledError):
        await task
    beat = await async_redis.zscore(f"{namespace}:inbox:workers", "host-1-aaaaaa")
    assert beat is not None  # it was beating while alive
    # ... and stopped beating 31 s ago (the restart took that long)
    await async_redis.zadd(f"{namespace}:inbox:workers", {"host-1-aaaaaa": beat - 31})

    bot = Bot()  # the restarted process has a name of its own
    restarted = InboxWorker(async_redis, bot, namespace, consumer="host-2-bbbbbb", block_ms=10)
    assert await restarted.run_once() == 1  # taken over at once: no 60 s wait
    assert bot.seen == ["m1"]
    consumers = await async_redis.xinfo_consumers(inbox.stream, GROUP)
    assert {c["name"] for c in consumers} == {"host-1-aaaaaa", "host-2-bbbbbb"}
    restarted.reader._next_reap = 0  # the next look, a few seconds later
    await restarted.run_once(block=False)
    consumers = await async_redis.xinfo_consumers(inbox.stream, GROUP)
    assert [c["name"] for c in consumers] == ["host-2-bbbbbb"]  # empty and silent: removed
    assert await async_redis.zscore(f"{namespace}:inbox:workers", "host-1-aaaaaa") is None


async def test_conversations_finishing_together_share_one_transaction(
    async_redis: redis.asyncio.Redis, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    residents = [f"+4477009{n:05d}" for n in range(12)]
    await inbox.accept(
        [
            InboundMessage("whatsapp", "+441234567890", sender, f"m{n}", f"hi {n}", time.time())
            for n, sender in enumerate(residents)
        ]
    )
    transactions: list[bool] = []
    opened = async_redis.pipeline

    def pipeline(transaction: bool = True, shard_hint: str | None = None) -> object:
        transactions.append(transaction)
        return opened(transaction=transaction, shard_hint=shard_hint)

    monkeypatch.setattr(async_redis, "pipeline", pipeline)
    answering: list[str] = []
    together = asyncio.Event()  # the lanes' own reads (held messages) end at different times

    async def rasa(incoming: InboundMessage) -> list[OutboundMessage]:
        answering.append(incoming.message_id)
        if len(answering) == len(residents):
            together.set()
        await together.wait()
        return [OutboundMessage(f"reply to {incoming.text}")]

    worker = InboxWorker(async_redis, rasa, namespace, consumer="w1", block_ms=10)
    assert await worker.run_once() == 12
    # twelve residents' replies, acknowledgements and removals: one round trip, not twelve
    assert transactions == [True]
    assert sorted(await outbox_texts(async_redis, namespace)) == sorted(
        f"reply to hi {n}" for n in range(12)
    )
    assert await inbox.pending_count() == 0
    assert await async_redis.xlen(f"{namespace}:inbox") == 0
