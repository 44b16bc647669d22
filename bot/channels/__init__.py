"""Residents' channels: WhatsApp and SMS (Twilio), Messenger, Twitter/X DMs and Telegram.

Framework-free adapters (:mod:`bot.channels.base`) verify, parse and send; the durable inbox
and outbox (:mod:`bot.channels.inbox`, :mod:`bot.channels.outbox`) sit between the webhooks and
Rasa; :mod:`bot.channels.rasa` wires them into the Rasa server.
"""

from __future__ import annotations

__all__: list[str] = []
