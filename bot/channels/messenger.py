"""Facebook Messenger through the Meta Graph API.

Inbound: ``X-Hub-Signature-256`` (HMAC-SHA256 of the app secret over the raw body), page
events (``object: page``) routed by ``entry[].id``; what each event becomes is described in
:mod:`bot.channels.meta`, which Messenger shares with Instagram. Outbound:
``POST /{version}/me/messages`` with the page's token; agents' replies after 24 hours use the
``HUMAN_AGENT`` tag.
"""

from __future__ import annotations

from bot.channels.meta import GRAPH_URL, MetaAccount, MetaAdapter

__all__ = ["GRAPH_URL", "MessengerAdapter", "MessengerPage"]


MessengerPage = MetaAccount
"""One of the council's Facebook pages: ``MessengerPage(page_id, page_token)``."""


class MessengerAdapter(MetaAdapter):
    """Messenger for every page of one Meta app (accounts: ``page_id``, ``page_token``)."""

    channel = "messenger"
    channels = ("messenger",)
    webhook_object = "page"
    account_keys = ("page_id", "page_token")
