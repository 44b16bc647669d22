"""Out of hours, the resident continues on WhatsApp or SMS: a code by text proves the number,
then the conversation's replies also go there (through the outbox and its window rules)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio

from bot.channels.base import Button, OutboundMessage
from bot.channels.outbox import OutboxWorker
from bot.channels.twilio import TwilioAccount, TwilioAdapter
from bot.keys import key
from bot.testing.providers import FakeProvider
from bot.testing.webchat import WebChatClient
from bot.webchat.adapter import UPLOAD_PAYLOAD, WebChatAdapter
from bot.webchat.phone import uk_mobile
from bot.webchat.pins import LOCATION_PAYLOAD

from .conftest import COUNCIL, TWILIO_NUMBER

TEMPLATE = "HX0000000000000000000000000000000a"


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


@dataclass
class Phone:
    """A resident's web chat, its outbox and the fake Twilio: confirming and replying."""

    resident: WebChatClient
    outbox: OutboxWorker
    provider: FakeProvider
    adapter: WebChatAdapter

    async def confirmed(self, channel: str) -> None:
        """The resident has continued the chat on ``channel`` with their number."""
        await ask_for_code(self.resident, channel)
        assert await self.outbox.run_once() == 1
        assert await confirm(self.resident, sent_code(self.provider)) == 200

    async def reply(self, message: OutboundMessage) -> dict[str, str]:
        """The bot replies in the web chat; the form of the copy sent to the phone."""
        await self.adapter.send(COUNCIL, self.resident.token.split(".")[2], message)
        assert await self.outbox.run_once() == 1  # the copy for the phone
        return self.provider.requests[-1].form()


@pytest.fixture
def phone(
    resident: WebChatClient,
    outbox: OutboxWorker,
    provider: FakeProvider,
    async_redis: redis.asyncio.Redis,
    namespace: str,
) -> Phone:
    return Phone(resident, outbox, provider, WebChatAdapter(async_redis, namespace))


async def test_a_confirmed_number_gets_the_later_replies_within_whatsapps_rules(
    phone: Phone, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    resident = phone.resident
    await ask_for_code(resident)
    assert await phone.outbox.run_once() == 1
    code = sent_code(phone.provider)
    wrong = "000000" if code != "000000" else "111111"
    assert await confirm(resident, wrong) == 400
    assert await confirm(resident, code) == 200
    assert (
        await async_redis.exists(key(namespace, "webchat", "code", resident.token.split(".")[2]))
        == 0
    )

    form = await phone.reply(OutboundMessage("An adviser will reply tomorrow."))
    assert form["To"] == "whatsapp:+447700900123"
    # the resident never wrote on WhatsApp: its window is closed, so the approved template goes
    assert form["ContentSid"] == TEMPLATE


async def test_sms_gets_the_text_itself(phone: Phone) -> None:
    await phone.confirmed("sms")
    form = await phone.reply(OutboundMessage("Your bin is collected Tuesday."))
    assert form["Body"] == "Your bin is collected Tuesday."


async def test_the_widgets_own_controls_stay_in_the_widget(phone: Phone) -> None:
    # "Share my location" and "Add a photo" are the widget's: on a phone they would be
    # buttons (numbered choices by SMS) that do nothing there
    await phone.confirmed("sms")
    asking = OutboundMessage(
        "Where is it?",
        (Button("Share my location", LOCATION_PAYLOAD), Button("Add a photo", UPLOAD_PAYLOAD)),
    )
    assert (await phone.reply(asking))["Body"] == "Where is it?"
    with_choice = OutboundMessage("Where is it?", (*asking.buttons, Button("Skip", "skip")))
    body = (await phone.reply(with_choice))["Body"]
    assert "Skip" in body and "location" not in body and "photo" not in body


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
