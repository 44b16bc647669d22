"""An agent's reply queued with the WhatsApp window open but sent after it closed is not lost.

The race: the console offers free text (the window is open), the reply waits in the outbox
(backed up, or retried) past the 24-hour mark. The outbox then holds it, sends the approved
template once, and sends the agent's words when the resident answers, once. Real embedded
Redis, the real :class:`~bot.handoff.replies.OutboxSender`, outbox and inbox workers and the
Twilio stand-in.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio

from bot.channels import delivery
from bot.channels.base import InboundMessage, OutboundMessage
from bot.channels.inbox import Inbox, InboxWorker
from bot.channels.outbox import OutboxWorker, failed_sends
from bot.channels.twilio import TwilioAccount, TwilioAdapter
from bot.channels.window import touch, window_state
from bot.handoff.replies import OutboundReply, OutboxSender, reply_options
from bot.keys import key
from bot.testing.providers import FakeProvider
from bot.web.agent import match_deliveries

ACCOUNT = "+441234567890"
RESIDENT = "+447700900123"
CID = f"whatsapp:{ACCOUNT}:{RESIDENT}"
TEMPLATE_SID = "HX000000000000000000000000000000aa"
REPLY = "A crew will come back for your bin tomorrow morning."
DAY = 24 * 3600


@pytest.fixture
async def twilio(provider: FakeProvider) -> AsyncIterator[TwilioAdapter]:
    account = TwilioAccount(ACCOUNT, "AC01", "token", {"council_reply_waiting": TEMPLATE_SID})
    adapter = TwilioAdapter([account], api_base_url=provider.url, timeout=2.0)
    yield adapter
    await adapter.aclose()


def _sent(provider: FakeProvider) -> list[dict[str, str]]:
    return [r.form() for r in provider.requests if r.path.endswith("/Messages.json")]


async def test_a_reply_whose_window_closed_before_the_send_goes_when_the_resident_answers(
    async_redis: redis.asyncio.Redis, namespace: str, provider: FakeProvider, twilio: TwilioAdapter
) -> None:
    now = [time.time() - 120]  # the outbox's clock; the resident answers at the real time
    await touch(async_redis, CID, now[0] - DAY + 60, namespace, now=now[0])  # a minute left
    window = await window_state(async_redis, CID, namespace=namespace, now=now[0])
    options = reply_options("whatsapp", window, datetime.fromtimestamp(now[0], UTC))
    assert options.free_text  # what the console offers the agent: their own text
    await OutboxSender(async_redis, namespace).send(
        OutboundReply(CID, "whatsapp", ACCOUNT, RESIDENT, REPLY)
    )
    transcript = [{"role": "agent", "text": REPLY, "at": datetime.now(UTC).isoformat()}]

    now[0] += 90  # the outbox was backed up: the window closed before the send
    sender = OutboxWorker(
        async_redis, {"whatsapp": twilio}, namespace, block_ms=10, clock=lambda: now[0]
    )
    await sender.ensure_group()
    await sender.run_once()  # the reply: held
    await sender.run_once()  # the template the hold queued
    (invite,) = _sent(provider)  # the template asks the resident to answer; the words wait
    assert invite["ContentSid"] == TEMPLATE_SID and "Body" not in invite
    assert await async_redis.llen(key(namespace, "reports", "held", CID)) == 1
    assert await failed_sends(async_redis, namespace) == []
    states = await delivery.states(async_redis, CID, namespace=namespace)
    (shown,) = match_deliveries(transcript, states)
    assert shown is not None and shown["status"] == "queued"  # the console: still waiting

    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    answer = InboundMessage("whatsapp", ACCOUNT, RESIDENT, "SM1", "Thanks", time.time())
    assert await inbox.accept([answer])

    async def rasa(message: InboundMessage) -> list[OutboundMessage]:
        return []  # the case is with an agent: the bot says nothing

    assert await InboxWorker(async_redis, rasa, namespace, block_ms=10).run_once() == 1
    now[0] = time.time()
    await sender.run_once()
    await sender.run_once(block=False)  # nothing more: no second copy
    assert [form.get("Body") for form in _sent(provider)] == [None, REPLY]
    assert await async_redis.exists(key(namespace, "reports", "held", CID)) == 0
    assert await failed_sends(async_redis, namespace) == []
    states = await delivery.states(async_redis, CID, namespace=namespace)
    (shown,) = match_deliveries(transcript, states)
    assert shown is not None and shown["status"] == "sent"
