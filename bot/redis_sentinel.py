"""Redis behind Sentinel: ``REDIS_URL=redis+sentinel://[:password@]host:port[,host:port]/service[/db]``.

The sentinels (default port 26379) name the current primary of ``service``; the clients from
:func:`master` and :func:`master_async` ask them again after a failover. The password is the
primary's (sentinels without a password). ``rediss+sentinel://`` speaks TLS to the primary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

from bot.errors import ConfigError

__all__ = ["SCHEMES", "SentinelUrl", "is_sentinel", "like", "master", "master_async", "parse"]

SCHEMES = frozenset({"redis+sentinel", "rediss+sentinel"})
_DEFAULT_PORT = 26379


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed ``redis+sentinel://`` URL (see the module docstring)."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    username: str | None
    password: str | None
    ssl: bool

    def master_kwargs(self) -> dict[str, Any]:
        """Connection settings of the primary."""
        return {
            "db": self.db,
            "username": self.username,
            "password": self.password,
            "ssl": self.ssl,
        }


def is_sentinel(url: str | None) -> bool:
    """``url`` names Redis through Sentinel."""
    return bool(url) and urlsplit(str(url)).scheme in SCHEMES


def parse(url: str, source: str = "environment", key: str = "REDIS_URL") -> SentinelUrl:
    """Split a ``redis+sentinel://`` URL.

    Raises:
        ConfigError: No sentinel, no service name, a bad port or database (the URL's
            password is never in the message).
    """
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels: list[tuple[str, int]] = []
    for host in filter(None, hosts.split(",")):
        name, _, port = host.partition(":")
        if not name or (port and not port.isdigit()):
            raise ConfigError(source, key, f"not a sentinel address: {host!r}")
        sentinels.append((name, int(port) if port else _DEFAULT_PORT))
    service, _, db = parts.path.strip("/").partition("/")
    if not sentinels or not service:
        raise ConfigError(source, key, "needs redis+sentinel://host:port[,host:port]/service[/db]")
    if db and not db.isdigit():
        raise ConfigError(source, key, f"database must be a number, got {db!r}")
    return SentinelUrl(
        tuple(sentinels),
        unquote(service),
        int(db or 0),
        unquote(username) if username else None,
        unquote(password) if password else None,
        parts.scheme == "rediss+sentinel",
    )


def master(url: str, **kwargs: Any) -> redis.Redis:
    """A client of the primary the sentinels name (``kwargs`` as for :class:`redis.Redis`)."""
    found = parse(url)
    timeout = kwargs.get("socket_connect_timeout")
    sentinel = redis.sentinel.Sentinel(
        list(found.sentinels), sentinel_kwargs={"socket_connect_timeout": timeout}
    )
    client: redis.Redis = sentinel.master_for(found.service, **found.master_kwargs(), **kwargs)
    return client


class _AsyncPrimaryClient(redis.asyncio.Redis):
    """An asyncio client of the primary that also closes its connections to the sentinels."""

    async def close(self, close_connection_pool: bool | None = None) -> None:
        """Close the client, its pool and the sentinels' clients it asked."""
        await super().close(close_connection_pool)
        manager = getattr(self.connection_pool, "sentinel_manager", None)
        for sentinel in manager.sentinels if manager else ():
            await sentinel.close()


def master_async(url: str, **kwargs: Any) -> redis.asyncio.Redis:
    """The asyncio twin of :func:`master`; closing it closes the sentinels' connections too."""
    found = parse(url)
    timeout = kwargs.get("socket_connect_timeout")
    sentinel = redis.asyncio.sentinel.Sentinel(
        list(found.sentinels), sentinel_kwargs={"socket_connect_timeout": timeout}
    )
    client: redis.asyncio.Redis = sentinel.master_for(
        found.service, redis_class=_AsyncPrimaryClient, **found.master_kwargs(), **kwargs
    )
    return client


def like(client: redis.Redis, url: str) -> redis.Redis:
    """A client of the primary behind ``url`` with the other settings of ``client``.

    For clients built by others from host and port (Rasa's stores): decoding and timeouts are
    kept; ``client`` (which pointed at a sentinel) is closed.
    """
    settings = dict(client.connection_pool.connection_kwargs)
    for name in ("host", "port", "db", "username", "password"):
        settings.pop(name, None)
    client.close()
    return master(url, **settings)
