from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from bot.channels.base import OutboundMessage
from bot.channels.messenger import MessengerAdapter, MessengerPage
from bot.channels.outbox import GROUP, OutboxWorker, failed_sends, queue_reply
from bot.channels.telegram import TelegramAdapter, TelegramBotAccount
from bot.channels.twilio import TwilioAccount, TwilioAdapter
from bot.channels.window import touch
from bot.testing.providers import Answer, FakeProvider

from .conftest import Sleeps

NUMBER = "+441234567890"
RESIDENT = "+447700900123"
CID = f"whatsapp:{NUMBER}:{RESIDENT}"
PAGE = "104857600000001"
PSID = "6789012345678901"
MCID = f"messenger:{PAGE}:{PSID}"
DAY = 24 * 3600.0


@pytest.fixture
async def adapters(provider: FakeProvider) -> AsyncIterator[dict[str, object]]:
    twilio = TwilioAdapter(
        [
            TwilioAccount(
                NUMBER,
                "AC01",
                "token",
                {"council_reply_waiting": "HX000000000000000000000000000000aa"},
            ),
            TwilioAccount("+441234567891", "AC02", "token2"),
        ],
        api_base_url=provider.url,
        timeout=1.0,
    )
    messenger = MessengerAdapter(
        [MessengerPage(PAGE, "PAGE-TOKEN")],
        app_secret="s",
        verify_token="v",
        api_base_url=provider.url,
        timeout=1.0,
    )
    yield {"whatsapp": twilio, "sms": twilio, "messenger": messenger}
    await twilio.aclose()
    await messenger.aclose()


def make_worker(
    client: redis.asyncio.Redis,
    adapters: dict[str, object],
    namespace: str,
    sleeps: Sleeps,
    **kw: object,
) -> OutboxWorker:
    return OutboxWorker(
        client,
        adapters,
        namespace,
        sleep=sleeps,
        block_ms=10,
        base_delay=1.0,
        **kw,  # type: ignore[arg-type]
    )


async def queue(client: redis.asyncio.Redis, namespace: str, cid: str = CID, **kw: object) -> str:
    channel, account, recipient = cid.split(":", 2)
    return await queue_reply(
        client, namespace, cid, channel, account, recipient, OutboundMessage(**kw)
    )  # type: ignore[arg-type]


@pytest.fixture
async def open_windows(async_redis: redis.asyncio.Redis, namespace: str) -> None:
    await touch(async_redis, CID, time.time(), namespace)
    await touch(async_redis, MCID, time.time(), namespace)


async def test_outage_is_retried_with_backoff_then_sent(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, object],
    sleeps: Sleeps,
    open_windows: None,
) -> None:
    provider.script(
        Answer(500, {"code": 20500, "message": "Internal Server Error"}),
        Answer(503, {"code": 20503, "message": "Service Unavailable"}),
        Answer(201, {"sid": "SMlate"}, delay=2.0),  # timeout
    )
    worker = make_worker(async_redis, adapters, namespace, sleeps)
    await worker.ensure_group()
    await queue(async_redis, namespace, text="Your bin day is Tuesday.")
    assert await worker.run_once() == 1
    assert len(provider.requests) == 4
    assert provider.requests[-1].form()["Body"] == "Your bin day is Tuesday."
    assert len(sleeps.delays) == 3
    assert (
        0.8 <= sleeps.delays[0] <= 1.0
        and 1.6 <= sleeps.delays[1] <= 2.0
        and 3.2 <= sleeps.delays[2] <= 4.0
    )
    assert await failed_sends(async_redis, namespace) == []
    assert await async_redis.xlen(f"{namespace}:outbox") == 0


async def test_retry_after_is_honoured(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, object],
    sleeps: Sleeps,
    open_windows: None,
) -> None:
    provider.script(
        Answer(429, {"error": {"message": "slow down", "code": 2}}, {"Retry-After": "17"})
    )
    worker = make_worker(async_redis, adapters, namespace, sleeps)
    await worker.ensure_group()
    await queue(async_redis, namespace, MCID, text="hi")
    await worker.run_once()
    assert sleeps.delays == [17.0]
    assert len(provider.requests) == 2


async def test_permanent_failure_is_surfaced_not_dropped(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, object],
    sleeps: Sleeps,
    open_windows: None,
) -> None:
    provider.script(Answer(400, {"code": 63016, "message": "outside the allowed window"}))
    worker = make_worker(async_redis, adapters, namespace, sleeps)
    await worker.ensure_group()
    await queue(async_redis, namespace, text="An agent's answer")
    await worker.run_once()
    assert sleeps.delays == []
    [failed] = await failed_sends(async_redis, namespace)
    assert failed["code"] == "63016"
    assert failed["text"] == "An agent's answer"
    assert failed["conversation_id"] == CID
    assert await async_redis.xlen(f"{namespace}:outbox") == 0


