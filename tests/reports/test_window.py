"""Report messages reach WhatsApp residents within the platform's window rules, through the
real ``twilio`` client against the local Twilio stand-in (:class:`FakeProvider`): inside 24
hours the update goes as written; after, the approved template goes and the update is held,
then sent once, in order, when the resident answers (the inbox records their message)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from bot.channels.base import InboundMessage
from bot.channels.held import HeldMessages
from bot.channels.inbox import Inbox
from bot.channels.outbox import OutboxWorker, failed_sends
from bot.channels.twilio import TwilioAccount, TwilioAdapter
from bot.channels.window import touch
from bot.reports.notify import ResidentNotifier, Wording
from bot.reports.store import Subscriber
from bot.testing.providers import FakeProvider
from tests.reports.conftest import make_report

# a connection, server or task left open by a test fails it (a CI run saw them at teardown)
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

REPORT = make_report()
TEMPLATE_SID = "HX000000000000000000000000000000aa"
CLOSED = "Update on your report 1001 (Pothole): the council has closed it."


@pytest.fixture
async def worker(
    async_redis: redis.asyncio.Redis, namespace: str, provider: FakeProvider
) -> AsyncIterator[OutboxWorker]:
    """The channels' outbox worker with the real Twilio adapter (the account has the template)."""
    templates = {"council_reply_waiting": TEMPLATE_SID}
    account = TwilioAccount(REPORT.account, "AC01", "token", templates)
    twilio = TwilioAdapter([account], api_base_url=provider.url, timeout=2.0)
    outbox = OutboxWorker(async_redis, {"whatsapp": twilio}, namespace, block_ms=10)
    await outbox.ensure_group()
    yield outbox
    await twilio.aclose()


async def _update(notifier: ResidentNotifier, change: str, status: str, notes: str = "") -> None:
    await notifier.tell(
        Subscriber.of(REPORT, "1001", time.time()), f"1001|{change}",
        "utter_report_update_closed" if status == "closed" else "utter_report_update_open",
        reference="1001", service_name="Pothole", notes=notes, has_notes=bool(notes),
    )  # fmt: skip


def _sent(provider: FakeProvider) -> list[dict[str, str]]:
    return [r.form() for r in provider.requests if r.path.endswith("/Messages.json")]


async def _resident_answers(async_redis: redis.asyncio.Redis, namespace: str) -> None:
    """The resident's message, accepted by the inbox as the edge does."""
    message = InboundMessage(
        "whatsapp", REPORT.account, REPORT.sender, f"SM{time.time_ns()}", "Hi", time.time()
    )
    assert await Inbox(async_redis, namespace).accept([message])


async def test_inside_the_24_hour_window_the_update_is_sent_as_written(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    wording: Wording,
    worker: OutboxWorker,
    provider: FakeProvider,
) -> None:
    await touch(async_redis, REPORT.conversation_id, time.time() - 2 * 3600, namespace)
    await _update(ResidentNotifier(async_redis, namespace, wording), "a", "closed")
    await worker.run_once(block=False)
    (sent,) = _sent(provider)
    assert sent["Body"] == CLOSED and "ContentSid" not in sent
    assert sent["To"] == f"whatsapp:{REPORT.sender}"


