"""Adapters fetch what residents send (a photo for a problem report) the way each provider
serves it, through the real clients against the fake provider API."""

from __future__ import annotations

import json

import pytest

from bot.channels.accounts import Section
from bot.channels.base import Attachment
from bot.channels.media import MediaError, MediaTooLargeError
from bot.channels.messenger import MessengerAdapter
from bot.channels.meta import MetaAccount
from bot.channels.oauth1 import OAuth1Credentials
from bot.channels.telegram import TelegramAdapter, TelegramBotAccount
from bot.channels.twilio import TwilioAccount, TwilioAdapter
from bot.channels.twitter import TwitterAccount, TwitterAdapter
from bot.errors import ConfigError
from bot.testing.channels import webhook_body
from bot.testing.providers import FakeProvider

PHOTO = b"\xff\xd8\xff\xe0 a photo's bytes" + bytes(range(256)) * 40
SID = "AC00000000000000000000000000000001"
TOKEN = "twilio-auth-token-0123456789abcdef"
NUMBER = "+441234567890"
BOT = TelegramBotAccount("councilbot", "123456:AAE-test-token", "secret_one")


def twilio(provider: FakeProvider) -> TwilioAdapter:
    return TwilioAdapter([TwilioAccount(NUMBER, SID, TOKEN)], api_base_url=provider.url)


async def test_twilio_media_needs_the_account_token_and_follows_the_cdn_redirect(
    provider: FakeProvider,
) -> None:
    url = provider.twilio_media(SID, TOKEN, PHOTO)
    adapter = twilio(provider)
    media = await adapter.fetch_media(
        NUMBER, Attachment("image", url, "image/jpeg"), max_bytes=10**6
    )
    assert media.data == PHOTO and media.content_type == "image/jpeg"
    first, cdn = provider.requests[-2:]
    assert first.headers["Authorization"].startswith("Basic ")
    assert cdn.path.startswith("/cdn/") and "Authorization" not in cdn.headers  # not leaked

    wrong = TwilioAdapter([TwilioAccount(NUMBER, SID, "not-the-token")], api_base_url=provider.url)
    with pytest.raises(MediaError, match="HTTP 401"):
        await wrong.fetch_media(NUMBER, Attachment("image", url), max_bytes=10**6)


async def test_twilio_sends_credentials_only_to_its_api(provider: FakeProvider) -> None:
    elsewhere = Attachment("image", "https://attacker.example/steal.jpg")
    with pytest.raises(MediaError, match="not on Twilio's API"):
        await twilio(provider).fetch_media(NUMBER, elsewhere, max_bytes=10**6)
    with pytest.raises(MediaError, match="unknown account"):
        url = provider.twilio_media(SID, TOKEN, PHOTO)
        await twilio(provider).fetch_media("+449999999999", Attachment("image", url), max_bytes=1)


async def test_telegram_photo_from_a_recorded_update_through_get_file(
    provider: FakeProvider,
) -> None:
    adapter = TelegramAdapter([BOT], api_base_url=provider.url, timeout=2.0)
    update = json.loads(webhook_body("telegram", "photo.json"))
    file_id = provider.telegram_file(BOT.token, PHOTO)
    update["message"]["photo"][-1]["file_id"] = file_id
    [message] = adapter.parse(
        {"X-Telegram-Bot-Api-Secret-Token": "secret_one"}, json.dumps(update).encode()
    )
    [photo] = message.attachments
    media = await adapter.fetch_media(message.account, photo, max_bytes=10**6)
    assert media.data == PHOTO
    get_file, download = provider.requests[-2:]
    assert get_file.path == f"/bot{BOT.token}/getFile" and get_file.json() == {"file_id": file_id}
    assert download.path.startswith(f"/file/bot{BOT.token}/photos/")

    with pytest.raises(MediaTooLargeError):  # refused by getFile's file_size, never downloaded
        await adapter.fetch_media(message.account, photo, max_bytes=100)
    assert provider.requests[-1].path.endswith("/getFile")
    with pytest.raises(MediaError, match="no file path"):
        await adapter.fetch_media("councilbot", Attachment("image", "tg-file:unknown"), max_bytes=9)
    with pytest.raises(MediaError, match="not a Telegram file id"):
        await adapter.fetch_media(
            "councilbot", Attachment("image", "https://x.test/a"), max_bytes=9
        )
    await adapter.aclose()


