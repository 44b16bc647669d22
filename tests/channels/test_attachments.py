"""A photo, voice note, sticker or contact: a polite reply from the bot, "[photo]" for the agent.

The messages are the conformance corpus' public examples (``tests/data/webhooks``: Telegram's
webhook guide, RapidPro courier's fixtures; each file says where it came from), read by the
real adapters, turned into Rasa's message by :func:`bot.channels.rasa.user_message`, parsed by
Rasa's own ``/intent`` handler with the project's domain, and added to a handoff case by the
event broker as Rasa publishes the stored event. The last test (``e2e``) does it with the real
trained assistant.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis.asyncio
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.nlu.classifiers.regex_message_handler import RegexMessageHandler
from rasa.shared.core.domain import Domain
from rasa.shared.nlu.training_data.message import Message

from bot.channels.base import InboundMessage, Location
from bot.channels.rasa import CANNOT_READ, user_message
from bot.channels.telegram import TelegramAdapter, TelegramBotAccount
from bot.channels.twilio import TwilioAccount, TwilioAdapter
from bot.handoff.attachments import label, resident_text, safe_url
from bot.handoff.broker import HandoffEventBroker
from bot.handoff.queue import HandoffQueue
from bot.handoff.record import build_record
from bot.redis_conn import connect_async
from bot.testing.assistant import Assistant, Conversation
from bot.testing.channels import WEBHOOKS, webhook_body
from bot.testing.responses import rendered_messages

ROOT = Path(__file__).resolve().parents[2]
NOW = 1732352400.0
TWILIO_MEDIA = (
    "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages/"
    "MM4a3c1b9f0e2d4c5b6a7988776655aa01/Media/ME96f1a0c2d3e4f5a6b7c8d9e0f1a2b3c4"
)


def telegram(name: str) -> InboundMessage:
    """The one resident message of a Telegram corpus case."""
    body = json.dumps(json.loads((WEBHOOKS / "telegram" / name).read_text())["body"]).encode()
    adapter = TelegramAdapter([TelegramBotAccount("councilbot", "1:TOKEN", "s")], clock=lambda: NOW)
    [message] = adapter.read({"X-Telegram-Bot-Api-Secret-Token": "s"}, body).messages
    return message


def rasa_text(message: InboundMessage) -> str:
    return user_message(message, CollectingOutputChannel()).text or ""


@pytest.mark.parametrize(
    "case",
    [
        "guide_voice_message.case.json",
        "guide_message_with_audio.case.json",
        "guide_message_with_a_document.case.json",
        "courier_sticker.case.json",
        "courier_video.case.json",
        "courier_contact.case.json",
    ],
)
def test_a_message_without_words_asks_rasa_for_the_attachment_intent(case: str) -> None:
    message = telegram(case)
    assert not message.text
    made = user_message(message, CollectingOutputChannel())
    assert made.text == CANNOT_READ == "/attachment"
    metadata = made.metadata or {}
    assert metadata.get("attachments") or metadata.get("contact")  # kept for the agent


def test_words_and_locations_are_read_as_before() -> None:
    # A caption is the resident's words; a pin is something the bot can use (bins by location).
    captioned = telegram("courier_photo.case.json")
    assert captioned.attachments
    assert rasa_text(captioned) == "Photo Caption"
    pin = telegram("courier_location.case.json")
    assert pin.location is not None
    assert rasa_text(pin) != CANNOT_READ
    whatsapp = TwilioAdapter([TwilioAccount("+441234567890", "AC1", "t")])
    [with_words] = whatsapp.read({}, webhook_body("twilio", "whatsapp_media.txt")).messages
    assert rasa_text(with_words) == "Fly tipping on Mill Lane"
    both = InboundMessage(
        "whatsapp", "+441234567890", "+447700900123", "SM2", "", 1.0,
        attachments=with_words.attachments, location=Location(51.5, -0.1, "Mill Lane"),
    )  # fmt: skip
    assert rasa_text(both) != CANNOT_READ


def test_rasa_reads_the_payload_as_the_attachment_intent_without_changing_the_language() -> None:
    domain = Domain.load(str(ROOT / "responses"))
    assert "attachment" in domain.intents
    parsed = RegexMessageHandler().process([Message({"text": CANNOT_READ})], domain)[0]
    assert parsed.get("intent") == {"name": "attachment", "confidence": 1.0}
    assert parsed.get("entities") == []  # no "language" entity: a Welsh conversation stays Welsh
    rules = (ROOT / "data" / "rules.yml").read_text()
    assert "- intent: attachment\n      - action: utter_cannot_read_attachment" in rules


def test_the_polite_reply_in_english_and_welsh() -> None:
    def say(slots: dict[str, Any]) -> str:
        [reply] = rendered_messages(
            [{"response": "utter_cannot_read_attachment"}], "telegram", slots=slots
        )
        return str(reply["text"])

    assert "I can only read text and locations here" in say({"language": "en"})
    welsh = say({"language": "cy"})
    assert "Dim ond testun a lleoliadau" in welsh
    assert "I can only" not in welsh


def test_labels_show_an_address_only_when_it_is_safe() -> None:
    assert safe_url(TWILIO_MEDIA) == TWILIO_MEDIA
    for unsafe in (
        "tg-file:AwADBAADbXXXXXXXXXXXGBdhD2l6_XX",  # fetching it needs the bot token
        # Meta's CDN: the signed query is the access grant
        "https://scontent.xx.fbcdn.net/v/t1.15752-9/1_n.jpg?_nc_cat=1&oh=00_AfB&oe=6581A2B3",
        "https://AC1:authtoken@api.twilio.com/2010-04-01/Accounts/AC1/Media/ME1",
        "http://example.org/photo.jpg",
        "https://example.org/photo.jpg#token=1",
        "javascript:alert(1)",
        "",
    ):
        assert safe_url(unsafe) == "", unsafe
    assert label({"kind": "image", "url": TWILIO_MEDIA}) == f"[photo {TWILIO_MEDIA}]"
    voice = {"kind": "audio", "url": "tg-file:AwAD", "content_type": "audio/ogg"}
    assert label(voice) == "[voice message]"
    assert label({"kind": "sticker", "url": "tg-file:x"}) == "[sticker]"
    assert label({"kind": "file", "url": "tg-file:x"}) == "[document]"


def _user_event(message: InboundMessage, at: datetime) -> dict[str, Any]:
    """The event Rasa's tracker store publishes for the message (``UserUttered.as_dict``)."""
    made = user_message(message, CollectingOutputChannel())
    return {
        "event": "user",
        "sender_id": made.sender_id,
        "timestamp": at.timestamp(),
        "text": made.text,
        "parse_data": {"intent": {"name": "attachment", "confidence": 1.0}, "entities": []},
        "input_channel": made.input_channel,
        "message_id": made.message_id,
        "metadata": made.metadata,
    }