async def test_after_24_hours_the_template_goes_and_the_update_when_the_resident_answers(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    wording: Wording,
    worker: OutboxWorker,
    provider: FakeProvider,
) -> None:
    await touch(async_redis, REPORT.conversation_id, time.time() - 30 * 3600, namespace)
    notifier = ResidentNotifier(async_redis, namespace, wording)
    held = HeldMessages(async_redis, namespace)
    await _update(notifier, "a", "open", "Inspected: repair booked")
    await _update(notifier, "b", "closed")
    await _update(notifier, "b", "closed")  # the same change again (poll and push): once
    await worker.run_once(block=False)
    (invite,) = _sent(provider)  # one template for both updates, no update text yet
    assert invite["ContentSid"] == TEMPLATE_SID and "Body" not in invite
    assert await held.release_once() == 0  # the window is still closed: nothing goes
    await worker.run_once(block=False)
    assert len(_sent(provider)) == 1

    await _resident_answers(async_redis, namespace)
    released = await asyncio.gather(held.release_once(), held.release_once())  # two releasers
    assert sorted(released) == [0, 2]
    await worker.run_once(block=False)
    bodies = [form.get("Body") for form in _sent(provider)[1:]]
    assert bodies == [  # in order
        "Update on your report 1001 (Pothole): it is open and being dealt with. "
        "The council says: Inspected: repair booked",
        CLOSED,
    ]
    assert await held.release_once() == 0  # sent once
    await worker.run_once(block=False)
    assert len(_sent(provider)) == 3 and await failed_sends(async_redis, namespace) == []

    # a later change while the window is open again goes at once, as written
    await _update(notifier, "c", "open", "Reopened")
    await worker.run_once(block=False)
    assert "Reopened" in _sent(provider)[-1]["Body"]


async def test_held_messages_of_an_account_without_the_template_wait_and_are_not_lost(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    wording: Wording,
    provider: FakeProvider,
) -> None:
    account = TwilioAccount(REPORT.account, "AC01", "token")  # no template configured
    twilio = TwilioAdapter([account], api_base_url=provider.url, timeout=2.0)
    worker = OutboxWorker(async_redis, {"whatsapp": twilio}, namespace, block_ms=10)
    await worker.ensure_group()
    try:
        await touch(async_redis, REPORT.conversation_id, time.time() - 30 * 3600, namespace)
        await _update(ResidentNotifier(async_redis, namespace, wording), "a", "closed")
        await worker.run_once(block=False)
        assert _sent(provider) == []
        (failed,) = await failed_sends(async_redis, namespace)  # agents see it
        assert "template" in failed["error"]
        await _resident_answers(async_redis, namespace)
        assert await HeldMessages(async_redis, namespace).release_once() == 1
        await worker.run_once(block=False)
        (sent,) = _sent(provider)
        assert sent["Body"] == CLOSED
    finally:
        await twilio.aclose()


async def test_an_update_queued_inside_the_window_that_closes_before_the_send_is_held(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    wording: Wording,
    provider: FakeProvider,
) -> None:
    """Queued while the window is open, sent after it closed (retries, a backlog): the
    template goes, and the update itself when the resident answers, once, in order."""
    now = time.time()
    account = TwilioAccount(
        REPORT.account, "AC01", "token", {"council_reply_waiting": TEMPLATE_SID}
    )
    twilio = TwilioAdapter([account], api_base_url=provider.url, timeout=2.0)
    later = OutboxWorker(  # the outbox gets to the entries two hours later
        async_redis, {"whatsapp": twilio}, namespace, block_ms=10, clock=lambda: now + 2 * 3600
    )
    await later.ensure_group()
    try:
        await touch(async_redis, REPORT.conversation_id, now - 23 * 3600, namespace, now=now)
        notifier = ResidentNotifier(async_redis, namespace, wording, clock=lambda: now)
        await _update(notifier, "a", "open", "Inspected: repair booked")
        await _update(notifier, "b", "closed")
        await later.run_once(block=False)  # swaps the template in: the first entry holds both
        await later.run_once(block=False)
        (invite,) = _sent(provider)
        assert invite["ContentSid"] == TEMPLATE_SID and "Body" not in invite
        assert await failed_sends(async_redis, namespace) == []
        held = HeldMessages(async_redis, namespace, clock=lambda: now + 2 * 3600)
        assert await held.release_once() == 0  # still closed

        await _resident_answers(async_redis, namespace)
        assert await held.release_once() == 2
        await later.run_once(block=False)
        assert [form.get("Body") for form in _sent(provider)[1:]] == [
            "Update on your report 1001 (Pothole): it is open and being dealt with. "
            "The council says: Inspected: repair booked",
            CLOSED,
        ]
        assert await held.release_once() == 0  # once
        await later.run_once(block=False)
        assert len(_sent(provider)) == 3 and await failed_sends(async_redis, namespace) == []
    finally:
        await twilio.aclose()
