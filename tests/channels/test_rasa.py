from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from twilio.request_validator import RequestValidator

from bot.channels.base import (
    Attachment,
    Button,
    Contact,
    InboundMessage,
    Location,
    OutboundMessage,
)
from bot.channels.instagram import InstagramAdapter
from bot.channels.rasa import (
    ChannelRuntime,
    InstagramInput,
    TelegramInput,
    WhatsAppInput,
    collected_to_outbound,
    user_message,
)
from bot.channels.registry import CHANNELS, build
from bot.channels.telegram import TelegramAdapter, TelegramBotAccount
from bot.channels.twilio import TwilioAccount, TwilioAdapter
from bot.channels.webhook import Webhook
from bot.testing.channels import webhook_body
from bot.testing.providers import FakeProvider

URL = "https://council.example.gov.uk/webhooks/whatsapp/webhook"
TOKEN = "0123456789abcdef0123456789abcdef"


def inbound(**kw: object) -> InboundMessage:
    fields: dict[str, object] = {
        "channel": "whatsapp",
        "account": "+441234567890",
        "sender": "+447700900123",
        "message_id": "SM1",
        "text": "hello",
        "received_at": 1.0,
    }
    fields.update(kw)
    return InboundMessage(**fields)  # type: ignore[arg-type]


def test_user_message_carries_identity_and_metadata() -> None:
    message = inbound(
        display_name="Alex",
        attachments=(Attachment("image", "https://x/y.jpg", "image/jpeg"),),
        location=Location(51.5, -0.1, "Town Hall"),
    )
    made = user_message(message, CollectingOutputChannel())
    assert made.sender_id == "whatsapp:+441234567890:+447700900123"
    assert made.input_channel == "whatsapp"
    assert made.message_id == "SM1"
    assert made.metadata["account"] == "+441234567890"
    assert made.metadata["display_name"] == "Alex"
    assert made.metadata["location"]["label"] == "Town Hall"
    assert made.metadata["attachments"][0]["url"] == "https://x/y.jpg"
    tapped = user_message(
        inbound(text="Bins", quick_reply_payload="/bin_day"), CollectingOutputChannel()
    )
    assert tapped.text == "/bin_day"


def test_collected_utterances_to_outbound() -> None:
    collected = [
        {
            "recipient_id": "x",
            "text": "Which bin?",
            "buttons": [{"title": "Black", "payload": "/black"}],
        },
        {"recipient_id": "x", "image": "https://example/map.png"},
        {"recipient_id": "x", "custom": {"anything": 1}},
    ]
    assert collected_to_outbound(collected) == [
        OutboundMessage("Which bin?", (Button("Black", "/black"),)),
        OutboundMessage("https://example/map.png"),
    ]


def test_blueprints_build() -> None:
    adapter = TelegramAdapter([TelegramBotAccount("b", "1:a", "s")])
    channel = TelegramInput(adapter)

    async def on_new_message(message: UserMessage) -> None:
        return None

    blueprint = channel.blueprint(on_new_message)
    assert blueprint.name == "telegram_workers"
    assert [route.uri for route in blueprint._future_routes] == ["/"]  # health only
    assert channel.url_prefix() == "telegram"
    assert WhatsAppInput.name() == "whatsapp"


@pytest.fixture
async def running(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str, provider: FakeProvider
) -> AsyncIterator[tuple[ChannelRuntime, list[UserMessage]]]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("COUNCIL_NAMESPACE", namespace)
    seen: list[UserMessage] = []

    async def on_new_message(message: UserMessage) -> None:
        # stands in for Rasa: answers through the output channel it was given
        seen.append(message)
        assert message.output_channel is not None
        await message.output_channel.send_text_message(
            message.sender_id or "", f"You said: {message.text}"
        )

    runtime = ChannelRuntime()
    account = TwilioAccount("+441234567890", "AC00000000000000000000000000000001", TOKEN)
    runtime.register(
        TwilioAdapter([account], api_base_url=provider.url, timeout=1.0), on_new_message
    )
    await runtime.start()
    yield runtime, seen
    await runtime.stop()


async def test_webhook_to_rasa_to_provider(
    running: tuple[ChannelRuntime, list[UserMessage]], provider: FakeProvider
) -> None:
    runtime, seen = running
    hook = Webhook(runtime.adapters["whatsapp"], await runtime.inbox())
    body = webhook_body("twilio", "whatsapp_text.txt")
    signature = RequestValidator(TOKEN).compute_signature(URL, dict(parse_qsl(body.decode())))
    for _ in range(2):  # the second is Twilio retrying after a slow answer
        answer = await hook.receive(URL, {"X-Twilio-Signature": signature}, body)
        assert answer.status == 200
    for _ in range(100):
        if provider.requests:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # a duplicate would arrive in this time
    assert len(seen) == 1
    assert seen[0].sender_id == "whatsapp:+441234567890:+447700900123"
    [request] = provider.requests
    form = request.form()
    assert form["Body"] == "You said: When is my bin day?"
    assert form["To"] == "whatsapp:+447700900123"


def test_a_shared_contact_reaches_rasa_and_instagram_has_an_input() -> None:
    message = InboundMessage(
        "telegram", "councilbot", "5", "9", "", 1.0, contact=Contact("0788531373", "Adolf Taxi")
    )
    metadata = user_message(message, CollectingOutputChannel()).metadata or {}
    assert metadata["contact"] == {"phone": "0788531373", "name": "Adolf Taxi", "user_id": ""}
    env = {"S": "secret", "V": "verify", "T": "token"}
    section = {
        "app_secret": "${S}",
        "verify_token": "${V}",
        "accounts": [{"account_id": "17841400000000001", "token": "${T}"}],
    }
    spec = next(spec for spec in CHANNELS if spec.name == "instagram")
    assert spec.section == "bot.channels.rasa.InstagramInput"
    assert isinstance(build(spec, section, "credentials.yml", env).adapter, InstagramAdapter)
    assert InstagramInput.name() == "instagram"
