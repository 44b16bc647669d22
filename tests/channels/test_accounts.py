from __future__ import annotations

from pathlib import Path

import pytest

from bot.channels.accounts import Section, expand, load_credentials
from bot.channels.messenger import MessengerAdapter
from bot.channels.rasa import MessengerInput, TelegramInput, TwitterInput, WhatsAppInput
from bot.channels.telegram import TelegramAdapter
from bot.channels.twilio import TwilioAdapter
from bot.channels.twitter import TwitterAdapter
from bot.errors import ConfigError, MissingSecretError

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    "TWILIO_ACCOUNT_SID": "AC01",
    "TWILIO_AUTH_TOKEN": "tok",
    "TWILIO_TEMPLATE_REPLY_WAITING": "HX01",
    "MESSENGER_APP_SECRET": "app",
    "MESSENGER_VERIFY_TOKEN": "verify",
    "MESSENGER_PAGE_ID": "104857600000001",
    "MESSENGER_PAGE_TOKEN": "page",
    "TWITTER_CONSUMER_SECRET": "consumer",
    "TWITTER_USER_ID": "1422",
    "TWITTER_ACCESS_TOKEN": "access",
    "TELEGRAM_BOT_TOKEN": "1:abc",
    "TELEGRAM_SECRET_TOKEN": "secret_token",
}
INPUTS = {
    "bot.channels.rasa.WhatsAppInput": (WhatsAppInput, TwilioAdapter),
    "bot.channels.rasa.MessengerInput": (MessengerInput, MessengerAdapter),
    "bot.channels.rasa.TwitterInput": (TwitterInput, TwitterAdapter),
    "bot.channels.rasa.TelegramInput": (TelegramInput, TelegramAdapter),
}


def test_expand() -> None:
    assert expand("a-${X}-b", {"X": "1"}, "f.yml", "k") == "a-1-b"
    with pytest.raises(MissingSecretError) as caught:
        expand("${MISSING_ONE}", {}, "f.yml", "section.token")
    assert caught.value.variable == "MISSING_ONE"
    assert "section.token" in str(caught.value)
    with pytest.raises(ConfigError):
        expand("${not valid}", {}, "f.yml", "k")


def test_repo_credentials_build_all_four_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    data = load_credentials(ROOT / "credentials.yml")
    assert "rest" not in data  # finding 11: no unauthenticated REST channel in production
    for key, (input_class, adapter_class) in INPUTS.items():
        channel = input_class.from_credentials(data[key])
        assert isinstance(channel, input_class)
        assert isinstance(channel.adapter, adapter_class)
        assert channel.adapter.accounts()
    assert WhatsAppInput.name() == "whatsapp" and TelegramInput.name() == "telegram"


def test_missing_secret_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    data = load_credentials(ROOT / "credentials.yml")
    with pytest.raises(MissingSecretError) as caught:
        WhatsAppInput.from_credentials(data["bot.channels.rasa.WhatsAppInput"])
    assert caught.value.variable == "TWILIO_AUTH_TOKEN"


@pytest.mark.parametrize(
    ("section", "key"),
    [
        (
            {"accounts": [{"number": "+44", "account_sid": "AC", "auth_tokn": "x"}]},
            "accounts[0].auth_tokn",
        ),
        ({"accounts": []}, "accounts"),
        (None, "accounts"),
        ({"acounts": []}, "acounts"),
        (
            {
                "trust_proxy": "yes",
                "accounts": [{"number": "+44", "account_sid": "AC", "auth_token": "t"}],
            },
            "trust_proxy",
        ),
        (
            {"accounts": [{"number": "44", "account_sid": "AC", "auth_token": "t"}]},
            "accounts[0].number",
        ),
        (
            {
                "max_body_bytes": -1,
                "accounts": [{"number": "+44", "account_sid": "AC", "auth_token": "t"}],
            },
            "max_body_bytes",
        ),
    ],
)
def test_bad_keys_name_file_and_key(section: dict[str, object] | None, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        WhatsAppInput.from_credentials(section)
    assert caught.value.path == "credentials.yml"
    assert caught.value.key == f"bot.channels.rasa.WhatsAppInput.{key}"


def test_load_credentials_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_credentials(tmp_path / "absent.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("rest: [\n")
    with pytest.raises(ConfigError):
        load_credentials(broken)
    listed = tmp_path / "list.yml"
    listed.write_text("- rest\n")
    with pytest.raises(ConfigError):
        load_credentials(listed)


def test_section_values() -> None:
    section = Section({"n": 5, "flag": True, "m": {"a": "${A}"}}, "f.yml", "top", {"A": "x"})
    assert section.number("n", 1) == 5.0
    assert section.flag("flag", False) is True
    assert section.strings("m") == {"a": "x"}
    assert section.text("missing", "default") == "default"
    with pytest.raises(ConfigError, match=r"top\.missing"):
        section.text("missing")
