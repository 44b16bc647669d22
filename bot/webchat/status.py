"""Who is answering a web chat (the bot, nobody yet, or an agent), and agents' typing.

The state is derived from the handoff queue (:class:`bot.handoff.queue.HandoffQueue`): no open
case is ``bot``, an open case nobody holds is ``waiting``, a claimed case is ``agent`` with the
agent's display name (the console account's ``display_name``; none when the agent has not set
one, and the widget then says "an adviser": never any part of the login name).
:func:`refresh` compares it with the state last told to the widget and
appends a ``status`` event when it changed; the agent console calls it after claiming,
releasing, resolving and returning a case, and the adapter before each message it shows, so
every channel-specific step stays here: for conversations of other channels both functions do
nothing.
"""

from __future__ import annotations

import redis.asyncio

from bot.handoff.queue import HandoffQueue
from bot.web.accounts import AccountStore
from bot.webchat.events import EventLog, now_iso

__all__ = ["CHANNEL", "agent_display_name", "derive", "is_webchat", "refresh", "typing"]

CHANNEL = "webchat"
"""The channel name of web chat conversations (``webchat:<council id>:<conversation>``)."""


def is_webchat(conversation_id: str) -> bool:
    """True for a web chat conversation id."""
    return conversation_id.startswith(CHANNEL + ":")


def sender_of(conversation_id: str) -> str:
    """The web chat conversation (the token's) of a conversation id."""
    return conversation_id.rsplit(":", 1)[-1]


async def agent_display_name(client: redis.asyncio.Redis, namespace: str, username: str) -> str:
    """The name a resident sees for an agent: their account's display name, '' when none is set.

    '' means "say 'an adviser'" (the widget's own wording): the login name is never shown.
    """
    return await AccountStore(client, namespace).display_name(username)


async def derive(
    client: redis.asyncio.Redis, namespace: str, conversation_id: str
) -> tuple[str, str]:
    """The state (``bot``, ``waiting``, ``agent``) and the agent's display name ('' if none)."""
    queue = HandoffQueue(client, namespace)
    case_id = await queue.case_for(conversation_id)
    if case_id is None:
        return "bot", ""
    holder = await queue.holder(case_id)
    if holder:
        return "agent", await agent_display_name(client, namespace, holder)
    return "waiting", ""


async def refresh(
    client: redis.asyncio.Redis, namespace: str, conversation_id: str, *, keep_days: int = 90
) -> tuple[str, str]:
    """Tell the widget when the state changed; return the state and agent name.

    Does nothing (returns ``("", "")``) for other channels' conversations.
    """
    if not is_webchat(conversation_id):
        return "", ""
    log = EventLog(client, namespace, keep_days=keep_days)
    conversation = sender_of(conversation_id)
    state, name = await derive(client, namespace, conversation_id)
    told = await log.state(conversation)
    if told.get("ended"):
        return "ended", ""
    if (told.get("status", "bot"), told.get("agent_name", "")) != (state, name):
        await log.set_state(conversation, status=state, agent_name=name)
        data: dict[str, object] = {"state": state, "at": now_iso()}
        if name:
            data["agent_name"] = name
        await log.append(conversation, "status", data)
    return state, name


async def typing(
    client: redis.asyncio.Redis, namespace: str, conversation_id: str, username: str
) -> None:
    """Show "<agent> is typing" in the widget (nothing stored; other channels: nothing).

    ``name`` is the agent's display name; without one it is left out (the widget then says
    "An adviser is typing").
    """
    if is_webchat(conversation_id):
        data = {"from": "agent"}
        if name := await agent_display_name(client, namespace, username):
            data["name"] = name
        await EventLog(client, namespace).typing(sender_of(conversation_id), data)
