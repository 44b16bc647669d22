"""Holding messages while a resident's messaging window is closed, and releasing them after.

A message that cannot go as free text (WhatsApp after 24 hours) is appended, as its outbox
entry's field/value pairs (JSON), to ``{ns}:reports:held:<conversation>`` and the
conversation added to ``{ns}:reports:held`` (sorted set, score: when it was first held), in
one Lua step with a marker in ``{ns}:reports:told:<conversation>`` so it is held once however
often the step runs. The first message held for a conversation also queues the approved
template (``invite``); later ones only wait. The window rules are the channels' (reports
only use them), so holding and releasing live here; the keys keep the ``reports`` names they
were first written under, so messages held before stay readable and releasable. Both callers
hold through :class:`Holder`: the channels' outbox for a window that closed before the send,
:class:`bot.reports.notify.ResidentNotifier` for one closed at queueing time.
:class:`HeldMessages` releases them when the resident answers: the inbox worker releases a
conversation's held messages as it takes up the resident's message, before Rasa's replies to
it are queued (:meth:`HeldMessages.release`), and a walk through the held set runs beside the
outbox worker in every process that sends the outbox (:mod:`bot.channels.rasa`) as the safety
net, so held messages go whether or not the council has problem reports.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping

import redis.asyncio

from bot.channels.supervisor import every
from bot.channels.window import WINDOW_SECONDS, window_state
from bot.keys import key

__all__ = ["HeldMessages", "Holder", "pairs"]

# KEYS: told set, outbox stream, held list, held set. ARGV: marker, ttl seconds, the held
# entry (JSON list of field/value pairs), now, conversation id, then the template entry's
# field/value pairs (none: no template, the message only waits). The first message is the one
# that finds the list empty: the set may still name a conversation whose list expired.
_HOLD_ONCE = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return false end
redis.call('EXPIRE', KEYS[1], ARGV[2])
local first = redis.call('RPUSH', KEYS[3], ARGV[3]) == 1
redis.call('EXPIRE', KEYS[3], ARGV[2])
if first then
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[5])
  if #ARGV > 5 then redis.call('XADD', KEYS[2], '*', unpack(ARGV, 6)) end
else
  redis.call('ZADD', KEYS[4], 'NX', ARGV[4], ARGV[5])
end
return 'held'
"""

# KEYS: held list, held set, outbox stream. ARGV: conversation id. One step: releasers racing
# (every outbox process runs one) each see either all of a conversation's messages or none.
_RELEASE = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for _, item in ipairs(items) do
  redis.call('XADD', KEYS[3], '*', unpack(cjson.decode(item)))
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return #items
"""

# KEYS: held list, held set. ARGV: conversation id. A closed window's conversation leaves the
# set once its list expired (the resident never answered), checked in the step that removes
# it: a hold in between (one step too) refills the list first and so keeps it in the set.
_FORGET_EXPIRED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
return redis.call('ZREM', KEYS[2], ARGV[1])
"""


def pairs(fields: Mapping[str, str]) -> list[str]:
    """The field/value pairs of a stream entry, flat (as XADD and the scripts take them)."""
    return [item for pair in fields.items() for item in pair]


class Holder:
    """Holds outbox entries for conversations whose window is closed.

    Args:
        client: Asyncio Redis client (decoded strings).
        namespace: Key namespace.
    """

    def __init__(self, client: redis.asyncio.Redis, namespace: str) -> None:
        self.namespace = namespace
        self._hold_once = client.register_script(_HOLD_ONCE)

    async def hold(
        self,
        entry: Mapping[str, str],
        *,
        marker: str,
        ttl: int,
        now: float,
        invite: Mapping[str, str] | None,
    ) -> bool:
        """Hold ``entry`` (outbox fields) unless ``marker`` was used for its conversation.

        Args:
            entry: The outbox entry to send once the window is open again.
            marker: Once per conversation (kept ``ttl`` seconds, like the held entry).
            ttl: Seconds the marker and the held entries are kept.
            now: Unix seconds (the held set's score).
            invite: The template's outbox entry, queued if nothing was held before.

        Returns:
            Whether it was held now (False: the marker was there already).
        """
        conversation_id = entry["conversation_id"]
        held = await self._hold_once(
            keys=[
                key(self.namespace, "reports", "told", conversation_id),
                key(self.namespace, "outbox"),
                key(self.namespace, "reports", "held", conversation_id),
                key(self.namespace, "reports", "held"),
            ],
            args=[marker, ttl, json.dumps(pairs(entry)), now, conversation_id,
                  *pairs(invite or {})],
        )  # fmt: skip
        return bool(held)


