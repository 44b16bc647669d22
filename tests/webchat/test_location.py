"""A location shared from the widget: checked at the edge, trimmed to about a metre, and given
to Rasa as the same pin the messaging apps deliver; the bot's request for it is a signal the
widget recognises, sent on the web chat only."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio
from rasa.core.channels.channel import CollectingOutputChannel

from bot.channels.base import Button, InboundMessage, OutboundMessage
from bot.channels.rasa import user_message
from bot.channels.telegram import TelegramAdapter, TelegramBotAccount
from bot.keys import key
from bot.testing.channels import webhook_body
from bot.testing.responses import rendered_messages
from bot.testing.webchat import WebChatClient
from bot.webchat.adapter import WebChatAdapter
from bot.webchat.config import WebChatConfig
from bot.webchat.events import EventLog
from bot.webchat.pins import LOCATION_PAYLOAD, PinError, shared_location

from .conftest import COUNCIL, messages

CONVERSATION = "0123456789abcdef0123456789abcdef"


async def inbox(client: redis.asyncio.Redis, namespace: str) -> list[InboundMessage]:
    rows = await client.xrange(key(namespace, "inbox"))
    return [InboundMessage.from_json(fields["message"]) for _, fields in rows]


def telegram_pin() -> InboundMessage:
    """The recorded Telegram location message, as its adapter reads it."""
    adapter = TelegramAdapter([TelegramBotAccount("councilbot", "123456:AAE-token", "secret_one")])
    body = webhook_body("telegram", "location.json")
    [message] = adapter.parse({"X-Telegram-Bot-Api-Secret-Token": "secret_one"}, body)
    assert message.location is not None
    return message


async def test_a_shared_location_reaches_rasa_as_the_messaging_apps_pin(
    resident: WebChatClient, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    telegram = telegram_pin()
    assert telegram.location is not None
    pin = {"latitude": telegram.location.latitude, "longitude": telegram.location.longitude}
    answer = await resident.send(location=pin)
    assert answer.status_code == 202
    [message] = await inbox(async_redis, namespace)
    assert (message.channel, message.text, message.location) == ("webchat", "", message.location)
    assert message.location is not None
    assert (message.location.latitude, message.location.longitude) == tuple(pin.values())

    # what Rasa receives: the same text and metadata["location"] as the Telegram pin's
    ours = user_message(message, CollectingOutputChannel())
    theirs = user_message(telegram, CollectingOutputChannel())
    assert ours.text == theirs.text == ""
    assert ours.metadata is not None and theirs.metadata is not None
    assert ours.metadata["location"] == {**theirs.metadata["location"], "label": ""}
    assert ours.input_channel == "webchat"

    # the resident's transcript shows it, from the echo
    async with asyncio.timeout(5):
        events = await resident.events(lambda seen: len(messages(seen)) >= 1)
    [echo] = messages(events)
    assert echo["from"] == "resident" and echo["text"] == ""
    assert echo["location"] == pin


async def test_the_position_is_trimmed_to_about_a_metre(
    resident: WebChatClient, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    answer = await resident.send(location={"latitude": 51.123456789, "longitude": -0.000001})
    assert answer.status_code == 202
    [message] = await inbox(async_redis, namespace)
    assert message.location is not None
    assert (message.location.latitude, message.location.longitude) == (51.12346, 0.0)
    assert str(message.location.longitude) == "0.0"  # never "-0.0"
    async with asyncio.timeout(5):
        events = await resident.events(lambda seen: len(messages(seen)) >= 1)
    assert messages(events)[0]["location"] == {"latitude": 51.12346, "longitude": 0.0}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"location": {"latitude": "51.5", "longitude": -0.1}}, "latitude must be a number"),
        ({"location": {"latitude": 51.5, "longitude": True}}, "longitude must be a number"),
        ({"location": {"latitude": 91, "longitude": 0}}, "latitude must be between -90 and 90"),
        (
            {"location": {"latitude": 0, "longitude": -180.5}},
            "longitude must be between -180 and 180",
        ),
        ({"location": {"latitude": 51.5}}, "with latitude and longitude only"),
        ({"location": {"latitude": 51.5, "longitude": 0, "accuracy": 5}}, "longitude only"),
        ({"location": [51.5, -0.1]}, "with latitude and longitude only"),
        ({"location": "51.5,-0.1"}, "with latitude and longitude only"),
        ({"location": {"latitude": 51.5, "longitude": 0}, "text": "here"}, "on its own"),
        ({"location": {"latitude": 51.5, "longitude": 0}, "payload": "/x"}, "on its own"),
    ],
)
async def test_a_bad_location_is_refused_with_its_reason_and_nothing_is_queued(
    resident: WebChatClient,
    async_redis: redis.asyncio.Redis,
    namespace: str,
    body: dict[str, Any],
    reason: str,
) -> None:
    answer = await resident.send(**body)
    assert answer.status_code == 400
    assert answer.json()["error"] == "location"
    assert reason in answer.json()["message"]
    assert await inbox(async_redis, namespace) == []
    sender = resident.token.split(".")[2]
    assert await EventLog(async_redis, namespace).since(sender, None) == []


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
async def test_numbers_json_should_not_carry_are_refused(
    resident: WebChatClient, async_redis: redis.asyncio.Redis, namespace: str, literal: bytes
) -> None:
    # Python's JSON reader takes NaN and Infinity (and 1e400 is infinite): none is a place
    body = b'{"client_id": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "location": {"latitude": '
    body += literal + b', "longitude": 0}}'
    answer = await resident.http.post(
        "/webchat/messages",
        content=body,
        headers={**resident.auth, "Content-Type": "application/json"},
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "location")
    assert await inbox(async_redis, namespace) == []


def test_the_check_on_its_own() -> None:
    assert shared_location({"latitude": -90, "longitude": 180}).latitude == -90.0
    with pytest.raises(PinError, match="must be a number"):
        shared_location({"latitude": None, "longitude": 0})


async def test_the_request_for_a_location_becomes_the_widgets_control(
    async_redis: redis.asyncio.Redis, namespace: str, config: WebChatConfig
) -> None:
    adapter = WebChatAdapter(async_redis, namespace, config=config, keep_days=1)
    asking = OutboundMessage("Where is it?", (Button("Share my location", LOCATION_PAYLOAD),))
    assert (await adapter.send(COUNCIL, CONVERSATION, asking)).ok
    assert (await adapter.send(COUNCIL, CONVERSATION, OutboundMessage("Thanks."))).ok
    first, second = await EventLog(async_redis, namespace).since(CONVERSATION, None)
    assert (first.data["buttons"], first.data["ask_location"]) == ([], True)
    assert second.data["ask_location"] is False


@pytest.mark.parametrize(
    ("language", "words"), [("en", "Share your location"), ("cy", "Rhannwch eich lleoliad")]
)
def test_the_report_forms_question_asks_for_it_on_the_web_chat_only(
    language: str, words: str
) -> None:
    slots = {"language": language}
    ask = [{"response": "utter_ask_report_location"}]
    [web] = rendered_messages(ask, "webchat", slots=slots)
    assert words in web["text"]
    assert [b["payload"] for b in web["buttons"]] == [LOCATION_PAYLOAD]
    for channel in ("whatsapp", "telegram", "messenger", "instagram", "sms"):
        [other] = rendered_messages(ask, channel, slots=slots)
        assert other["buttons"] == [] and words not in other["text"], channel
