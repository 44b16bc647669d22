"""Telling a resident about their report: once, in their words, through the channels' outbox.

:class:`Wording` renders a response of ``responses/report_updates.yml`` as the Rasa server
would (:class:`bot.responses.CouncilResponses`: the profile's values, the resident's channel
and language). :class:`ResidentNotifier` appends the text to ``{ns}:outbox`` in one Lua step
with a marker in ``{ns}:reports:told:<conversation>``: a marker already there means the
message was queued before, so a retried worker or a second source of the same status change
(poll and webhook) never sends it twice. The channels' outbox worker sends it.

Messaging windows (:func:`bot.handoff.replies.reply_options` on
:func:`bot.channels.window.window_state`, their one owner): when the resident's window is
closed and free text cannot go (WhatsApp after 24 hours), the message is *held* in
``{ns}:reports:held:<conversation>`` (in order) and the conversation added to
``{ns}:reports:held`` (sorted set, score: when it was first held); the first held message
queues the approved template instead (``council_reply_waiting``: "we have a reply for you,
answer to see it"), later ones only wait (:class:`bot.channels.held.Holder`, which the
channels' outbox uses too when the window closed between queueing and sending: each entry
says how long to keep it held). When the resident answers, the channels' inbox worker moves
the held messages to ``{ns}:outbox`` as it takes up that answer, ahead of the replies to it
(:meth:`bot.channels.held.HeldMessages.release`, one Lua step: each is sent once, in order);
the walk of :class:`~bot.channels.held.HeldMessages` beside the channels' outbox worker is
the safety net (a hold racing the answer).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import redis.asyncio

from bot.channels.base import OutboundMessage, Template
from bot.channels.held import Holder, pairs
from bot.channels.outbox import outbox_fields
from bot.channels.window import window_state
from bot.handoff.replies import WHATSAPP_TEMPLATE, reply_options
from bot.keys import key
from bot.profile import CouncilProfile

__all__ = ["Recipient", "ResidentNotifier", "Wording"]

# KEYS: told set, outbox stream. ARGV: marker, ttl seconds, then the entry's field/value pairs.
_TELL_ONCE = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return false end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
"""


class Recipient(Protocol):
    """Where a message goes (a :class:`~bot.reports.store.Subscriber`, a report)."""

    @property
    def conversation_id(self) -> str: ...  # noqa: D102
    @property
    def channel(self) -> str: ...  # noqa: D102
    @property
    def account(self) -> str: ...  # noqa: D102
    @property
    def sender(self) -> str: ...  # noqa: D102
    @property
    def language(self) -> str: ...  # noqa: D102


class Wording:
    """Renders responses outside a conversation turn, as the Rasa server would.

    Args:
        profile: The council profile (default: this process').
    """

    def __init__(self, profile: CouncilProfile | None = None) -> None:
        from bot.responses import CouncilResponses, load_responses  # imports Rasa: only here

        self.responses = CouncilResponses(responses=load_responses(), profile=profile)

    def text(self, response: str, channel: str, language: str, **values: Any) -> str:
        """The text of ``response`` for a resident on ``channel`` writing in ``language``.

        Raises:
            KeyError: No such response (a missing key in ``responses/*.yml``).
        """
        rendered = self.responses.render(response, channel, {"language": language}, **values)
        if rendered is None or not rendered.get("text"):
            raise KeyError(response)
        return str(rendered["text"])


class ResidentNotifier:
    """Queues a message to a resident once per marker.

    Args:
        client: Asyncio Redis client (decoded strings).
        namespace: Key namespace.
        wording: Renders the responses.
        told_days: How long the markers are kept (the retention of problem reports).
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        namespace: str,
        wording: Wording,
        *,
        told_days: int = 365,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.namespace = namespace
        self.wording = wording
        self.ttl = told_days * 86400
        self.clock = clock
        self.outbox = key(namespace, "outbox")
        self._tell_once = client.register_script(_TELL_ONCE)
        self._holder = Holder(client, namespace)

    async def tell(self, to: Recipient, marker: str, response: str, **values: Any) -> str | None:
        """Queue ``response`` for ``to`` unless ``marker`` was queued for them before.

        Held instead while the resident's messaging window does not allow free text (see the
        module docstring).

        Returns:
            The outbox entry id, ``"held"``, or None when it had been queued already.
        """
        text = self.wording.text(response, to.channel, to.language, **values)
        fields = outbox_fields(
            to.conversation_id,
            to.channel,
            to.account,
            to.sender,
            OutboundMessage(text),
            hold_seconds=self.ttl,
        )
        told = key(self.namespace, "reports", "told", to.conversation_id)
        now = self.clock()
        window = await window_state(
            self.redis, to.conversation_id, namespace=self.namespace, now=now
        )
        options = reply_options(to.channel, window, datetime.fromtimestamp(now, UTC))
        if options.free_text or (options.tag and not options.tag.startswith("template:")):
            entry = await self._tell_once(
                keys=[told, self.outbox], args=[marker, self.ttl, *pairs(fields)]
            )
            return str(entry) if entry else None
        invite = None
        if options.tag == WHATSAPP_TEMPLATE:
            name = WHATSAPP_TEMPLATE.removeprefix("template:")
            invite = outbox_fields(
                to.conversation_id,
                to.channel,
                to.account,
                to.sender,
                OutboundMessage("", template=Template(name)),
            )
        held = await self._holder.hold(fields, marker=marker, ttl=self.ttl, now=now, invite=invite)
        return "held" if held else None
