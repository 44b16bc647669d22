"""Agents' replies: what may be sent on the resident's channel, and handing it to the sender.

Channels with a messaging window (WhatsApp 24 hours; Messenger and Instagram 24 hours plus
7 days with the ``HUMAN_AGENT`` tag) refuse free text once it closes. :func:`reply_options`
reads the window state stored in the handoff record and says whether a reply can go as it is,
only with an alternative (an approved WhatsApp template, Meta's ``HUMAN_AGENT`` tag), or not
at all.

:class:`OutboxSender` hands replies to the channel workers through the Redis stream
``{ns}:outbox`` (consumed by ``bot.channels``; this module does not import it).

Window state (``record.window``), as written by ``bot.channels.window.window_state``:
``{"open": bool, "closes_at": ISO time or None, "human_agent_until": ISO time or None}``;
``None`` means the channel has no window. A ``closes_at`` in the past counts as closed even if
``open`` was still true when the record was written.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio

from bot import profile
from bot.handoff.queue import OP_SECONDS, op_key
from bot.handoff.record import HandoffRecord
from bot.keys import key

__all__ = [
    "HUMAN_AGENT_TAG",
    "WHATSAPP_TEMPLATE",
    "OutboundReply",
    "OutboxSender",
    "ReplyOptions",
    "ReplySender",
    "reply_options",
]

# One stream entry per send, however often the command runs: the Redis client repeats a command
# whose reply was lost (bot.redis_conn), and a repeated XADD would send the resident the reply
# twice. The call's marker (KEYS[2]) keeps the entry id, so a repeat returns the same id.
_SEND_ONCE = """
local done = redis.call('GET', KEYS[2])
if done then return done end
local entry_id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[2], entry_id, 'EX', ARGV[1])
return entry_id
"""

HUMAN_AGENT_TAG = "HUMAN_AGENT"
WHATSAPP_TEMPLATE = "template:council_reply_waiting"
"""The approved WhatsApp template that asks the resident to reply to reopen the window."""


@dataclass(frozen=True)
class ReplyOptions:
    """What an agent may send now.

    Attributes:
        free_text: The agent's own text can be sent as it is.
        tag: Send with this tag or template instead (``HUMAN_AGENT``, ``template:...``).
        explanation: Plain words for the agent (empty when free text is fine).
        closes_at: When the window closes (None: no window or already closed).
    """

    free_text: bool
    tag: str | None
    explanation: str
    closes_at: datetime | None = None

    @property
    def can_send(self) -> bool:
        """Something can be sent: free text or the alternative."""
        return self.free_text or self.tag is not None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


_HUMAN_AGENT_CHANNELS = {"messenger": "Messenger", "instagram": "Instagram"}
"""Meta's channels: agents may reply with the HUMAN_AGENT tag up to 7 days."""


def reply_options(channel: str, window: Mapping[str, Any] | None, now: datetime) -> ReplyOptions:
    """Decide how a reply can reach the resident on ``channel`` given its window state."""
    if window is None:
        return ReplyOptions(True, None, "")
    closes_at = _time(window.get("closes_at"))
    is_open = bool(window.get("open", closes_at is not None)) and (
        closes_at is None or closes_at > now
    )
    if is_open:
        return ReplyOptions(True, None, "", closes_at)
    if channel in _HUMAN_AGENT_CHANNELS:
        name = _HUMAN_AGENT_CHANNELS[channel]
        until = _time(window.get("human_agent_until"))
        if until is not None and until > now:
            return ReplyOptions(
                False,
                HUMAN_AGENT_TAG,
                f"The 24-hour {name} window has closed. Your reply will be sent with the "
                f"HUMAN_AGENT tag (allowed until {until:%d %b %H:%M} UTC).",
            )
        return ReplyOptions(
            False,
            None,
            f"This reply cannot be sent: {name} allows replies only within 7 days of the "
            "resident's last message. Contact the resident another way.",
        )
    if channel == "whatsapp":
        return ReplyOptions(
            False,
            WHATSAPP_TEMPLATE,
            "The 24-hour WhatsApp window has closed: free text cannot be sent. You can send the "
            "approved template asking the resident to reply; your text is kept in the case and "
            "can be sent once they do.",
        )
    return ReplyOptions(
        False, None, f"This reply cannot be sent: the {channel} messaging window has closed."
    )


@dataclass(frozen=True)
class OutboundReply:
    """A reply for a channel worker to send.

    Attributes:
        conversation_id: The Rasa conversation.
        channel: Channel name.
        account: The council's account the resident wrote to.
        recipient: The resident's id on the channel.
        text: What to send.
        tag: Messenger tag or WhatsApp template (None: plain text).
    """

    conversation_id: str
    channel: str
    account: str
    recipient: str
    text: str
    tag: str | None = None

    @classmethod
    def for_record(cls, record: HandoffRecord, text: str, tag: str | None = None) -> OutboundReply:
        """A reply to the resident of ``record``."""
        return cls(record.conversation_id, record.channel, record.account, record.sender, text, tag)


class ReplySender(abc.ABC):
    """Sends agents' replies on the resident's channel."""

    @abc.abstractmethod
    async def send(self, reply: OutboundReply) -> str:
        """Queue or send ``reply``; return an id for the audit log."""


class OutboxSender(ReplySender):
    """Adds replies to the ``{ns}:outbox`` stream that the channel workers send from.

    A free-text reply carries ``hold``: should the window close between queueing and sending
    (the outbox backed up or retrying past the 24-hour mark), the outbox holds it, sends the
    approved template once and sends the agent's text when the resident answers, instead of
    swapping it for the template and losing it. Replies with a tag or template go as they are.

    Args:
        client: Asyncio Redis client (decoded strings).
        namespace: Key namespace.
        hold_seconds: How long such a reply is held at most (None: the profile's
            ``retention.conversations``, what the channels keep about a conversation).
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        namespace: str = "cr",
        *,
        hold_seconds: int | None = None,
    ) -> None:
        self.redis = client
        self.namespace = namespace
        self.key = key(namespace, "outbox")
        self._hold_seconds = hold_seconds
        self._send_once = client.register_script(_SEND_ONCE)

    @property
    def hold_seconds(self) -> int:
        """Seconds a free-text reply is held at most if its window closes before the send."""
        if self._hold_seconds is not None:
            return self._hold_seconds
        return profile.current().retention_in_force().conversation_days * 86400

    async def send(self, reply: OutboundReply) -> str:
        """Append ``reply`` to the outbox stream; return the stream id."""
        fields = {
            "conversation_id": reply.conversation_id,
            "channel": reply.channel,
            "account": reply.account,
            "recipient": reply.recipient,
            "text": reply.text,
        }
        if reply.tag:
            fields["tag"] = reply.tag
        else:
            fields["hold"] = str(self.hold_seconds)
        pairs = [item for field_value in fields.items() for item in field_value]
        entry_id = await self._send_once(
            keys=[self.key, op_key(self.namespace)], args=[OP_SECONDS, *pairs]
        )
        return str(entry_id)