async def test_while_a_person_has_the_conversation_the_attachment_reaches_the_case(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    queue = HandoffQueue(async_redis, namespace)
    broker = HandoffEventBroker(queue)
    voice = telegram("guide_voice_message.case.json")
    opened = datetime(2027, 3, 3, 10, tzinfo=UTC)
    record = build_record(
        voice.conversation_id,
        [{"event": "user", "timestamp": opened.timestamp(), "text": "talk to a person"}],
        reason="asked_for_person",
        topic="human_agent",
        channel=voice.channel,
        account=voice.account,
        sender=voice.sender,
        now=opened,
    )
    case_id = await queue.open(record)
    contact = telegram("courier_contact.case.json")
    for minutes, message in enumerate((voice, contact), start=1):
        moved = InboundMessage(**{**message.__dict__, "sender": voice.sender})
        broker.publish(_user_event(moved, opened + timedelta(minutes=minutes)))
        await broker.flush()
    said = [(m["role"], m["text"]) for m in await queue.transcript(case_id)]
    assert said == [
        ("resident", "talk to a person"),
        ("resident", "[voice message]"),
        ("resident", "[contact: Adolf Taxi, 0788531373]"),
    ]


def test_an_attachment_before_the_handoff_reads_the_same_in_the_record() -> None:
    whatsapp = TwilioAdapter([TwilioAccount("+441234567890", "AC1", "t")])
    body = webhook_body("twilio", "whatsapp_media.txt").replace(
        b"Body=Fly+tipping+on+Mill+Lane", b"Body="
    )
    [photo] = whatsapp.read({}, body).messages
    at = datetime(2027, 3, 3, 9, tzinfo=UTC)
    event = _user_event(photo, at)
    assert event["text"] == CANNOT_READ
    assert resident_text(event) == f"[photo {TWILIO_MEDIA}]"
    record = build_record(
        photo.conversation_id,
        [event],
        reason="low_confidence",
        topic="nlu_fallback",
        channel=photo.channel,
        account=photo.account,
        sender=photo.sender,
        now=at,
    )
    assert record.transcript[0]["text"] == f"[photo {TWILIO_MEDIA}]"
    assert quote(CANNOT_READ) not in json.dumps(record.transcript)


@pytest.mark.e2e
async def test_with_the_real_assistant_a_photo_is_answered_politely_or_reaches_the_agent(
    assistant: Assistant, redis_url: str
) -> None:
    photo = {"attachments": [{"kind": "image", "url": TWILIO_MEDIA, "content_type": "image/jpeg"}]}

    def send(chat: Conversation) -> list[dict[str, Any]]:
        """What a channel worker gives Rasa for a photo without words (over the REST channel)."""
        payload = {"sender": chat.sender, "message": CANNOT_READ, "metadata": photo}
        answer: list[dict[str, Any]] = assistant.post("/webhooks/rest/webhook", payload)
        return answer

    english = assistant.conversation()
    [reply] = send(english)
    assert reply["text"].startswith("Thank you. I can only read text and locations here")
    welsh = assistant.conversation()
    assert welsh.texts("Shwmae").startswith("Helo")
    [reply] = send(welsh)
    assert reply["text"].startswith("Diolch. Dim ond testun a lleoliadau")

    handed = assistant.conversation()
    handed.say("I want to talk to a person please")
    assert send(handed) == []  # paused for the agent: the bot says nothing
    client = await connect_async(redis_url)
    try:
        queue = HandoffQueue(client, assistant.namespace)
        case_id = await queue.case_for(handed.sender)
        assert case_id is not None
        async with asyncio.timeout(30):  # the event broker adds it as Rasa stores the event
            while (said := await queue.transcript(case_id))[-1][
                "text"
            ] != f"[photo {TWILIO_MEDIA}]":
                await asyncio.sleep(0.1)
        assert [m["role"] for m in said][-1] == "resident"
    finally:
        await client.close()
