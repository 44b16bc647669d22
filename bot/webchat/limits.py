"""Rate limits of the web chat: fixed windows counted in Redis, shared by every edge.

Each limit counts one subject (a conversation, or a client address) in one window; a request
over the limit is refused with the seconds until the window ends (``Retry-After``). Subjects
are kept apart, so one conversation or one address hitting its limit never refuses another.
Addresses are stored as keyed digests (``HMAC-SHA256(secret, address)``), never as written.
Refused requests are not counted, so a client that keeps trying is served again as soon as
its window ends.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio

from bot.keys import key

__all__ = ["Decision", "RateLimiter"]

_COUNT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


@dataclass(frozen=True)
class Decision:
    """A limit's answer.

    Attributes:
        allowed: The request may go on.
        retry_after: Whole seconds to wait when refused (0 when allowed).
    """

    allowed: bool
    retry_after: int = 0


class RateLimiter:
    """Fixed-window counters.

    Args:
        client: Asyncio Redis client.
        namespace: Key namespace.
        secret: Keys the digests of addresses.
        clock: Unix seconds.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        namespace: str,
        secret: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.namespace = namespace
        self.clock = clock
        self._secret = hashlib.sha256(f"webchat-limits:{secret}".encode()).digest()
        self._count = client.register_script(_COUNT)

    def digest(self, address: str) -> str:
        """The keyed digest an address is counted under."""
        return hmac.new(self._secret, address.encode(), hashlib.sha256).hexdigest()[:32]

    async def hit(self, scope: str, subject: str, limit: int, window: int) -> Decision:
        """Count one request of ``subject`` against ``limit`` per ``window`` seconds."""
        now = self.clock()
        slot = int(now // window)
        name = key(self.namespace, "webchat", "rate", scope, subject, str(slot))
        if int(await self._count(keys=[name], args=[limit, window + 1])):
            return Decision(True)
        return Decision(False, max(1, math.ceil((slot + 1) * window - now)))

    async def address(self, scope: str, address: str, limit: int, window: int) -> Decision:
        """Count one request from a client address (stored as its digest)."""
        return await self.hit(scope, self.digest(address), limit, window)
