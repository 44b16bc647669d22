"""A report update reaches WhatsApp residents within the platform's window rules: the
channels' outbox sends it as it is inside 24 hours and as the approved template after."""

from __future__ import annotations

import time
from collections.abc import Mapping

import pytest
import redis.asyncio

from bot.channels.base import (
    ChannelAdapter,
    OutboundMessage,
    Parsed,
    SendResult,
    Template,
)
from bot.channels.outbox import OutboxWorker
from bot.channels.window import window_key
from bot.reports.notify import ResidentNotifier, Wording
from bot.reports.store import Subscriber
from tests.reports.conftest import make_report

# a connection, server or task left open by a test fails it (a CI run saw them at teardown)
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")


class Recording(ChannelAdapter):
    """A WhatsApp adapter that records what it is asked to send."""

    channel = "whatsapp"
    channels = ("whatsapp",)

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    def verify(self, headers: Mapping[str, str], raw_body: bytes, url: str) -> None:
        raise NotImplementedError

    def read(self, headers: Mapping[str, str], raw_body: bytes) -> Parsed:
        raise NotImplementedError

    def template_for(self, account: str) -> Template | None:
        return Template("council_reply_waiting")

    async def send(
        self, account: str, recipient: str, message: OutboundMessage, *, channel: str = ""
    ) -> SendResult:
        self.sent.append(message)
        return SendResult("sent", provider_id=f"m{len(self.sent)}")


async def _update_sent(
    async_redis: redis.asyncio.Redis, namespace: str, wording: Wording, hours_ago: float
) -> OutboundMessage:
    report = make_report()
    now = time.time()
    await async_redis.zadd(window_key(namespace), {report.conversation_id: now - hours_ago * 3600})
    notifier = ResidentNotifier(async_redis, namespace, wording)
    await notifier.tell(
        Subscriber.of(report, "1001", now), "1001|x", "utter_report_update_closed",
        reference="1001", service_name="Pothole", notes="", has_notes=False,
    )  # fmt: skip
    adapter = Recording()
    worker = OutboxWorker(async_redis, {"whatsapp": adapter}, namespace, block_ms=10)
    await worker.ensure_group()
    await worker.run_once(block=False)
    (sent,) = adapter.sent
    return sent


async def test_inside_the_24_hour_window_the_update_is_sent_as_written(
    async_redis: redis.asyncio.Redis, namespace: str, wording: Wording
) -> None:
    sent = await _update_sent(async_redis, namespace, wording, hours_ago=2)
    assert sent.template is None
    assert sent.text == "Update on your report 1001 (Pothole): the council has closed it."


async def test_after_24_hours_the_approved_template_goes_instead(
    async_redis: redis.asyncio.Redis, namespace: str, wording: Wording
) -> None:
    sent = await _update_sent(async_redis, namespace, wording, hours_ago=30)
    assert sent.template is not None and sent.template.name == "council_reply_waiting"
