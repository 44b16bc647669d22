"""One resident's failing provider or slow conversation never holds up another's (issue 10)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
import redis.asyncio

from bot.channels import delivery
from bot.channels.base import InboundMessage, OutboundMessage
from bot.channels.inbox import Inbox, InboxWorker
from bot.channels.outbox import OutboxWorker, failed_sends, queue_reply
from bot.channels.telegram import TelegramAdapter, TelegramBotAccount
from bot.testing.providers import Answer, FakeProvider

BOT = "councilbot"
ALICE = "123456789"  # her sends fail for a while
BOB = "987654321"  # his go through


def cid(chat: str) -> str:
    return f"telegram:{BOT}:{chat}"


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Wait until ``condition()`` holds (checked every 10 ms), failing after ``timeout``."""
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.01)


class HeldSleep:
    """A fake ``sleep`` that returns only when the test lets it (a retry's backoff)."""

    def __init__(self) -> None:
        self.waiting: list[tuple[float, asyncio.Future[None]]] = []

    async def __call__(self, seconds: float) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((seconds, done))
        await done

    def release(self) -> list[float]:
        """Let every waiting sleep return; return the delays they asked for."""
        released, self.waiting = self.waiting, []
        for _, done in released:
            done.set_result(None)
        return [seconds for seconds, _ in released]


@pytest.fixture
async def telegram(provider: FakeProvider) -> AsyncIterator[TelegramAdapter]:
    adapter = TelegramAdapter(
        [TelegramBotAccount(BOT, "1:abc", "secret")], api_base_url=provider.url, timeout=1.0
    )
    yield adapter
    await adapter.aclose()


def sent_to(provider: FakeProvider, chat: str) -> list[str]:
    """The texts the provider received for one chat, in order."""
    return [
        str(r.fields()["text"]) for r in provider.requests if str(r.fields()["chat_id"]) == chat
    ]


async def test_a_failing_send_for_one_resident_does_not_delay_another(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    telegram: TelegramAdapter,
) -> None:
    backoff = HeldSleep()
    worker = OutboxWorker(
        async_redis, {"telegram": telegram}, namespace, block_ms=10, sleep=backoff
    )

    async def reply(chat: str, text: str) -> str:
        return await queue_reply(
            async_redis, namespace, cid(chat), "telegram", BOT, chat, OutboundMessage(text)
        )

    async def waiting(count: int) -> bool:
        return len(backoff.waiting) == count

    async def delivered(chat: str, count: int) -> bool:
        states = await delivery.states(async_redis, cid(chat), namespace=namespace)
        return [state.status for state in states] == ["sent"] * count

    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        # Telegram's own answers (Bot API: error_code, description, parameters.retry_after)
        provider.script(Answer(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}))
        await reply(ALICE, "Alice, first")
        await until(lambda: waiting(1))  # her send failed: its retry is scheduled
        await reply(ALICE, "Alice, second")
        await reply(BOB, "Bob, your bin day is Tuesday")

        # Bob's reply goes out while Alice's first still waits out its backoff ...
        await until(lambda: delivered(BOB, 1))
        assert sent_to(provider, BOB) == ["Bob, your bin day is Tuesday"]
        # ... and Alice's second waits behind her first
        assert sent_to(provider, ALICE) == ["Alice, first"]

        # the provider now rate-limits her: its retry_after is honoured
        provider.script(
            Answer(
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests: retry after 20",
                    "parameters": {"retry_after": 20},
                },
            )
        )
        assert backoff.release()[0] <= 1.0
        await until(lambda: waiting(1))
        assert backoff.release() == [20.0]

        # recovered: both of hers arrive, once each, in order
        await until(lambda: delivered(ALICE, 2))
        assert sent_to(provider, ALICE) == [
            "Alice, first",
            "Alice, first",
            "Alice, first",
            "Alice, second",
        ]
        assert sent_to(provider, BOB) == ["Bob, your bin day is Tuesday"]
        assert await failed_sends(async_redis, namespace) == []
        assert await async_redis.xlen(f"{namespace}:outbox") == 0
    finally:
        stop.set()
        backoff.release()
        await running


class Conversations:
    """A handler standing in for Rasa whose answer for one resident waits for the test."""

    def __init__(self, slow: str) -> None:
        self.slow = slow
        self.go_on = asyncio.Event()
        self.started: list[str] = []

    async def __call__(self, message: InboundMessage) -> Sequence[OutboundMessage]:
        self.started.append(message.message_id)
        if message.sender == self.slow:
            await self.go_on.wait()  # a slow action, or the lock of a stopped server
        return [OutboundMessage(f"reply to {message.text}")]


def inbound(chat: str, message_id: str) -> InboundMessage:
    return InboundMessage(
        channel="telegram",
        account=BOT,
        sender=chat,
        message_id=message_id,
        text=message_id,
        received_at=time.time(),
    )


async def test_a_slow_conversation_does_not_delay_another(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    rasa = Conversations(slow=ALICE)
    worker = InboxWorker(async_redis, rasa, namespace, block_ms=10)

    async def replies() -> list[str]:
        rows = await async_redis.xrange(f"{namespace}:outbox")
        return [fields["text"] for _, fields in rows]

    async def replied(*texts: str) -> bool:
        return await replies() == list(texts)

    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await inbox.accept([inbound(ALICE, "alice-1"), inbound(ALICE, "alice-2")])
        await inbox.accept([inbound(BOB, "bob-1")])
        await until(lambda: replied("reply to bob-1"))
        assert rasa.started.count("alice-2") == 0  # waits behind her first
        rasa.go_on.set()
        await until(lambda: replied("reply to bob-1", "reply to alice-1", "reply to alice-2"))
        assert await inbox.pending_count() == 0
    finally:
        stop.set()
        rasa.go_on.set()
        await running
