"""Held messages are released by the process that sends the outbox, with no reports process.

The Rasa server's :class:`~bot.channels.rasa.ChannelRuntime` (inbox and outbox workers) runs
against the test Redis and the Twilio stand-in; no council profile, no ``python -m
bot.reports``. A reply marked ``hold`` whose WhatsApp window is closed is held and the template
sent; when the resident writes again, the reply itself goes, once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from rasa.core.channels.channel import UserMessage

from bot.channels.base import InboundMessage, OutboundMessage
from bot.channels.outbox import failed_sends, outbox_fields
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
