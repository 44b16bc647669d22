from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from bot.channels.base import Button, OutboundMessage
from bot.channels.telegram import TelegramAdapter, TelegramBotAccount
from bot.errors import ConfigError, PayloadError, SignatureError
from bot.testing.channels import webhook_body
from bot.testing.providers import Answer, FakeProvider

BOTS = [
    TelegramBotAccount("councilbot", "123456:AAE-test-token", "secret_one"),
    TelegramBotAccount("librarybot", "654321:AAE-other-token", "secret-two"),
]
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": "secret_one"}


@pytest.fixture
async def adapter(provider: FakeProvider) -> AsyncIterator[TelegramAdapter]:
    made = TelegramAdapter(BOTS, api_base_url=provider.url, timeout=1.0)
    yield made
    await made.aclose()


def test_secret_token(adapter: TelegramAdapter) -> None:
    body = webhook_body("telegram", "text.json")
    adapter.verify(HEADERS, body, "")
    adapter.verify({"x-telegram-bot-api-secret-token": "secret-two"}, body, "")
    with pytest.raises(SignatureError):
        adapter.verify({"X-Telegram-Bot-Api-Secret-Token": "secret_on"}, body, "")
    with pytest.raises(SignatureError):
        adapter.verify({}, body, "")


def test_parse_routes_by_secret(adapter: TelegramAdapter) -> None:
    [message] = adapter.parse(HEADERS, webhook_body("telegram", "text.json"))
    assert message.conversation_id == "telegram:councilbot:123456789"
    assert message.message_id == "815000001"
    assert message.text == "How do I pay council tax?"
    assert message.display_name == "Priya Shah"
    assert message.received_at == 1732352400.0
    [other] = adapter.parse(
        {"X-Telegram-Bot-Api-Secret-Token": "secret-two"}, webhook_body("telegram", "text.json")
    )
    assert other.account == "librarybot"


def test_location_photo_and_callback(adapter: TelegramAdapter) -> None:
    [pin] = adapter.parse(HEADERS, webhook_body("telegram", "location.json"))
    assert pin.location is not None and pin.location.latitude == pytest.approx(51.5072)
    [photo] = adapter.parse(HEADERS, webhook_body("telegram", "photo.json"))
    assert photo.text == "Broken street light"
    assert photo.attachments[0].url == "tg-file:AgACAgQAAxkBAAMlarge"
    [tap] = adapter.parse(HEADERS, webhook_body("telegram", "callback.json"))
    assert (tap.quick_reply_payload, tap.sender) == ("/bin_day", "123456789")


@pytest.mark.parametrize(
    "body", [b"{", b"{}", b'{"update_id":"x"}', b"[]", b"[" * 5000 + b"]" * 5000]
)
def test_unreadable(adapter: TelegramAdapter, body: bytes) -> None:
    with pytest.raises(PayloadError):
        adapter.read(HEADERS, body)


def _with(message: dict[str, object]) -> bytes:
    base = {
        "message_id": 1,
        "from": {"id": 5, "is_bot": False, "first_name": "A"},
        "chat": {"id": 5, "type": "private"},
        "date": 1732352400,
        "text": "hi",
    }
    return json.dumps({"update_id": 9, "message": {**base, **message}}).encode()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"chat": 5}, "chat"),
        ({"chat": {"id": ""}}, "chat.id"),
        ({"date": None}, "date"),
        ({"date": 10**30}, "date"),
        ({"date": -5}, "date"),
        ({"text": ["a", "list"]}, "text"),
        ({"text": 42}, "text"),
        ({"text": {"an": "object"}}, "text"),
        ({"location": {"latitude": "north", "longitude": 0}}, "latitude"),
    ],
)
def test_malformed_values_rejected_with_reason(
    adapter: TelegramAdapter, change: dict[str, object], reason: str
) -> None:
    parsed = adapter.read(HEADERS, _with(change))
    assert parsed.messages == []
    [rejected] = parsed.rejected
    assert reason in rejected.reason


def test_config_refuses_shared_or_invalid_secrets() -> None:
    with pytest.raises(ConfigError):
        TelegramAdapter([BOTS[0], TelegramBotAccount("x", "1:a", "secret_one")])
    with pytest.raises(ConfigError):
        TelegramAdapter([TelegramBotAccount("x", "1:a", "has space")])


async def test_send_through_the_real_bot(adapter: TelegramAdapter, provider: FakeProvider) -> None:
    message = OutboundMessage("Which service?", (Button("Bins", "/bin_day"), Button("Tax")))
    result = await adapter.send("councilbot", "123456789", message)
    assert result.ok and result.provider_id
    [request] = provider.requests
    assert request.path == "/bot123456:AAE-test-token/sendMessage"
    sent = request.json() if request.body.startswith(b"{") else request.form()
    assert str(sent["chat_id"]) == "123456789"
    assert "/bin_day" in str(sent["reply_markup"])


async def test_send_failures(adapter: TelegramAdapter, provider: FakeProvider) -> None:
    provider.script(
        Answer(
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 7",
                "parameters": {"retry_after": 7},
            },
        ),
        Answer(
            403,
            {
                "ok": False,
                "error_code": 403,
                "description": "Forbidden: bot was blocked by the user",
            },
        ),
        Answer(500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}),
        Answer(200, {"ok": True, "result": {}}, delay=2.0),
    )
    send = lambda: adapter.send("councilbot", "1", OutboundMessage("x"))  # noqa: E731
    limited = await send()
    assert (limited.outcome, limited.retry_after) == ("retry", 7.0)
    blocked = await send()
    assert blocked.outcome == "failed" and "blocked" in blocked.error
    assert (await send()).outcome == "retry"
    assert (await send()).outcome == "retry"  # timed out
    assert (await adapter.send("nobot", "1", OutboundMessage("x"))).outcome == "failed"


def test_an_edit_soon_after_is_a_new_message_a_late_one_is_not() -> None:
    adapter = TelegramAdapter(BOTS, clock=lambda: 1732352400.0)
    original = {
        "message_id": 5,
        "from": {"id": 7, "is_bot": False, "first_name": "Priya"},
        "chat": {"id": 7, "type": "private"},
        "date": 1732352000,
        "text": "12 Hgh St",
    }
    soon = {**original, "edit_date": 1732352000 + 60, "text": "12 High St"}
    [edit] = adapter.read(
        HEADERS, json.dumps({"update_id": 1, "edited_message": soon}).encode()
    ).messages
    assert (edit.text, edit.received_at, edit.message_id) == ("12 High St", 1732352060.0, "1")
    late = {**original, "edit_date": 1732352000 + 3600}
    parsed = adapter.read(HEADERS, json.dumps({"update_id": 2, "edited_message": late}).encode())
    assert parsed.messages == [] and parsed.ignored == ["update_id=2: late edit"]


def test_a_tap_is_dated_when_it_arrives() -> None:
    adapter = TelegramAdapter(BOTS, clock=lambda: 1732352400.0)
    [tap] = adapter.parse(HEADERS, webhook_body("telegram", "callback.json"))
    assert tap.received_at == 1732352400.0  # not the date of the message it belongs to