async def test_messenger_cdn_url_is_fetched_and_size_capped_while_reading(
    provider: FakeProvider,
) -> None:
    adapter = MessengerAdapter(
        [MetaAccount("1234", "page-token")],
        app_secret="s",
        verify_token="v",
        api_base_url=provider.url,
    )
    url = provider.cdn_file(PHOTO, "image/png")
    media = await adapter.fetch_media("1234", Attachment("image", url), max_bytes=10**6)
    assert media.data == PHOTO and media.content_type == "image/png"
    with pytest.raises(MediaTooLargeError):
        await adapter.fetch_media("1234", Attachment("image", url), max_bytes=1000)
    with pytest.raises(MediaError, match="HTTP 404"):  # an expired CDN address
        await adapter.fetch_media(
            "1234", Attachment("image", f"{provider.url}/cdn/gone"), max_bytes=9
        )
    with pytest.raises(MediaError, match="not an https address"):
        await adapter.fetch_media("1234", Attachment("image", "file:///etc/passwd"), max_bytes=9)
    await adapter.aclose()


X_APP = OAuth1Credentials("app-key", "app-secret", "42-user-token", "user-token-secret")


def x_adapter(provider: FakeProvider, *, oauth1: bool = True) -> TwitterAdapter:
    keys = (X_APP.consumer_key, X_APP.token, X_APP.token_secret) if oauth1 else ()
    return TwitterAdapter(
        [TwitterAccount("42", "oauth2-token", *keys)],
        consumer_secret=X_APP.consumer_secret,
        api_base_url=provider.url,
        media_base_url=provider.url,
    )


async def test_x_dm_photo_is_fetched_with_an_oauth1_signed_get(provider: FakeProvider) -> None:
    adapter = x_adapter(provider)
    url = provider.x_dm_media(X_APP, PHOTO)
    media = await adapter.fetch_media("42", Attachment("photo", url), max_bytes=10**6)
    assert media.data == PHOTO and media.content_type == "image/jpeg"
    signed = provider.requests[-1].headers["Authorization"]
    assert signed.startswith("OAuth ") and 'oauth_token="42-user-token"' in signed
    assert "user-token-secret" not in signed and "app-secret" not in signed
    assert "oauth2-token" not in signed  # the OAuth 2.0 token is for sending only

    with pytest.raises(MediaTooLargeError):
        await adapter.fetch_media("42", Attachment("photo", url), max_bytes=1000)

    wrong = OAuth1Credentials("app-key", "app-secret", "42-user-token", "another-secret")
    refused = provider.x_dm_media(wrong, PHOTO)  # signed with the wrong token secret
    with pytest.raises(MediaError, match="HTTP 401"):
        await adapter.fetch_media("42", Attachment("photo", refused), max_bytes=10**6)


async def test_x_without_oauth1_credentials_says_so_and_sends_nothing(
    provider: FakeProvider,
) -> None:
    url = provider.x_dm_media(X_APP, PHOTO)
    with pytest.raises(MediaError, match=r"no OAuth 1\.0a credentials"):
        await x_adapter(provider, oauth1=False).fetch_media(
            "42", Attachment("photo", url), max_bytes=10**6
        )
    with pytest.raises(MediaError, match="unknown account"):
        await x_adapter(provider).fetch_media("7", Attachment("photo", url), max_bytes=10**6)
    assert provider.requests == []


async def test_x_signs_only_for_its_own_hosts(provider: FakeProvider) -> None:
    adapter = x_adapter(provider)
    for elsewhere in (
        "https://attacker.example/1.1/ton/data/dm/1/2/a.jpg",
        "http://127.0.0.1:1/1.1/ton/data/dm/1/2/a.jpg",  # same host, another port
        "https://ton.twitter.com.attacker.example/a.jpg",
    ):
        with pytest.raises(MediaError, match="not on X's media host"):
            await adapter.fetch_media("42", Attachment("photo", elsewhere), max_bytes=10**6)
    assert provider.requests == []
    real = TwitterAdapter([TwitterAccount("42", "t", "k", "u", "s")], consumer_secret="c")
    assert real.media_base_url == "https://ton.twitter.com"


def test_x_oauth1_keys_come_from_credentials_yml_all_or_none() -> None:
    env = {"KEY": "k", "TOKEN": "t", "TOKEN_SECRET": "s"}
    account = {"user_id": "42", "access_token": "a", "consumer_key": "${KEY}"}
    full = {**account, "oauth1_token": "${TOKEN}", "oauth1_token_secret": "${TOKEN_SECRET}"}

    def adapter(item: dict[str, str]) -> TwitterAdapter:
        data = {"consumer_secret": "c", "accounts": [item]}
        return TwitterAdapter.from_config(Section(data, "credentials.yml", "x", env))

    assert adapter(full)._accounts["42"] == TwitterAccount("42", "a", "k", "t", "s")
    assert not adapter({"user_id": "42", "access_token": "a"})._accounts["42"].can_fetch_media
    with pytest.raises(ConfigError, match=r"x\.accounts\[0\]\.oauth1_token") as error:
        adapter(account)
    assert error.value.path == "credentials.yml"