async def test_exhausted_retries_are_surfaced(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, object],
    sleeps: Sleeps,
    open_windows: None,
) -> None:
    provider.script(*[Answer(500, {"code": 20500, "message": "down"})] * 3)
    worker = make_worker(async_redis, adapters, namespace, sleeps, max_attempts=3)
    await worker.ensure_group()
    await queue(async_redis, namespace, text="hello")
    await worker.run_once()
    assert len(provider.requests) == 3
    [failed] = await failed_sends(async_redis, namespace)
    assert "gave up after 3 attempts" in failed["error"]


async def test_closed_whatsapp_window_sends_the_template(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, object],
    sleeps: Sleeps,
) -> None:
    await touch(async_redis, CID, time.time() - 2 * DAY, namespace)
    other = "whatsapp:+441234567891:+447700900999"  # no template configured, never wrote
    worker = make_worker(async_redis, adapters, namespace, sleeps)
    await worker.ensure_group()
    await queue(async_redis, namespace, text="Free text after 48 hours")
    await queue(async_redis, namespace, other, text="Free text, no template")
    await worker.run_once()
    [request] = provider.requests
    form = request.form()
    assert form["ContentSid"] == "HX000000000000000000000000000000aa" and "Body" not in form
    [failed] = await failed_sends(async_redis, namespace)
    assert failed["conversation_id"] == other and "window closed" in failed["error"]


async def test_agent_console_entries_are_understood(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, object],
    sleeps: Sleeps,
    open_windows: None,
) -> None:
    # the shape bot.handoff.replies.OutboxSender writes
    await async_redis.xadd(
        f"{namespace}:outbox",
        {
            "conversation_id": CID,
            "channel": "whatsapp",
            "account": NUMBER,
            "recipient": RESIDENT,
            "text": "ignored",
            "tag": "template:council_reply_waiting",
        },
    )
    worker = make_worker(async_redis, adapters, namespace, sleeps)
    await worker.ensure_group()
    await worker.run_once()
    assert provider.requests[0].form()["ContentSid"] == "HX000000000000000000000000000000aa"


async def test_messenger_human_agent_tag_and_seven_day_limit(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, object],
    sleeps: Sleeps,
) -> None:
    await touch(async_redis, MCID, time.time() - 3 * DAY, namespace)
    late = f"messenger:{PAGE}:1111"
    await touch(async_redis, late, time.time() - 7.5 * DAY, namespace)
    worker = make_worker(async_redis, adapters, namespace, sleeps)
    await worker.ensure_group()
    await queue(async_redis, namespace, MCID, text="An agent replies after 3 days")
    await queue(async_redis, namespace, late, text="Too late")
    await queue(async_redis, namespace, late, text="Too late, tagged", tag="HUMAN_AGENT")
    await worker.run_once()
    [request] = provider.requests
    assert request.json()["tag"] == "HUMAN_AGENT"
    failed = await failed_sends(async_redis, namespace)
    assert [f["conversation_id"] for f in failed] == [late, late]


async def test_unsent_entry_survives_a_crash(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, object],
    sleeps: Sleeps,
    open_windows: None,
) -> None:
    worker = make_worker(async_redis, adapters, namespace, sleeps, consumer="s1")
    await worker.ensure_group()
    await queue(async_redis, namespace, text="hello")
    # read by a sender that then died before sending
    await async_redis.xreadgroup(GROUP, "s1", {f"{namespace}:outbox": ">"}, count=1)
    restarted = make_worker(async_redis, adapters, namespace, sleeps, consumer="s1")
    assert await restarted.run_once() == 1
    assert len(provider.requests) == 1


async def test_unknown_channel_is_surfaced(
    async_redis: redis.asyncio.Redis, namespace: str, adapters: dict[str, object], sleeps: Sleeps
) -> None:
    worker = make_worker(async_redis, adapters, namespace, sleeps)
    await worker.ensure_group()
    await queue(async_redis, namespace, "line:acct:user", text="hi")
    await worker.run_once()
    [failed] = await failed_sends(async_redis, namespace)
    assert "no adapter" in failed["error"]


async def test_telegram_outage_through_the_real_bot(
    async_redis: redis.asyncio.Redis, namespace: str, provider: FakeProvider, sleeps: Sleeps
) -> None:
    telegram = TelegramAdapter(
        [TelegramBotAccount("councilbot", "1:abc", "secret")],
        api_base_url=provider.url,
        timeout=1.0,
    )
    try:
        provider.script(
            Answer(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}),
            Answer(
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests",
                    "parameters": {"retry_after": 4},
                },
            ),
        )
        worker = make_worker(async_redis, {"telegram": telegram}, namespace, sleeps)
        await worker.ensure_group()
        await queue(async_redis, namespace, "telegram:councilbot:123456789", text="Bins on Tuesday")
        await worker.run_once()
        assert len(provider.requests) == 3
        assert sleeps.delays[1] == 4.0
        assert await failed_sends(async_redis, namespace) == []
    finally:
        await telegram.aclose()
