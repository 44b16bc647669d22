"""Out of hours, the resident continues on WhatsApp or SMS: a code by text proves the number,
then the conversation's replies also go there (through the outbox and its window rules)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from bot.channels.base import OutboundMessage
from bot.channels.outbox import OutboxWorker
from bot.channels.twilio import TwilioAccount, TwilioAdapter
from bot.keys import key
from bot.testing.providers import FakeProvider
from bot.testing.webchat import WebChatClient
from bot.webchat.adapter import WebChatAdapter
from bot.webchat.phone import uk_mobile

from .conftest import COUNCIL, TWILIO_NUMBER

TEMPLATE = "HX0000000000000000000000000000000a"


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    fake = await FakeProvider().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def outbox(
    provider: FakeProvider, async_redis: redis.asyncio.Redis, namespace: str
) -> AsyncIterator[OutboxWorker]:
    """The Rasa server's outbox worker: Twilio (at the fake) and the web chat."""
    twilio = TwilioAdapter(
        [
            TwilioAccount(
                TWILIO_NUMBER,
                "AC00000000000000000000000000000001",
                "0123456789abcdef0123456789abcdef",
                templates={"council_reply_waiting": TEMPLATE},
            )
        ],
        api_base_url=provider.url,
        timeout=2.0,
    )
    adapters = {
        "sms": twilio,
        "whatsapp": twilio,
        "webchat": WebChatAdapter(async_redis, namespace),
    }
    worker = OutboxWorker(async_redis, adapters, namespace)
    await worker.ensure_group()
    yield worker
    await twilio.aclose()


async def ask_for_code(resident: WebChatClient, channel: str = "whatsapp") -> None:
    answer = await resident.http.post(
        "/webchat/continue",
        json={"channel": channel, "phone": "07700 900123"},
        headers=resident.auth,
    )
    assert answer.status_code == 202


async def confirm(resident: WebChatClient, code: str) -> int:
    answer = await resident.http.post(
        "/webchat/continue/confirm", json={"code": code}, headers=resident.auth
    )
    return answer.status_code


def sent_code(provider: FakeProvider) -> str:
    form = provider.requests[-1].form()
    assert (form["From"], form["To"]) == (TWILIO_NUMBER, "+447700900123")  # by SMS
    found = re.search(r"\b(\d{6})\b", form["Body"])
    assert found, "no code in the text"
    return found.group(1)


async def test_a_confirmed_number_gets_the_later_replies_within_whatsapps_rules(
    resident: WebChatClient,
    outbox: OutboxWorker,
    provider: FakeProvider,
    async_redis: redis.asyncio.Redis,
    namespace: str,
) -> None:
    await ask_for_code(resident)
    assert await outbox.run_once() == 1
    code = sent_code(provider)
    wrong = "000000" if code != "000000" else "111111"
    assert await confirm(resident, wrong) == 400
    assert await confirm(resident, code) == 200
    assert (
        await async_redis.exists(key(namespace, "webchat", "code", resident.token.split(".")[2]))
        == 0
    )

    sender = resident.token.split(".")[2]
    await WebChatAdapter(async_redis, namespace).send(
        COUNCIL, sender, OutboundMessage("An adviser will reply tomorrow.")
    )
    assert await outbox.run_once() == 1  # the copy for the phone
    form = provider.requests[-1].form()
    assert form["To"] == "whatsapp:+447700900123"
    # the resident never wrote on WhatsApp: its window is closed, so the approved template goes
    assert form["ContentSid"] == TEMPLATE


async def test_sms_gets_the_text_itself(
    resident: WebChatClient,
    outbox: OutboxWorker,
    provider: FakeProvider,
    async_redis: redis.asyncio.Redis,
    namespace: str,
) -> None:
    await ask_for_code(resident, "sms")
    await outbox.run_once()
    assert await confirm(resident, sent_code(provider)) == 200
    await WebChatAdapter(async_redis, namespace).send(
        COUNCIL, resident.token.split(".")[2], OutboundMessage("Your bin is collected Tuesday.")
    )
    await outbox.run_once()
    assert provider.requests[-1].form()["Body"] == "Your bin is collected Tuesday."


async def test_five_wrong_codes_use_the_code_up(
    resident: WebChatClient, outbox: OutboxWorker, provider: FakeProvider
) -> None:
    await ask_for_code(resident)
    await outbox.run_once()
    code = sent_code(provider)
    wrong = "000000" if code != "000000" else "111111"
    assert [await confirm(resident, wrong) for _ in range(5)] == [400] * 5
    assert await confirm(resident, code) == 429  # gone: ask for a new one


async def test_bad_numbers_and_channels_are_refused_before_anything_is_sent(
    resident: WebChatClient, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    for body in (
        {"channel": "whatsapp", "phone": "020 7946 0000"},  # a landline gets no texts
        {"channel": "telegram", "phone": "07700 900123"},
        {"channel": "sms"},
    ):
        answer = await resident.http.post("/webchat/continue", json=body, headers=resident.auth)
        assert answer.status_code == 400
    assert await async_redis.exists(key(namespace, "outbox")) == 0


def test_uk_mobile_numbers_are_written_the_same_way() -> None:
    assert uk_mobile("07700 900123") == "+447700900123"
    assert uk_mobile("+44 (0)7700-900123") is None
    assert uk_mobile("+44 7700 900123") == "+447700900123"
    assert uk_mobile("0044 7700 900123") == "+447700900123"
    assert uk_mobile("01632 960000") is None
