"""The edge application: webhooks in, Redis inbox out, short answers, nothing else."""

from __future__ import annotations

import json
import logging

import aiohttp
import pytest
import redis.asyncio
import yarl
from twilio.request_validator import RequestValidator

from bot.channels.inbox import Inbox
from bot.channels.telegram import TelegramAdapter
from bot.testing.edge import serving

from .conftest import (
    TWILIO_TOKEN,
    channels,
    load,
    signed_whatsapp,
    telegram_headers,
    telegram_update,
)


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as answer,
    ):
        return answer.status, await answer.text(), {k.lower(): v for k, v in answer.headers.items()}


async def queued(client: redis.asyncio.Redis, namespace: str) -> list[dict[str, str]]:
    entries = await client.xrange(f"{namespace}:inbox")
    return [json.loads(fields["message"]) for _, fields in entries]


async def test_a_signed_telegram_update_is_in_the_inbox_before_the_200(
    edge: str, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    status, text, headers = await post(
        f"{edge}/webhooks/telegram/webhook", telegram_update("bins?"), telegram_headers()
    )
    assert (status, text) == (200, "ok")
    assert headers["server"] == "uvicorn"
    assert headers["x-content-type-options"] == "nosniff"
    [message] = await queued(async_redis, namespace)
    assert (message["channel"], message["account"], message["text"]) == (
        "telegram",
        "councilbot",
        "bins?",
    )


async def test_a_signed_whatsapp_message_is_checked_against_the_url_twilio_called(
    edge: str, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    url = f"{edge}/webhooks/whatsapp/webhook"
    body, headers = signed_whatsapp(url)
    for _ in range(2):  # Twilio retries: one message queued
        status, text, _ = await post(url, body, headers)
        assert status == 200
        assert "<Response>" in text
    [message] = await queued(async_redis, namespace)
    assert message["sender"] == "+447700900123"
    signed_elsewhere, other = signed_whatsapp("https://elsewhere.example/webhooks/whatsapp/webhook")
    assert (await post(url, signed_elsewhere, other))[0] == 403


async def test_only_configured_channels_and_health_are_served(edge: str) -> None:
    async with aiohttp.ClientSession() as session:
        for path in (
            "/webhooks/messenger/webhook",  # a channel this edge was not configured with
            "/webhooks/rest/webhook",  # Rasa's REST channel is never on the edge
            "/conversations/x/tracker",  # nor Rasa's HTTP API
            "/",
        ):
            async with session.post(f"{edge}{path}", data=b"{}") as answer:
                assert answer.status == 404, path
        async with session.get(f"{edge}/health") as health:
            assert (health.status, await health.json()) == (200, {"status": "ok"})
        async with session.delete(f"{edge}/webhooks/telegram/webhook") as other:
            assert other.status == 405


async def test_redis_down_is_503_so_the_provider_retries(namespace: str) -> None:
    gone = redis.asyncio.Redis(port=1, decode_responses=True, socket_connect_timeout=0.5)
    try:
        async with serving(channels(), gone, namespace) as edge:
            status, _, _ = await post(
                f"{edge}/webhooks/telegram/webhook", telegram_update(), telegram_headers()
            )
            assert status == 503
            async with aiohttp.ClientSession() as session, session.get(f"{edge}/health") as h:
                assert h.status == 503
    finally:
        await gone.close()


async def test_an_unexpected_failure_is_a_short_500_without_a_trace(
    edge: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: TelegramAdapter, headers: object, raw_body: bytes, url: str) -> None:
        raise RuntimeError(f"failed on {raw_body!r}")

    monkeypatch.setattr(TelegramAdapter, "verify", broken)
    with caplog.at_level(logging.INFO):
        status, text, _ = await post(
            f"{edge}/webhooks/telegram/webhook",
            telegram_update("my secret text"),
            telegram_headers(),
        )
    assert (status, text) == (500, "internal error")
    logged = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert "RuntimeError" in logged
    assert "my secret text" not in logged
    assert "Traceback" not in logged


async def test_the_group_exists_before_any_worker_starts(
    edge: str, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    groups = await async_redis.xinfo_groups(Inbox(async_redis, namespace).stream)
    assert [group["name"] for group in groups] == ["workers"]


async def test_a_whatsapp_number_set_to_get_is_received(
    edge: str, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    url = f"{edge}/webhooks/whatsapp/webhook?{load('twilio', 'whatsapp_text.txt').decode()}"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, {})
    exact = yarl.URL(url, encoded=True)  # as Twilio sends it: no re-encoding of the query
    async with aiohttp.ClientSession() as session:
        async with session.get(exact, headers={"X-Twilio-Signature": signature}) as answer:
            assert answer.status == 200
        async with session.get(exact, headers={"X-Twilio-Signature": "AAAA"}) as refused:
            assert refused.status == 403
    [message] = await queued(async_redis, namespace)
    assert message["text"] == "When is my bin day?"


async def test_replicas_behind_a_load_balancer_share_nothing_but_redis(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    async with (
        serving(channels(), async_redis, namespace) as first,
        serving(channels(), async_redis, namespace) as second,
    ):
        update = telegram_update("bins?", update_id=77)
        for replica in (first, second, first):  # Telegram's retries land anywhere
            status, _, _ = await post(
                f"{replica}/webhooks/telegram/webhook", update, telegram_headers()
            )
            assert status == 200
    assert [m["message_id"] for m in await queued(async_redis, namespace)] == ["77"]
