"""Finding 13: the Telegram bot token was written to the Rasa log on every reply.

httpx's INFO line prints the request URL ``.../bot<token>/sendMessage``, and the twilio client
logs request URLs and parameters that carry residents' numbers. Here both channels are built
from their ``credentials.yml`` sections exactly as the Rasa server builds them (which installs
the redaction of :mod:`bot.logs`), logging is turned up to DEBUG everywhere (the twilio
client's own logger too, as a council's logging configuration might do), and a reply is sent
on each through the real clients to a local fake provider: no record may contain the token,
the Twilio auth token or the resident's number.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.channels.base import OutboundMessage
from bot.channels.rasa import TelegramInput, WhatsAppInput
from bot.testing.providers import FakeProvider

BOT_TOKEN = "7012345678:AAHf13-secret-bot-token_abcdefghij"
TWILIO_AUTH = "f13f13f13f13f13f13f13f13f13f13f1"
RESIDENT = "+447700900777"
CHAT = "700900777"


@pytest.fixture
def everything_at_debug() -> Iterator[None]:
    names = ["", "httpx", "httpcore", "telegram", "twilio", "bot.channels.twilio.http", "aiohttp"]
    before = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


def every_line(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        f"{record.name} {record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    )


async def test_no_token_or_number_in_any_log_record_of_a_telegram_and_a_twilio_send(
    monkeypatch: pytest.MonkeyPatch,
    provider: FakeProvider,
    everything_at_debug: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("F13_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("F13_TWILIO_AUTH", TWILIO_AUTH)
    telegram = TelegramInput.from_credentials(
        {
            "api_base_url": provider.url,
            "accounts": [
                {"name": "councilbot", "token": "${F13_BOT_TOKEN}", "secret_token": "s3cr3t-tok"}
            ],
        }
    )
    whatsapp = WhatsAppInput.from_credentials(
        {
            "api_base_url": provider.url,
            "accounts": [
                {
                    "number": "+441234567890",
                    "account_sid": "AC00000000000000000000000000000013",
                    "auth_token": "${F13_TWILIO_AUTH}",
                }
            ],
        }
    )
    assert isinstance(telegram, TelegramInput) and isinstance(whatsapp, WhatsAppInput)
    with caplog.at_level(logging.DEBUG):
        sent = await telegram.adapter.send("councilbot", CHAT, OutboundMessage("Your bin day"))
        texted = await whatsapp.adapter.send("+441234567890", RESIDENT, OutboundMessage("Hi"))
        logging.getLogger("f13").warning("failed to reach %s with %s", RESIDENT, BOT_TOKEN)
    await telegram.adapter.aclose()
    await whatsapp.adapter.aclose()
    assert sent.ok and texted.ok
    # the sends really went out, with the secrets, to the provider...
    paths = [request.path for request in provider.requests]
    assert f"/bot{BOT_TOKEN}/sendMessage" in paths
    assert any(request.form().get("To") == f"whatsapp:{RESIDENT}" for request in provider.requests)
    # ...and the libraries logged them, redacted
    logged = every_line(caplog)
    assert "sendMessage" in logged, "httpx's request line was not logged at all"
    assert "Messages.json" in logged, "the twilio client's request line was not logged at all"
    for secret in (BOT_TOKEN, BOT_TOKEN.split(":")[1], TWILIO_AUTH, RESIDENT, RESIDENT[1:]):
        assert secret not in logged
    assert "%2B447700900777" not in logged