class HeldMessages:
    """Sends the messages held for closed windows once each window is open again.

    Any number may run on one namespace: a conversation's release is one Lua step, so each
    held message is queued once, in order, whichever releaser gets to it.

    Args:
        client: Asyncio Redis client (decoded strings).
        namespace: Key namespace.
        clock: Unix seconds.
    """

    def __init__(
        self, client: redis.asyncio.Redis, namespace: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.redis = client
        self.namespace = namespace
        self.clock = clock
        self.held = key(namespace, "reports", "held")
        self.outbox = key(namespace, "outbox")
        self._release = client.register_script(_RELEASE)
        self._forget_expired = client.register_script(_FORGET_EXPIRED)
        self._cursor = 0

    async def release_once(self, count: int = 100) -> int:
        """Queue the held messages of the next page of conversations whose window is open.

        Each call goes on through ``{ns}:reports:held`` where the last one stopped (a ZSCAN
        cursor, back to the start after the end): every conversation in the set for a whole
        round is looked at in it, however many wait before it (one seen twice is harmless:
        both steps are idempotent). A conversation whose held list expired is dropped.

        Args:
            count: About how many conversations to look at (ZSCAN's hint; a set small enough
                for Redis' compact encoding, 128 by default, comes whole). Every outbox process
                runs this every 2 s and each conversation costs a window check and a Lua step,
                so a pass costs a page, not the whole set; the price is that a conversation
                waits up to one round of the set (size / count passes) for its turn.

        Returns:
            How many messages were queued.
        """
        self._cursor, page = await self.redis.zscan(self.held, self._cursor, count=count)
        released = 0
        for conversation_id, _ in page:
            released += await self.release(conversation_id)
        return released

    async def release(self, conversation_id: str, *, opened: bool = False) -> int:
        """Queue the messages held for one conversation if its window is open.

        ``opened``: the caller knows the window is open (the resident's own message), so it is
        not read again; one round trip per message on the inbox's path instead of two (should
        the window have closed by the send, the outbox holds the entry again).

        The inbox worker calls it for each resident's message before Rasa's replies are
        queued, so the held messages go at once and ahead of those replies; the pass of
        :meth:`release_once` is the safety net (a hold racing the resident's message, a
        message processed while Redis failed this step). A closed window's conversation
        whose held list expired leaves the set.

        Returns:
            How many messages were queued (0: none held, the window is closed, or the channel
            has none).
        """
        if conversation_id.split(":", 1)[0] not in WINDOW_SECONDS:
            return 0  # only a messaging window holds messages: no round trip for the others
        keys = [key(self.namespace, "reports", "held", conversation_id), self.held]
        state = (
            None
            if opened
            else await window_state(
                self.redis, conversation_id, namespace=self.namespace, now=self.clock()
            )
        )
        if state is not None and not state["open"]:
            await self._forget_expired(keys=keys, args=[conversation_id])
            return 0
        return int(await self._release(keys=[*keys, self.outbox], args=[conversation_id]))

    async def run(self, stop: asyncio.Event, idle: float = 2.0) -> None:
        """Walk the held set until ``stop`` is set, a page every ``idle`` seconds.

        The safety net: a resident's message releases its own conversation at once
        (:meth:`release`, from the inbox worker); the walk catches the rest.
        """
        await every(stop, idle, self.release_once)
