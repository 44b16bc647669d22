"""What the web chat holds about one conversation, for residents' export and erasure.

:func:`held` is called by :mod:`bot.residents.rights` for every conversation it collects (and
the retention sweep's stale ones); it answers None for other channels. Everything listed here
also expires by itself ``retention.conversations`` days after the conversation's last event
(:mod:`bot.webchat.events`, :mod:`bot.webchat.uploads`), and the index of conversations trims
itself as it is written.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio

from bot.keys import key, literal
from bot.webchat.events import MAX_EVENTS, EventLog
from bot.webchat.phone import phone_index_key
from bot.webchat.status import is_webchat, sender_of
from bot.webchat.uploads import UploadStore

__all__ = ["Held", "conversations_of_phone", "held", "traced"]


@dataclass
class Held:
    """One web chat conversation's data.

    Attributes:
        export: What a resident's export shows: events, state (with the confirmed number),
            uploads (type, size, bytes in base64).
        keys: Every key to delete to erase it.
        index: The sorted set the conversation is a member of (remove the member).
        member: Its member there.
        phone_index: The set of conversations of its confirmed number ('' if none).
        phone_member: Its member there (the conversation id).
    """

    export: dict[str, Any]
    keys: list[str] = field(default_factory=list)
    index: str = ""
    member: str = ""
    phone_index: str = ""
    phone_member: str = ""


async def conversations_of_phone(
    client: redis.asyncio.Redis, namespace: str, digits: str
) -> list[str]:
    """The web chat conversations (ids) continued on the number with these international digits."""
    members: Any = await client.smembers(phone_index_key(namespace, digits))
    return sorted(str(member) for member in members)


async def traced(client: redis.asyncio.Redis, namespace: str, conversation_id: str) -> bool:
    """True when the web chat holds anything of ``conversation_id`` (events or state)."""
    if not is_webchat(conversation_id):
        return False
    log = EventLog(client, namespace)
    conversation = sender_of(conversation_id)
    return bool(await client.exists(log.events_key(conversation), log.state_key(conversation)))


async def held(client: redis.asyncio.Redis, namespace: str, conversation_id: str) -> Held | None:
    """The web chat's data of ``conversation_id`` (None: not a web chat conversation)."""
    if not is_webchat(conversation_id):
        return None
    conversation = sender_of(conversation_id)
    log = EventLog(client, namespace)
    store = UploadStore(client, namespace)
    events = await log.since(conversation, None, count=MAX_EVENTS * 2)
    uploads = []
    keys = [
        log.events_key(conversation),
        log.state_key(conversation),
        store.index_key(conversation),
        key(namespace, "webchat", "code", conversation),
    ]
    for upload_id in await store.ids(conversation):
        keys.append(store.upload_key(conversation, upload_id))
        found = await store.get(conversation, upload_id)
        if found is not None:
            kind, data = found
            uploads.append(
                {
                    "id": upload_id,
                    "type": kind,
                    "bytes": len(data),
                    "base64": base64.b64encode(data).decode(),
                }
            )
    pattern = f"{literal(key(namespace, 'webchat'))}:*:{literal(conversation)}:*"
    async for name in client.scan_iter(match=pattern, count=1000):
        keys.append(str(name))  # echo markers and rate-limit counters of the conversation
    state = await log.state(conversation)
    phone_index = phone_index_key(namespace, state["phone"]) if state.get("phone") else ""
    return Held(
        export={
            "events": [{"id": e.id, "kind": e.kind, "data": dict(e.data)} for e in events],
            "state": state,
            "uploads": uploads,
        },
        keys=keys,
        index=log.index_key,
        member=conversation,
        phone_index=phone_index,
        phone_member=conversation_id,
    )
