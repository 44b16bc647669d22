"""Telling a resident about their report: once, in their words, through the channels' outbox.

:class:`Wording` renders a response of ``responses/report_updates.yml`` as the Rasa server
would (:class:`bot.responses.CouncilResponses`: the profile's values, the resident's channel
and language). :class:`ResidentNotifier` appends the text to ``{ns}:outbox`` in one Lua step
with a marker in ``{ns}:reports:told:<conversation>``: a marker already there means the
message was queued before, so a retried worker or a second source of the same status change
(poll and webhook) never sends it twice. The channels' outbox worker sends it and applies the
messaging windows (a closed WhatsApp window gets the account's approved template).
"""

from __future__ import annotations

from typing import Any, Protocol

import redis.asyncio

from bot.channels.base import OutboundMessage
from bot.channels.outbox import outbox_fields
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
    ) -> None:
        self.redis = client
        self.namespace = namespace
        self.wording = wording
        self.ttl = told_days * 86400
        self.outbox = key(namespace, "outbox")
        self._tell_once = client.register_script(_TELL_ONCE)

    async def tell(self, to: Recipient, marker: str, response: str, **values: Any) -> str | None:
        """Queue ``response`` for ``to`` unless ``marker`` was queued for them before.

        Returns:
            The outbox entry id, or None when it had been queued already.
        """
        text = self.wording.text(response, to.channel, to.language, **values)
        fields = outbox_fields(
            to.conversation_id, to.channel, to.account, to.sender, OutboundMessage(text)
        )
        pairs = [item for pair in fields.items() for item in pair]
        told = key(self.namespace, "reports", "told", to.conversation_id)
        entry = await self._tell_once(keys=[told, self.outbox], args=[marker, self.ttl, *pairs])
        return str(entry) if entry else None
