"""Instagram direct messages through Meta's Messenger API for Instagram.

The same Meta app, signature (``X-Hub-Signature-256`` with the app secret), subscription check,
event shapes and Send API as Messenger (:mod:`bot.channels.meta`); the webhook's ``object`` is
``instagram`` and ``entry[].id`` is the council's Instagram professional account, routed to
that account's token. Instagram names the message read (``read.mid``) where Messenger gives a
watermark, and marks unsent messages ``is_deleted`` (ignored). The window is Messenger's:
24 hours, then agents' replies with the ``HUMAN_AGENT`` tag up to 7 days
(:mod:`bot.channels.window`).
"""

from __future__ import annotations

from bot.channels.meta import GRAPH_URL, MetaAccount, MetaAdapter

__all__ = ["GRAPH_URL", "InstagramAccount", "InstagramAdapter"]

InstagramAccount = MetaAccount
"""One of the council's Instagram accounts: ``InstagramAccount(account_id, token)``."""


class InstagramAdapter(MetaAdapter):
    """Instagram DMs for every account of one Meta app (accounts: ``account_id``, ``token``)."""

    channel = "instagram"
    channels = ("instagram",)
    webhook_object = "instagram"
    account_keys = ("account_id", "token")
