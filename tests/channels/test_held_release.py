"""Held messages are released by the process that sends the outbox, with no reports process.

The Rasa server's :class:`~bot.channels.rasa.ChannelRuntime` (inbox and outbox workers) runs
against the test Redis and the Twilio stand-in; no council profile, no ``python -m
bot.reports``. A reply marked ``hold`` whose WhatsApp window is closed is held and the template
sent; when the resident writes again, the reply itself goes, once. The inbox worker releases
it as it takes up the resident's message, ahead of the replies to that message, however many
other conversations wait in the held set for the periodic walk.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio
from rasa.core.channels.channel import UserMessage

from bot.channels.base import InboundMessage, OutboundMessage
from bot.channels.held import Holder
from bot.channels.inbox import Inbox, InboxWorker
from bot.channels.outbox import OutboxWorker, failed_sends, outbox_fields
from bot.channels.rasa import ChannelRuntime
from bot.channels.twilio import TwilioAccount, TwilioAdapter
from bot.channels.window import touch
from bot.keys import key
from bot.testing.providers import FakeProvider

ACCOUNT = "+441234567890"
RESIDENT = "+447700900123"
CID = f"whatsapp:{ACCOUNT}:{RESIDENT}"
TEMPLATE_SID = "HX000000000000000000000000000000aa"
REPLY = "Your missed bin will be collected tomorrow."


@pytest.fixture
async def runtime(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str, provider: FakeProvider
) -> AsyncIterator[ChannelRuntime]:
    """The Rasa server's channel workers; the stand-in for Rasa answers nothing."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("COUNCIL_NAMESPACE", namespace)

    async def silent(message: UserMessage) -> None:
        pass

    account = TwilioAccount(ACCOUNT, "AC01", "token", {"council_reply_waiting": TEMPLATE_SID})
    channels = ChannelRuntime()
    channels.register(TwilioAdapter([account], api_base_url=provider.url, timeout=2.0), silent)
    await channels.start()
    yield channels
    await channels.stop()


def _sent(provider: FakeProvider) -> list[dict[str, str]]:
    return [r.form() for r in provider.requests if r.path.endswith("/Messages.json")]


async def _until(done: Callable[[], bool], seconds: float = 6.0) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def test_the_outboxs_process_releases_held_replies_when_the_resident_writes(
    runtime: ChannelRuntime, namespace: str, provider: FakeProvider
) -> None:
    client = runtime.redis
    assert client is not None
    await touch(client, CID, time.time() - 30 * 3600, namespace)  # the window closed 6 h ago
    fields = outbox_fields(CID, "whatsapp", ACCOUNT, RESIDENT, OutboundMessage(REPLY),
                           hold_seconds=3600)  # fmt: skip
    await client.xadd(key(namespace, "outbox"), fields)
    await _until(lambda: len(_sent(provider)) >= 1)
    (invite,) = _sent(provider)  # the template asks the resident to answer; the reply waits
    assert invite["ContentSid"] == TEMPLATE_SID and "Body" not in invite
    assert await client.llen(key(namespace, "reports", "held", CID)) == 1

    answer = InboundMessage("whatsapp", ACCOUNT, RESIDENT, "SM1", "Hi", time.time())
    assert await (await runtime.inbox()).accept([answer])  # the edge's write: the window opens
    await _until(lambda: len(_sent(provider)) >= 2)
    await asyncio.sleep(0.5)  # a second copy would arrive in this time
    assert [form.get("Body") for form in _sent(provider)[1:]] == [REPLY]
    assert await client.exists(key(namespace, "reports", "held", CID)) == 0
    assert await client.zscore(key(namespace, "reports", "held"), CID) is None
    assert await failed_sends(client, namespace) == []


async def test_a_residents_message_releases_its_held_reply_at_once_and_ahead_of_the_answer(
    async_redis: redis.asyncio.Redis, namespace: str, provider: FakeProvider
) -> None:
    """600 other conversations wait in the held set; no walk runs: the message itself
    releases this resident's held reply, queued and sent before the answer to the message."""
    holder = Holder(async_redis, namespace)
    for n in range(600):  # residents who have not answered (closed windows)
        other = f"whatsapp:{ACCOUNT}:+4477008{n:05d}"
        await holder.hold(outbox_fields(other, "whatsapp", ACCOUNT, other.rsplit(":", 1)[1],
                                        OutboundMessage("waits"), hold_seconds=3600),
                          marker="m", ttl=3600, now=float(n), invite=None)  # fmt: skip
    held = outbox_fields(CID, "whatsapp", ACCOUNT, RESIDENT, OutboundMessage(REPLY),
                         hold_seconds=3600)  # fmt: skip
    await holder.hold(held, marker="m", ttl=3600, now=1000.0, invite=None)
    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    await inbox.accept([InboundMessage("whatsapp", ACCOUNT, RESIDENT, "SM1", "Hi", time.time())])

    async def rasa(message: InboundMessage) -> list[OutboundMessage]:
        return [OutboundMessage("Hello again.")]

    assert await InboxWorker(async_redis, rasa, namespace, block_ms=10).run_once() == 1
    queued = [fields for _, fields in await async_redis.xrange(key(namespace, "outbox"))]
    assert [fields["text"] for fields in queued] == [REPLY, "Hello again."]
    assert queued[0] == held
    assert await async_redis.exists(key(namespace, "reports", "held", CID)) == 0
    assert await async_redis.zscore(key(namespace, "reports", "held"), CID) is None
    assert await async_redis.zcard(key(namespace, "reports", "held")) == 600

    # one sender takes a conversation's entries in stream order (its lane): held reply first
    account = TwilioAccount(ACCOUNT, "AC01", "token", {"council_reply_waiting": TEMPLATE_SID})
    twilio = TwilioAdapter([account], api_base_url=provider.url, timeout=2.0)
    try:
        sender = OutboxWorker(async_redis, {"whatsapp": twilio}, namespace, block_ms=10)
        await sender.ensure_group()
        assert await sender.run_once() == 2
    finally:
        await twilio.aclose()
    assert [form.get("Body") for form in _sent(provider)] == [REPLY, "Hello again."]


async def test_the_walk_releases_a_hold_that_raced_the_residents_message(
    runtime: ChannelRuntime, namespace: str, provider: FakeProvider
) -> None:
    """The safety net: held after the resident's message was taken up (its window open), with
    no message of theirs left to release it, it goes on the runtime's walk of the held set."""
    client = runtime.redis
    assert client is not None
    await touch(client, CID, time.time(), namespace)  # the resident wrote; already answered
    held = outbox_fields(CID, "whatsapp", ACCOUNT, RESIDENT, OutboundMessage(REPLY),
                         hold_seconds=3600)  # fmt: skip
    assert await Holder(client, namespace).hold(held, marker="m", ttl=3600, now=time.time(),
                                                invite=None)  # fmt: skip
    await _until(lambda: len(_sent(provider)) >= 1)
    assert [form.get("Body") for form in _sent(provider)] == [REPLY]
    assert await client.zscore(key(namespace, "reports", "held"), CID) is None
