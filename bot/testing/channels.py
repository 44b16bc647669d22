"""The provider accounts of the end-to-end tests, their ``credentials.yml``, the edge in front.

:class:`ChannelAccounts` is a council's WhatsApp number (a Twilio account) and its Telegram
bot, with fresh secrets: :meth:`~ChannelAccounts.write` gives the Rasa server and the edge the
``credentials.yml`` that opens ``bot.channels.rasa.WhatsAppInput`` and ``TelegramInput``
against a fake provider (:class:`bot.testing.providers.ProviderThread`), the secrets named in
it by environment variable (:meth:`~ChannelAccounts.env`) as a council's file names them;
:meth:`~ChannelAccounts.whatsapp_form` and the ``*_headers`` methods make the webhooks the
providers would send, signed. :func:`behind_the_edge` runs the real assistant with those
channels behind the public edge (``python -m bot.edge``) and deletes its keys afterwards.
"""

from __future__ import annotations

import secrets
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from twilio.request_validator import RequestValidator

from bot.keys import prefix
from bot.redis_conn import connect
from bot.services import ROOT, base_env, edge_argv, free_port, start_service
from bot.testing.assistant import Assistant, running_assistant
from bot.testing.cleanup import delete_keys

__all__ = ["WEBHOOKS", "ChannelAccounts", "behind_the_edge", "edge_url", "webhook_body"]

WEBHOOKS = ROOT / "tests" / "data" / "webhooks"
"""Recorded provider webhooks, one folder a provider (``twilio/whatsapp_text.txt``...)."""

_CREDENTIALS = """\
bot.channels.rasa.WhatsAppInput:
  api_base_url: "{url}"
  accounts:
    - number: "{number}"
      account_sid: "{sid}"
      auth_token: "${{E2E_TWILIO_AUTH_TOKEN}}"
bot.channels.rasa.TelegramInput:
  api_base_url: "{url}"
  accounts:
    - name: "{bot}"
      token: "${{E2E_TELEGRAM_TOKEN}}"
      secret_token: "${{E2E_TELEGRAM_SECRET}}"
"""


def webhook_body(provider: str, name: str) -> bytes:
    """The body of a recorded webhook, ``WEBHOOKS/<provider>/<name>``, its trailing newline cut."""
    return (WEBHOOKS / provider / name).read_bytes().strip()


@dataclass(frozen=True)
class ChannelAccounts:
    """A council's WhatsApp number and Telegram bot, as a test's fake provider knows them.

    Attributes:
        number: The council's WhatsApp number.
        twilio_sid: The Twilio account that number belongs to.
        twilio_token: That account's auth token (signs Twilio's webhooks).
        telegram_bot: The Telegram account's name (``telegram:<bot>:<chat>`` senders).
        telegram_token: The Telegram bot's token (in the Bot API's paths).
        telegram_secret: The secret token Telegram sends with each webhook.
    """

    number: str = "+441234567890"
    twilio_sid: str = "AC00000000000000000000000000000001"
    twilio_token: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    telegram_bot: str = "councilbot"
    telegram_token: str = field(default="123456:e2e-bot-token", repr=False)
    telegram_secret: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)

    def env(self) -> dict[str, str]:
        """The environment the servers read the secrets from (the file only names them)."""
        return {
            "E2E_TWILIO_AUTH_TOKEN": self.twilio_token,
            "E2E_TELEGRAM_TOKEN": self.telegram_token,
            "E2E_TELEGRAM_SECRET": self.telegram_secret,
        }

    def write(self, path: Path, provider_url: str, *, rest: bool = False) -> Path:
        """Write the ``credentials.yml`` of both channels, their API at ``provider_url``.

        ``rest`` opens Rasa's REST channel too (the benchmark's other side).
        """
        path.write_text(
            ("rest:\n" if rest else "")
            + _CREDENTIALS.format(
                url=provider_url, number=self.number, sid=self.twilio_sid, bot=self.telegram_bot
            )
        )
        return path

    def whatsapp_form(self, resident: str, recorded: str, **fields: str) -> dict[str, str]:
        """A recorded Twilio WhatsApp webhook re-addressed, its fields as a form.

        Args:
            resident: Who sends it (``+44...``).
            recorded: Its file in ``WEBHOOKS/twilio``.
            **fields: Fields to change (``Body``, ``ProfileName``...).

        It is sent to this number, under a new message SID.
        """
        form = dict(urllib.parse.parse_qsl(webhook_body("twilio", recorded).decode()))
        sid = f"SM{uuid.uuid4().hex}"
        form.update(
            MessageSid=sid, SmsSid=sid, SmsMessageSid=sid, AccountSid=self.twilio_sid,
            From=f"whatsapp:{resident}", WaId=resident.lstrip("+"),
            To=f"whatsapp:{self.number}", **fields,
        )  # fmt: skip
        return form

    def twilio_headers(self, url: str, form: Mapping[str, str]) -> dict[str, str]:
        """The headers of ``form`` posted to ``url``, signed as Twilio signs it."""
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": RequestValidator(self.twilio_token).compute_signature(
                url, dict(form)
            ),
        }

    def telegram_headers(self) -> dict[str, str]:
        """The headers of a Telegram webhook, with the bot's secret token."""
        return {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": self.telegram_secret,
        }


def edge_url(assistant: Assistant) -> str:
    """Where residents' providers post: the edge, never the Rasa server."""
    return assistant.services["edge"].url.removesuffix("/health")


@contextmanager
def behind_the_edge(
    redis_url: str,
    namespace: str,
    folder: Path,
    credentials: Path,
    env: Mapping[str, str],
    *,
    edge_port: int | None = None,
) -> Iterator[Assistant]:
    """The real assistant with the edge in front (its service ``edge``); keys deleted after.

    The assistant (:func:`~bot.testing.assistant.running_assistant`) opens the channels of
    ``credentials``; every key of the run is deleted once it has stopped.

    Args:
        redis_url: The Redis every process uses.
        namespace: The run's key namespace (its own hash tag).
        folder: Where the servers' output goes.
        credentials: The channels (:meth:`ChannelAccounts.write`).
        env: More environment for every server (:meth:`ChannelAccounts.env` at least).
        edge_port: The edge's port when the caller must know it first (else a free one).

    Services a test adds to ``services`` are stopped with the others, the last added first.
    """
    with running_assistant(
        redis_url, namespace, folder, credentials=credentials, env=env
    ) as running:
        port = edge_port if edge_port is not None else free_port()
        running.services["edge"] = start_service(
            "edge",
            edge_argv(host="127.0.0.1", port=port, credentials=credentials),
            ready_url=f"http://127.0.0.1:{port}/health",
            env=base_env(**env, REDIS_URL=redis_url, COUNCIL_NAMESPACE=namespace),
            log_dir=folder,
        )
        yield running
    client = connect(redis_url)
    try:
        delete_keys(client, prefix(namespace), running.tracker_prefix)
    finally:
        client.close()
