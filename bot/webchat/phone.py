"""Continuing a web chat on SMS or WhatsApp, once the resident proves the number is theirs.

:meth:`PhoneLink.start` sends a 6-digit code by SMS through the outbox (from the profile's
``webchat.continue_from`` Twilio number; SMS for WhatsApp too, because a WhatsApp message to a
number that never wrote to the council is outside its 24-hour window, where only an approved
template without the code could go). The code is kept only as a keyed digest, for 10 minutes,
in ``{ns}:webchat:code:<conversation>`` (hash ``digest``, ``channel``, ``phone``, ``tries``);
:meth:`PhoneLink.confirm` compares in constant time and allows :data:`MAX_TRIES` tries (counted
before the comparison, atomically), then the code is gone. Once confirmed, the conversation's
state names the channel and number, and the adapter (:mod:`bot.webchat.adapter`) also queues
every later bot or agent message to it through the outbox, as the conversation
``<channel>:<council number>:<phone>``, so the outbox applies that channel's window rules
(:mod:`bot.channels.window`): on WhatsApp a closed window sends the council's approved template.
The set ``{ns}:webchat:phone:<digits>`` lists the conversations continued on a number.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

import redis.asyncio

from bot.channels.base import OutboundMessage, conversation_id
from bot.channels.outbox import queue_reply
from bot.keys import key
from bot.webchat.config import WebChatConfig
from bot.webchat.events import EventLog
from bot.webchat.status import CHANNEL

__all__ = ["CODE_SECONDS", "MAX_TRIES", "PhoneLink", "mirror", "phone_index_key", "uk_mobile"]

CODE_SECONDS = 600
"""How long a code can be used."""
MAX_TRIES = 5
"""Wrong codes allowed before the code is thrown away."""
_MOBILE = re.compile(r"(?:\+44|0044|0)(7\d{9})\Z")

_TRY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
local found = redis.call('HMGET', KEYS[1], 'digest', 'channel', 'phone')
if tries >= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
return {found[1], found[2], found[3], tries}
"""


def phone_index_key(namespace: str, phone: str) -> str:
    """The set of web chat conversations continued on ``phone`` (``+447...``).

    For residents' rights: a resident found by their number is found with their web chats too.
    """
    return key(namespace, "webchat", "phone", phone.lstrip("+"))


def uk_mobile(text: str) -> str | None:
    """A UK mobile number in ``+447...`` form, or None (spaces, dashes and brackets allowed)."""
    match = _MOBILE.match(re.sub(r"[\s\-()]", "", text))
    return f"+44{match.group(1)}" if match else None


class PhoneLink:
    """Codes and confirmed numbers of web chat conversations.

    Args:
        client: Asyncio Redis client (decoded strings).
        namespace: Key namespace.
        secret: Keys the codes' digests.
        log: The conversations' event log (their state holds the confirmed number).
    """

    def __init__(
        self, client: redis.asyncio.Redis, namespace: str, secret: str, log: EventLog
    ) -> None:
        self.redis = client
        self.namespace = namespace
        self.log = log
        self._key = hashlib.sha256(f"webchat-codes:{secret}".encode()).digest()
        self._try = client.register_script(_TRY)

    def code_key(self, conversation: str) -> str:
        """The pending code of a conversation."""
        return key(self.namespace, "webchat", "code", conversation)

    def _digest(self, conversation: str, code: str) -> str:
        message = f"{conversation}:{code}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    async def start(
        self, conversation: str, channel: str, phone: str, config: WebChatConfig
    ) -> None:
        """Send a new code to ``phone`` (``+447...``) and forget any earlier one."""
        code = f"{secrets.randbelow(1_000_000):06d}"
        name = self.code_key(conversation)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(name)
            pipe.hset(
                name,
                mapping={
                    "digest": self._digest(conversation, code),
                    "channel": channel,
                    "phone": phone,
                    "tries": 0,
                },
            )
            pipe.expire(name, CODE_SECONDS)
            await pipe.execute()
        text = config.code_message.replace("{code}", code).replace("{name}", config.name)
        source = config.continue_from
        await queue_reply(
            self.redis,
            self.namespace,
            conversation_id("sms", source, phone),
            "sms",
            source,
            phone,
            OutboundMessage(text),
        )

    async def confirm(self, conversation: str, code: str, account: str) -> bool | None:
        """True: the number is confirmed; False: wrong code; None: no code (expired or used up).

        Each call counts as a try before the comparison; the fifth wrong try ends the code.
        ``account`` is the council id (the conversation id is indexed under the number).
        """
        found: Any = await self._try(keys=[self.code_key(conversation)], args=[MAX_TRIES])
        if not found:
            return None
        digest, channel, phone, _tries = found
        if not hmac.compare_digest(str(digest), self._digest(conversation, code.strip())):
            return False
        await self.redis.delete(self.code_key(conversation))
        await self.log.set_state(conversation, phone_channel=str(channel), phone=str(phone))
        index = phone_index_key(self.namespace, str(phone))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(index, conversation_id(CHANNEL, account, conversation))
            pipe.expire(index, self.log.keep_seconds)
            await pipe.execute()
        return True


async def mirror(
    client: redis.asyncio.Redis,
    namespace: str,
    state: dict[str, str],
    config: WebChatConfig,
    message: OutboundMessage,
) -> str | None:
    """Queue ``message`` to the conversation's confirmed number, if it has one; return the id."""
    channel, phone = state.get("phone_channel", ""), state.get("phone", "")
    if not channel or not phone or not config.continue_from:
        return None
    source = config.continue_from
    return await queue_reply(
        client,
        namespace,
        conversation_id(channel, source, phone),
        channel,
        source,
        phone,
        message,
    )
