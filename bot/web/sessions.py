"""Console sessions: a random opaque id in a cookie, the session itself in Redis.

Redis keeps ``{ns}:session:{digest}`` where ``digest`` is an HMAC-SHA256 of the cookie value
under ``COUNCIL_SECRET_KEY``, so a copy of the database holds no usable cookie. A session ends
after ``idle_seconds`` without a request or ``absolute_seconds`` after sign-in, whichever comes
first; the Redis TTL mirrors that so abandoned sessions disappear on their own.
``{ns}:user_sessions:{username}`` lists a user's digests so disabling a user or resetting a
password ends every session at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio

from bot.keys import key

__all__ = ["BACKGROUND_HEADER", "SESSION_COOKIE", "Session", "SessionStore"]

SESSION_COOKIE = "cr_session"
BACKGROUND_HEADER = "X-Council-Background"
"""A request carrying this header with value ``1`` (a page polling for news, the timeout
warning asking how long is left) is served without counting as activity: an unattended page
must not keep its session alive (issue 9, findings 6 and 7)."""


@dataclass(frozen=True)
class Session:
    """A signed-in user's session.

    Attributes:
        sid: The cookie value (held only by the browser and this object, never stored).
        username: Who signed in.
        csrf_token: This session's CSRF token.
        created_at: Sign-in time (epoch seconds).
        last_seen: Last request time (epoch seconds).
    """

    sid: str
    username: str
    csrf_token: str
    created_at: float
    last_seen: float


class SessionStore:
    """Sessions in Redis.

    Args:
        redis: Asyncio client with ``decode_responses=True``.
        namespace: Key namespace.
        secret_key: Key for the HMAC of session ids.
        idle_seconds: A session unused this long ends.
        absolute_seconds: A session this old ends whatever its use.
        clock: Returns epoch seconds (tests inject a fake one).
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        namespace: str,
        secret_key: bytes,
        *,
        idle_seconds: int = 30 * 60,
        absolute_seconds: int = 12 * 60 * 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._ns = namespace
        self._secret = secret_key
        self.idle_seconds = idle_seconds
        self.absolute_seconds = absolute_seconds
        self._clock = clock

    def _digest(self, sid: str) -> str:
        return hmac.new(self._secret, sid.encode(), hashlib.sha256).hexdigest()

    def _key(self, digest: str) -> str:
        return key(self._ns, "session", digest)

    def _index(self, username: str) -> str:
        return key(self._ns, "user_sessions", username)

    def _ttl(self, created_at: float, now: float) -> int:
        remaining = min(self.idle_seconds, created_at + self.absolute_seconds - now)
        return max(1, int(remaining) + 1)

    async def create(self, username: str) -> Session:
        """Start a session for ``username`` and return it (its ``sid`` goes in the cookie)."""
        now = self._clock()
        session = Session(
            sid=secrets.token_urlsafe(32),
            username=username,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen=now,
        )
        digest = self._digest(session.sid)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                self._key(digest),
                mapping={
                    "username": username,
                    "csrf_token": session.csrf_token,
                    "created_at": repr(now),
                    "last_seen": repr(now),
                },
            )
            pipe.expire(self._key(digest), self._ttl(now, now))
            pipe.sadd(self._index(username), digest)
            pipe.expire(self._index(username), self.absolute_seconds)
            await pipe.execute()
        return session

    async def load(self, sid: str, *, activity: bool = True) -> Session | None:
        """Return the live session for a cookie value, or None.

        ``activity`` marks it used, restarting its idle time; background requests pass False.
        An expired session is deleted.
        """
        if not sid:
            return None
        digest = self._digest(sid)
        data = await self._redis.hgetall(self._key(digest))
        if not data:
            return None
        now = self._clock()
        created_at = float(data["created_at"])
        last_seen = float(data["last_seen"])
        if now - last_seen >= self.idle_seconds or now - created_at >= self.absolute_seconds:
            await self._forget(digest, data["username"])
            return None
        if not activity:
            return Session(sid, data["username"], data["csrf_token"], created_at, last_seen)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key(digest), "last_seen", repr(now))
            pipe.expire(self._key(digest), self._ttl(created_at, now))
            await pipe.execute()
        return Session(sid, data["username"], data["csrf_token"], created_at, now)

    def ends_at(self, session: Session) -> tuple[float, bool]:
        """When ``session`` ends if nothing more happens (epoch seconds), and if it can move.

        The second value is False once the absolute limit is the nearer one: activity can
        no longer make the session last longer.
        """
        idle_end = session.last_seen + self.idle_seconds
        absolute_end = session.created_at + self.absolute_seconds
        return min(idle_end, absolute_end), idle_end < absolute_end

    def now(self) -> float:
        """The store's clock (epoch seconds)."""
        return self._clock()

    async def delete(self, sid: str) -> None:
        """End the session for a cookie value (sign-out)."""
        digest = self._digest(sid)
        username = await self._redis.hget(self._key(digest), "username")
        await self._forget(digest, username)

    async def delete_user(self, username: str) -> int:
        """End every session of ``username``; return how many there were."""
        digests = await self._redis.smembers(self._index(username))
        keys = [self._key(digest) for digest in digests]
        ended = int(await self._redis.delete(*keys)) if keys else 0
        await self._redis.delete(self._index(username))
        return ended

    async def _forget(self, digest: str, username: str | None) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(digest))
            if username:
                pipe.srem(self._index(username), digest)
            await pipe.execute()
