"""Canned responses: reply texts the editors maintain for agents to start from."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass

import redis.asyncio

from bot.keys import key

__all__ = ["CannedResponse", "CannedResponses"]


@dataclass(frozen=True)
class CannedResponse:
    """One canned response.

    Attributes:
        response_id: Its id.
        title: Short name shown in the picker.
        text: The reply text.
    """

    response_id: str
    title: str
    text: str


class CannedResponses:
    """Canned responses in the Redis hash ``{ns}:handoff:canned``.

    Args:
        client: Asyncio Redis client (decoded strings).
        namespace: Key namespace.
    """

    def __init__(self, client: redis.asyncio.Redis, namespace: str = "cr") -> None:
        self.redis = client
        self.key = key(namespace, "handoff", "canned")

    async def all(self) -> list[CannedResponse]:
        """Every canned response, by title."""
        stored = await self.redis.hgetall(self.key)
        found = [CannedResponse(**json.loads(text)) for text in stored.values()]
        return sorted(found, key=lambda c: c.title.lower())

    async def add(self, title: str, text: str) -> CannedResponse:
        """Store a new canned response."""
        canned = CannedResponse(uuid.uuid4().hex[:12], title, text)
        await self.redis.hset(self.key, canned.response_id, json.dumps(asdict(canned)))
        return canned

    async def remove(self, response_id: str) -> bool:
        """Delete a canned response; False if there was none."""
        return bool(await self.redis.hdel(self.key, response_id))
