"""The Rasa input of the web chat: the server's inbox and outbox workers, no webhook.

``credentials.yml`` names it ``bot.webchat.rasa.WebChatInput`` (a row of
:data:`bot.channels.registry.CHANNELS`); it registers :class:`~bot.webchat.adapter.WebChatAdapter`
so the outbox sends web chat replies, like the other channels' inputs do for theirs. Residents'
messages come through the edge (:mod:`bot.webchat.app`).
"""

from __future__ import annotations

from bot.channels.rasa import _WorkerInput

__all__ = ["WebChatInput"]


class WebChatInput(_WorkerInput):
    """The council's website chat (routes on the edge: ``/webchat/``)."""

    channel_name = "webchat"
