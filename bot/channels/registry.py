"""The residents' channels: one table that the public edge and the Rasa inputs both read.

Each :class:`ChannelSpec` names a channel's webhook (``/webhooks/<name>/webhook`` on the edge),
its adapter class, and the ``credentials.yml`` section that configures it. The edge builds the
adapters from those sections to verify and queue webhooks; the Rasa server builds the same
adapters to send replies. Adding a channel is one row here plus its adapter module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bot.channels.accounts import DEFAULT_CREDENTIALS, Section, load_credentials
from bot.channels.base import ChannelAdapter
from bot.channels.instagram import InstagramAdapter
from bot.channels.messenger import MessengerAdapter
from bot.channels.telegram import TelegramAdapter
from bot.channels.twilio import TwilioAdapter
from bot.channels.twitter import TwitterAdapter
from bot.channels.webhook import DEFAULT_MAX_BODY
from bot.webchat.adapter import WebChatAdapter

__all__ = [
    "CHANNELS",
    "COMMON_KEYS",
    "AdapterClass",
    "ChannelSpec",
    "ConfiguredChannel",
    "build",
    "configured",
    "secret_values",
]

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

COMMON_KEYS = frozenset({"accounts", "api_base_url", "max_body_bytes"})
"""Keys every channel section accepts."""


class AdapterClass(Protocol):
    """What the table needs of an adapter class: building it from its section."""

    @classmethod
    def from_config(cls, section: Section, /) -> ChannelAdapter:
        """Build the adapter (raises ``ConfigError`` / ``MissingSecretError``)."""
        ...


@dataclass(frozen=True)
class ChannelSpec:
    """One channel of the table.

    Attributes:
        name: The webhook's name (``/webhooks/<name>/webhook``) and the Rasa input's ``name()``.
        adapter_class: The :class:`~bot.channels.base.ChannelAdapter` built from the section.
        section: The ``credentials.yml`` key of its section.
        extra_keys: Section keys besides :data:`COMMON_KEYS` that the adapter reads.
        webhook: The edge serves ``/webhooks/<name>/webhook`` (False for the web chat, whose
            messages come through the edge's ``/webchat`` routes).
    """

    name: str
    adapter_class: AdapterClass
    section: str
    extra_keys: frozenset[str] = frozenset()
    webhook: bool = True


@dataclass(frozen=True)
class ConfiguredChannel:
    """A channel built from its section: the adapter and the body limit of its webhook."""

    spec: ChannelSpec
    adapter: ChannelAdapter
    max_body_bytes: int


CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec(
        "whatsapp", TwilioAdapter, "bot.channels.rasa.WhatsAppInput", frozenset({"trust_proxy"})
    ),
    ChannelSpec(
        "messenger",
        MessengerAdapter,
        "bot.channels.rasa.MessengerInput",
        frozenset({"app_secret", "verify_token", "api_version"}),
    ),
    ChannelSpec(
        "twitter", TwitterAdapter, "bot.channels.rasa.TwitterInput", frozenset({"consumer_secret"})
    ),
    ChannelSpec("telegram", TelegramAdapter, "bot.channels.rasa.TelegramInput"),
    ChannelSpec(
        "instagram",
        InstagramAdapter,
        "bot.channels.rasa.InstagramInput",
        frozenset({"app_secret", "verify_token", "api_version"}),
    ),
    ChannelSpec("webchat", WebChatAdapter, "bot.webchat.rasa.WebChatInput", webhook=False),
)
"""Every residents' channel, by webhook name."""


def build(
    spec: ChannelSpec,
    data: Mapping[str, Any] | None,
    path: str = DEFAULT_CREDENTIALS,
    env: Mapping[str, str] | None = None,
) -> ConfiguredChannel:
    """Build one channel from its section's mapping.

    Raises:
        ConfigError: A key is unknown or a value is wrong (names the file and key).
        MissingSecretError: A referenced environment variable is unset.
    """
    section = Section(data, path, spec.section, env)
    section.only(COMMON_KEYS | spec.extra_keys)
    options = {key: value for key, value in section.data.items() if key != "max_body_bytes"}
    adapter = spec.adapter_class.from_config(
        Section(options, section.path, section.key, section.env)
    )
    limit = int(section.number("max_body_bytes", DEFAULT_MAX_BODY))
    return ConfiguredChannel(spec, adapter, limit)


def configured(path: str | Path, env: Mapping[str, str] | None = None) -> list[ConfiguredChannel]:
    """Every channel whose section is in the credentials file at ``path`` (others ignored).

    Raises:
        ConfigError: The file or a section is wrong.
        MissingSecretError: A referenced environment variable is unset.
    """
    data = load_credentials(path)
    return [
        build(spec, data[spec.section], str(path), env) for spec in CHANNELS if spec.section in data
    ]


def secret_values(data: Any, env: Mapping[str, str]) -> list[str]:
    """The values of every ``${VAR}`` that ``data`` (a loaded file or section) refers to.

    For log redaction (:func:`bot.logs.protect`): these are the channels' secrets.
    """
    names: set[str] = set()
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            names.update(match.group(1) for match in _REFERENCE.finditer(item))
        elif isinstance(item, Mapping):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return [env[name] for name in sorted(names) if env.get(name)]
