"""Facebook Messenger through the Meta Graph API.

Inbound: ``X-Hub-Signature-256`` (HMAC-SHA256 of the app secret over the raw body), page
events (``object: page``) routed by ``entry[].id``; what each event becomes is described in
:mod:`bot.channels.meta`, which Messenger shares with Instagram. Outbound:
``POST /{version}/me/messages`` with the page's token; agents' replies after 24 hours use the
``HUMAN_AGENT`` tag.
"""

from __future__ import annotations

from typing import Any

from bot.channels.accounts import Section
from bot.channels.meta import GRAPH_URL, MetaAccount, MetaAdapter

__all__ = ["GRAPH_URL", "MessengerAdapter", "MessengerPage"]


MessengerPage = MetaAccount
"""One of the council's Facebook pages: ``MessengerPage(page_id, page_token)``."""


class MessengerAdapter(MetaAdapter):
    """Messenger for every page of one Meta app (see :class:`~bot.channels.meta.MetaAdapter`)."""

    channel = "messenger"
    channels = ("messenger",)
    webhook_object = "page"
    account_keys = ("page_id", "page_token")

    @classmethod
    def from_config(cls, section: Section, **overrides: Any) -> MessengerAdapter:
        """Build from a ``credentials.yml`` section (``accounts``: ``page_id``, ``page_token``).

        Raises:
            ConfigError: A key is unknown or a value is wrong.
            MissingSecretError: A referenced environment variable is unset.
        """
        options = cls.options_from(section)
        options.update(overrides)
        return cls(cls.accounts_from(section), **options)
