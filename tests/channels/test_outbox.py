from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio

from bot.channels import delivery
from bot.channels.base import ChannelAdapter, OutboundMessage
from bot.channels.instagram import InstagramAccount, InstagramAdapter
from bot.channels.messenger import MessengerAdapter, MessengerPage
from bot.channels.outbox import GROUP, OutboxWorker, failed_sends, outbox_fields, queue_reply
from bot.channels.telegram import TelegramAdapter, TelegramBotAccount
from bot.channels.twilio import TwilioAccount, TwilioAdapter
from bot.channels.window import touch
from bot.keys import key
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
async def adapters(provider: FakeProvider) -> AsyncIterator[dict[str, ChannelAdapter]]:
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
    instagram = InstagramAdapter(
        [InstagramAccount(PAGE, "IG-TOKEN")],
        app_secret="s",
        verify_token="v",
        api_base_url=provider.url,
        timeout=1.0,
    )
    yield {"whatsapp": twilio, "sms": twilio, "messenger": messenger, "instagram": instagram}
    await twilio.aclose()
    await messenger.aclose()
    await instagram.aclose()


def make_worker(
    client: redis.asyncio.Redis,
    adapters: dict[str, ChannelAdapter],
    namespace: str,
    sleeps: Sleeps,
    **kw: Any,
) -> OutboxWorker:
    return OutboxWorker(
        client,
        adapters,
        namespace,
        sleep=sleeps,
        block_ms=10,
        base_delay=1.0,
        **kw,
    )


async def queue(client: redis.asyncio.Redis, namespace: str, cid: str = CID, **kw: Any) -> str:
    channel, account, recipient = cid.split(":", 2)
    return await queue_reply(
        client, namespace, cid, channel, account, recipient, OutboundMessage(**kw)
    )


@pytest.fixture
async def open_windows(async_redis: redis.asyncio.Redis, namespace: str) -> None:
    await touch(async_redis, CID, time.time(), namespace)
    await touch(async_redis, MCID, time.time(), namespace)


async def test_outage_is_retried_with_backoff_then_sent(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, ChannelAdapter],
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
    # the retry schedule of a send that failed goes with it
    assert await async_redis.zcard(f"{namespace}:outbox:due") == 0
    assert await async_redis.hlen(f"{namespace}:outbox:retries") == 0


async def test_retry_after_is_honoured(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, ChannelAdapter],
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
    adapters: dict[str, ChannelAdapter],
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
    adapters: dict[str, ChannelAdapter],
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
    # two retries were scheduled, the third failure was not: nothing of it is left behind
    assert await async_redis.hlen(key(namespace, "outbox", "retries")) == 0
    assert await async_redis.zcard(key(namespace, "outbox", "due")) == 0


async def test_closed_whatsapp_window_sends_the_template(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, ChannelAdapter],
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


async def test_a_text_marked_hold_whose_window_closes_during_its_retries_is_held(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, ChannelAdapter],
) -> None:
    """Open at the first try, closed after the backoff: the text is held (bot.channels.held),
    not swapped for the template and lost; the template is queued once."""
    now = [time.time()]

    async def sleep(seconds: float) -> None:
        now[0] += 3600  # the provider's outage outlasts the window

    await touch(async_redis, CID, now[0] - DAY + 60, namespace, now=now[0])
    provider.script(Answer(503, {"code": 20503, "message": "Service Unavailable"}))
    worker = OutboxWorker(
        async_redis, adapters, namespace, sleep=sleep, clock=lambda: now[0], block_ms=10
    )
    await worker.ensure_group()
    channel, account, recipient = CID.split(":", 2)
    text = "Update on your report 1001: the council has closed it."
    message = OutboundMessage(text)
    fields = outbox_fields(CID, channel, account, recipient, message, hold_seconds=3600)
    await async_redis.xadd(key(namespace, "outbox"), fields)
    await worker.run_once()
    assert [r.form().get("Body") for r in provider.requests] == [text]  # the 503
    held = await async_redis.lrange(key(namespace, "reports", "held", CID), 0, -1)
    (pairs,) = map(json.loads, held)
    assert dict(zip(pairs[::2], pairs[1::2], strict=True))["text"] == text
    await worker.run_once()  # the template the hold queued
    assert provider.requests[-1].form()["ContentSid"] == "HX000000000000000000000000000000aa"
    assert len(provider.requests) == 2 and await failed_sends(async_redis, namespace) == []
    assert await async_redis.xlen(key(namespace, "outbox")) == 0


async def test_agent_console_entries_are_understood(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, ChannelAdapter],
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


@pytest.mark.parametrize("channel", ["messenger", "instagram"])
async def test_meta_human_agent_tag_and_seven_day_limit(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, ChannelAdapter],
    sleeps: Sleeps,
    channel: str,
) -> None:
    # Meta's rule for both of its channels (bot.handoff.replies.reply_options)
    recent = f"{channel}:{PAGE}:{PSID}"
    await touch(async_redis, recent, time.time() - 3 * DAY, namespace)
    late = f"{channel}:{PAGE}:1111"
    await touch(async_redis, late, time.time() - 7.5 * DAY, namespace)
    worker = make_worker(async_redis, adapters, namespace, sleeps)
    await worker.ensure_group()
    await queue(async_redis, namespace, recent, text="An agent replies after 3 days")
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
    adapters: dict[str, ChannelAdapter],
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
    async_redis: redis.asyncio.Redis,
    namespace: str,
    adapters: dict[str, ChannelAdapter],
    sleeps: Sleeps,
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


