"""Rasa tracker and lock stores on the Redis named by a URL.

Rasa's own Redis stores take host, port and db separately and connect lazily, so an unreachable
server shows up only on the first resident message. These subclasses take the ``url`` of
``endpoints.yml`` (``${REDIS_URL}``) and check the server answers when Rasa creates them, so the
server refuses to start instead of failing later. The check uses the store's own client: no
second client (and connection) is opened just to ping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Iterable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

from rasa.core.lock import TicketLock
from rasa.core.lock_store import RedisLockStore
from rasa.core.tracker_store import RedisTrackerStore
from rasa.shared.core.domain import Domain
from rasa.utils.endpoints import EndpointConfig
from redis import Redis
from redis.exceptions import RedisError

from bot.errors import ConfigError, RedisUnavailableError
from bot.redis_cluster import on_cluster
from bot.redis_conn import masked
from bot.redis_sentinel import is_sentinel, like, parse

__all__ = ["LOCK_LIFETIME", "RedisUrlLockStore", "RedisUrlTrackerStore", "redis_params"]

_log = logging.getLogger(__name__)

LOCK_LIFETIME = 6.0
"""Seconds a conversation's lock outlives a holder that stopped renewing it (a dead server)."""


def redis_params(url: str | None, source: str) -> dict[str, Any]:
    """Split a ``redis://``, ``rediss://`` or ``redis+sentinel://`` URL into Rasa's arguments.

    Args:
        url: The URL from ``endpoints.yml``.
        source: Where the URL came from, for error messages.

    Raises:
        ConfigError: The URL is missing or not a Redis URL.
    """
    if not url:
        raise ConfigError(source, "url", "missing: set it to ${REDIS_URL}")
    if is_sentinel(url):  # Rasa's client goes to a sentinel; the stores swap it (_primary)
        found = parse(url, source, "url")
        host, port = found.sentinels[0]
        return {
            "host": host,
            "port": port,
            "db": found.db,
            "username": found.username,
            "password": found.password,
            "use_ssl": found.ssl,
        }
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
        raise ConfigError(source, "url", f"not a redis:// URL: {masked(url)}")
    db_text = parts.path.lstrip("/") or "0"
    if not db_text.isdigit():
        raise ConfigError(source, "url", f"database must be a number, got {db_text!r}")
    return {
        "host": parts.hostname,
        "port": parts.port or 6379,
        "db": int(db_text),
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "use_ssl": parts.scheme == "rediss",
    }


_CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a TCP connection to Redis (Rasa's clients would wait for the OS)."""


def _check(client: Redis, url: str) -> None:
    """Ping with the store's own client, its connections bounded by :data:`_CONNECT_TIMEOUT`.

    Raises:
        RedisUnavailableError: The server does not answer (the URL is masked).
    """
    settings = client.connection_pool.connection_kwargs
    if settings.get("socket_connect_timeout") is None:
        settings["socket_connect_timeout"] = _CONNECT_TIMEOUT
    try:
        client.ping()
    except RedisError as exc:
        raise RedisUnavailableError(masked(url), str(exc)) from exc


def _primary(client: Redis, url: str) -> Redis:
    """The store's client, or behind Sentinel a client of the primary with its settings."""
    return like(client, url) if is_sentinel(url) else client


def _on_cluster(client: Redis, url: str) -> Redis:
    """The store's client, or on a Redis Cluster a cluster client with its settings.

    Rasa's keys (``{prefix}{conversation id}``) are one key per conversation and command, so a
    cluster spreads conversations over its nodes (the tracker store's ``keys()`` scans them all).
    """
    try:
        return on_cluster(client)
    except RedisError as exc:
        raise RedisUnavailableError(masked(url), str(exc)) from exc


class RedisUrlTrackerStore(RedisTrackerStore):
    """Rasa's Redis tracker store, configured by URL and checked at start-up.

    ``record_exp`` (seconds) is the retention of a conversation after its last event.
    """

    def __init__(self, domain: Domain, host: str | None = None, **kwargs: Any) -> None:
        url = host  # Rasa passes endpoints.yml's `url` as `host`
        params = redis_params(url, "endpoints.yml: tracker_store")
        super().__init__(domain, **params, **kwargs)
        rasa_client: Redis = _primary(self.red, str(url))  # redis_params refused no URL
        _check(rasa_client, str(url))
        self.red: Redis = _on_cluster(rasa_client, str(url))

    async def keys(self) -> Iterable[str]:
        """The stored trackers' keys, as Rasa lists them (prefix included).

        SCAN, not Rasa's KEYS: on a cluster KEYS asks one node, SCAN every primary (and it
        does not block a single server while it walks the keys).
        """
        return [str(k) for k in self.red.scan_iter(match=self.key_prefix + "*", count=1000)]


# KEYS: the lock. ARGV: ticket number, new expiry. Rasa keeps each ticket as a JSON string
# inside the lock's JSON; only the expiry of this ticket changes, in one step.
_RENEW = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local lock = cjson.decode(raw)
for i, text in ipairs(lock.tickets or {}) do
  local ticket = cjson.decode(text)
  if ticket.number == tonumber(ARGV[1]) then
    ticket.expires = tonumber(ARGV[2])
    lock.tickets[i] = cjson.encode(ticket)
    redis.call('SET', KEYS[1], cjson.encode(lock))
    return 1
  end
end
return 0
"""


class RedisUrlLockStore(RedisLockStore):
    """Rasa's Redis lock store, configured by URL and checked at start-up.

    Rasa gives a conversation's lock ticket a 60 s lifetime, so a server killed while
    processing a message left its ticket behind and the restarted server waited up to a minute
    before answering that resident. Here a ticket lives ``lock_lifetime`` seconds
    (``endpoints.yml``, default :data:`LOCK_LIFETIME`) and is renewed every third of that
    while its holder waits or works, however long the actions take; a dead holder's ticket is
    gone within ``lock_lifetime``.
    """

    def __init__(self, endpoint_config: EndpointConfig) -> None:
        url = endpoint_config.url
        params = redis_params(url, "endpoints.yml: lock_store")
        key_prefix = endpoint_config.kwargs.get("key_prefix")
        super().__init__(**params, key_prefix=key_prefix)
        lifetime = endpoint_config.kwargs.get("lock_lifetime", LOCK_LIFETIME)
        try:
            self.lock_lifetime = float(lifetime)
        except (TypeError, ValueError):
            self.lock_lifetime = 0.0
        if not self.lock_lifetime > 0:
            raise ConfigError(
                "endpoints.yml", "lock_store.lock_lifetime", f"must be seconds > 0: {lifetime!r}"
            )
        rasa_client: Redis = _primary(self.red, url)
        _check(rasa_client, url)
        self.red: Redis = _on_cluster(rasa_client, url)
        self._renew = self.red.register_script(_RENEW)

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float | None = None,
        wait_time_in_seconds: float = 1,
    ) -> AsyncGenerator[TicketLock, None]:
        """Hold the conversation's lock; its ticket is renewed until released."""
        lifetime = lock_lifetime or self.lock_lifetime
        ticket = self.issue_ticket(conversation_id, lifetime)
        renewal = asyncio.create_task(self._keep(conversation_id, ticket, lifetime))
        try:
            yield await self._acquire_lock(conversation_id, ticket, wait_time_in_seconds)
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
            self.cleanup(conversation_id, ticket)

    async def _keep(self, conversation_id: str, ticket: int, lifetime: float) -> None:
        while True:
            await asyncio.sleep(lifetime / 3)
            try:
                self._renew(
                    keys=[self.key_prefix + conversation_id], args=[ticket, time.time() + lifetime]
                )
            except RedisError:
                _log.warning("lock of a conversation not renewed: Redis error", exc_info=True)