class Clock:
    """Unix time that moves only when the worker waits (a fake ``sleep`` and ``time``)."""

    def __init__(self) -> None:
        self.now = time.time()
        self.delays: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds


async def test_a_thirty_second_outage_is_retried_through(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, ChannelAdapter],
    open_windows: None,
) -> None:
    clock = Clock()
    start = clock.now
    # about 35 s of 500s at the default backoff (1, 2, 4, 8, 16 s ...)
    provider.script(*[Answer(500, {"code": 20500, "message": "down"})] * 6)
    worker = OutboxWorker(
        async_redis, adapters, namespace, block_ms=10, sleep=clock.sleep, clock=clock
    )
    await worker.ensure_group()
    await queue(async_redis, namespace, text="Your bin day is Tuesday.")
    assert await worker.run_once() == 1
    assert clock.now - start > 30
    assert len(provider.requests) == 7
    assert await failed_sends(async_redis, namespace) == []
    [state] = await delivery.states(async_redis, CID, namespace=namespace)
    assert state.status == "sent" and state.provider_id.startswith("SM")


async def test_given_up_after_the_time_budget_and_surfaced(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, ChannelAdapter],
    open_windows: None,
) -> None:
    clock = Clock()
    provider.script(*[Answer(503, {"code": 20503, "message": "down"})] * 50)
    worker = OutboxWorker(
        async_redis,
        adapters,
        namespace,
        block_ms=10,
        give_up_after=120,
        sleep=clock.sleep,
        clock=clock,
    )
    await worker.ensure_group()
    entry = await queue(async_redis, namespace, text="hello")
    await worker.run_once()
    assert 120 <= sum(clock.delays) < 120 + 60
    [failed] = await failed_sends(async_redis, namespace)
    assert failed["error"].startswith(f"gave up after {len(provider.requests)} attempts: HTTP 503")
    [state] = await delivery.states(async_redis, CID, namespace=namespace)
    assert state.status == "failed" and state.entry == entry
    assert await async_redis.zcard(f"{namespace}:outbox:due") == 0
    assert await async_redis.hlen(f"{namespace}:outbox:retries") == 0


async def test_a_value_that_makes_the_worker_raise_is_dead_lettered_and_it_goes_on(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, ChannelAdapter],
    sleeps: Sleeps,
    open_windows: None,
) -> None:
    # a signed Messenger event with timestamp 1e308 once made this the window time
    poisoned = f"messenger:{PAGE}:2222"
    await touch(async_redis, poisoned, 1e308, namespace)
    worker = make_worker(async_redis, adapters, namespace, sleeps)
    await worker.ensure_group()
    await queue(async_redis, namespace, poisoned, text="Poisoned")
    await queue(async_redis, namespace, MCID, text="Healthy")
    assert await worker.run_once() == 2
    [request] = provider.requests
    assert request.json()["message"]["text"] == "Healthy"
    [failed] = await failed_sends(async_redis, namespace)
    assert failed["conversation_id"] == poisoned
    assert failed["error"] == (
        "gave up after 3 attempts: worker error: "
        "OverflowError: timestamp out of range for platform time_t"
    )
    assert len(sleeps.delays) == 2  # retried, then given up: not minutes of retries

    # and the worker is still there for the next reply
    await queue(async_redis, namespace, MCID, text="Next")
    assert await worker.run_once() == 1
    assert provider.requests[-1].json()["message"]["text"] == "Next"


async def test_a_scheduled_retry_keeps_its_time_and_budget_across_a_restart(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, ChannelAdapter],
    open_windows: None,
) -> None:
    clock = Clock()
    restarted = OutboxWorker(
        async_redis,
        adapters,
        namespace,
        consumer="host-1-aaaaaa",
        block_ms=10,
        sleep=clock.sleep,
        clock=clock,
    )
    await restarted.ensure_group()
    entry = await queue(async_redis, namespace, text="hello")
    # a worker that failed twice, scheduled the next attempt in 40 s, and was killed
    await async_redis.xreadgroup(GROUP, "host-1-aaaaaa", {f"{namespace}:outbox": ">"})
    await async_redis.hset(
        f"{namespace}:outbox:retries",
        entry,
        f'{{"attempts": 2, "first": {clock.now - 590}, "errors": 0}}',
    )
    await async_redis.zadd(f"{namespace}:outbox:due", {entry: clock.now + 40})
    provider.script(Answer(500, {"code": 20500, "message": "down"}))
    await restarted.run_once()
    assert clock.delays == [40]  # waited for the scheduled time, not at once
    # the third failure came 630 s after the first: over the 600 s budget, given up
    [failed] = await failed_sends(async_redis, namespace)
    assert failed["error"] == "gave up after 3 attempts: HTTP 500"
    assert len(provider.requests) == 1


async def test_the_delivery_state_is_recorded_when_redis_has_lost_its_scripts(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    provider: FakeProvider,
    adapters: dict[str, ChannelAdapter],
    sleeps: Sleeps,
    open_windows: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the finish runs the state script by its digest; a Redis restarted (or never asked
    # before) answers NOSCRIPT, as for this digest of no script at all
    monkeypatch.setattr(delivery, "_APPLY_SHA", "0" * 40)
    worker = make_worker(async_redis, adapters, namespace, sleeps)
    await worker.ensure_group()
    entry = await queue(async_redis, namespace, text="Your bin day is Tuesday.")
    assert await worker.run_once() == 1
    [state] = await delivery.states(async_redis, CID, namespace=namespace)
    assert state.status == "sent" and state.entry == entry
    assert state.text == "Your bin day is Tuesday."
    assert await async_redis.xlen(f"{namespace}:outbox") == 0
